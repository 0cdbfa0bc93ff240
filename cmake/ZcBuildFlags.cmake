# zcrpc_build_flags: warnings, sanitizers and feature macros, linked PRIVATE by
# every zcrpc target so nothing leaks into the global CMAKE_C_FLAGS.
add_library(zcrpc_build_flags INTERFACE)
target_compile_definitions(zcrpc_build_flags INTERFACE _GNU_SOURCE)
foreach(flag -Wall -Wextra -Wstrict-prototypes -Wshadow -Wpointer-arith
             -Wmissing-prototypes -Wno-unused-parameter)
  string(MAKE_C_IDENTIFIER "HAVE${flag}" var)
  check_c_compiler_flag(${flag} ${var})
  if(${var})
    target_compile_options(zcrpc_build_flags INTERFACE ${flag})
  endif()
endforeach()
if(ZC_WERROR)
  target_compile_options(zcrpc_build_flags INTERFACE -Werror)
endif()
if(ZC_SANITIZE)
  set(san -fsanitize=${ZC_SANITIZE} -fno-omit-frame-pointer)
  if(ZC_SANITIZE MATCHES "undefined")
    list(APPEND san -fno-sanitize-recover=undefined)
  endif()
  target_compile_options(zcrpc_build_flags INTERFACE ${san})
  target_link_options(zcrpc_build_flags INTERFACE -fsanitize=${ZC_SANITIZE})
endif()

# Tools and tests (never the library) link the chosen allocator.
add_library(zcrpc_tool_alloc INTERFACE)
if(ZC_USE_TCMALLOC)
  target_link_libraries(zcrpc_tool_alloc INTERFACE PkgConfig::TCMALLOC)
endif()
