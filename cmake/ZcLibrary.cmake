# The libraries users link, both built from the module object sets:
#   zcrpc         libzcrpc.so.MAJOR (SOVERSION, see docs/ABI.md), exported
#                 as zcrpc::zcrpc;
#   zcrpc_static  libzcrpc.a, exported as zcrpc::static.
# In the tree zcrpc::zcrpc names the static one (the tools and tests link
# it, as before) unless BUILD_SHARED_LIBS asks for the shared one.
set(ZC_MODULES alloc stack rpc)
set(ZC_PUBLIC_INCLUDES
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/alloc/include>
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/stack/include>
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/rpc/include>
  $<BUILD_INTERFACE:${ZC_GENERATED_INCLUDE}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
set(ZC_OBJECTS)
foreach(mod ${ZC_MODULES})
  list(APPEND ZC_OBJECTS $<TARGET_OBJECTS:zcrpc_${mod}>)
endforeach()

if(ZC_BUILD_SHARED)
  add_library(zcrpc SHARED ${ZC_OBJECTS})
  set_target_properties(zcrpc PROPERTIES VERSION ${PROJECT_VERSION}
                        SOVERSION ${PROJECT_VERSION_MAJOR}
                        C_VISIBILITY_PRESET hidden EXPORT_NAME zcrpc)
  target_include_directories(zcrpc PUBLIC ${ZC_PUBLIC_INCLUDES})
  target_link_libraries(zcrpc PUBLIC Threads::Threads
                        PRIVATE liburing::liburing zcrpc_build_flags)
  if(ZC_WITH_TLS)
    target_link_libraries(zcrpc PRIVATE OpenSSL::SSL OpenSSL::Crypto)
  endif()
endif()

if(ZC_BUILD_STATIC)
  # The archive holds one object, partially linked from every module
  # object, whose hidden symbols (the zc__ internals) are then made local:
  # a program linking libzcrpc.a sees the public API only, as with the
  # shared library, and cannot clash with or call into the internals.
  set(ZC_STATIC_OBJ ${CMAKE_CURRENT_BINARY_DIR}/zcrpc_static.o)
  add_custom_command(OUTPUT ${ZC_STATIC_OBJ}
    COMMAND ${CMAKE_LINKER} -r -o ${ZC_STATIC_OBJ} ${ZC_OBJECTS}
    COMMAND ${CMAKE_OBJCOPY} --localize-hidden ${ZC_STATIC_OBJ}
    DEPENDS ${ZC_OBJECTS} zcrpc_alloc zcrpc_stack zcrpc_rpc
    COMMAND_EXPAND_LISTS
    COMMENT "zcrpc_static.o: partial link, internal symbols made local")
  add_library(zcrpc_static STATIC ${ZC_STATIC_OBJ})
  add_dependencies(zcrpc_static zcrpc_alloc zcrpc_stack zcrpc_rpc)
  set_target_properties(zcrpc_static PROPERTIES OUTPUT_NAME zcrpc
                        EXPORT_NAME static LINKER_LANGUAGE C)
  target_include_directories(zcrpc_static PUBLIC ${ZC_PUBLIC_INCLUDES})
  # PRIVATE on an archive still reaches its consumers' link line
  # ($<LINK_ONLY:...> in the exported interface).
  target_link_libraries(zcrpc_static PUBLIC Threads::Threads
                        PRIVATE liburing::liburing)
  if(ZC_WITH_TLS)
    target_link_libraries(zcrpc_static PRIVATE OpenSSL::SSL OpenSSL::Crypto)
  endif()
endif()

if(TARGET zcrpc_static AND (NOT BUILD_SHARED_LIBS OR NOT TARGET zcrpc))
  add_library(zcrpc::zcrpc ALIAS zcrpc_static)
else()
  add_library(zcrpc::zcrpc ALIAS zcrpc)
endif()
if(TARGET zcrpc_static)
  add_library(zcrpc::static ALIAS zcrpc_static)
endif()
