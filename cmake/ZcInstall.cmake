# Install rules, the CMake package, zcrpc.pc and the Debian package.
#   include/zcrpc/*.h              public headers (and the generated version.h)
#   lib/libzcrpc.so.MAJOR, .a      the libraries
#   lib/cmake/zcrpc/               find_package(zcrpc CONFIG): zcrpc::zcrpc
#                                  (shared when installed, else static) and
#                                  zcrpc::static
#   lib/pkgconfig/zcrpc.pc         pkg-config zcrpc [--static]
#   bin/zcperf                     with ZC_BUILD_BENCH
#   share/man/man3/                the API reference
include(CMakePackageConfigHelpers)
set(ZC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/zcrpc)

install(FILES
  ${PROJECT_SOURCE_DIR}/alloc/include/zcrpc/alloc.h
  ${PROJECT_SOURCE_DIR}/stack/include/zcrpc/stack.h
  ${PROJECT_SOURCE_DIR}/stack/include/zcrpc/tls.h
  ${PROJECT_SOURCE_DIR}/rpc/include/zcrpc/rpc.h
  ${PROJECT_SOURCE_DIR}/rpc/include/zcrpc/zcrpc.h
  ${ZC_GENERATED_INCLUDE}/zcrpc/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/zcrpc COMPONENT dev)

set(ZC_INSTALL_TARGETS)
foreach(t zcrpc zcrpc_static)
  if(TARGET ${t})
    list(APPEND ZC_INSTALL_TARGETS ${t})
  endif()
endforeach()
install(TARGETS ${ZC_INSTALL_TARGETS} EXPORT zcrpcTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib
          NAMELINK_COMPONENT dev
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT zcrpcTargets NAMESPACE zcrpc:: DESTINATION ${ZC_CMAKE_DIR}
        COMPONENT dev)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/zcrpcConfig.cmake.in
  ${PROJECT_BINARY_DIR}/zcrpcConfig.cmake INSTALL_DESTINATION ${ZC_CMAKE_DIR})
# Until 1.0 every minor version may change the ABI (docs/ABI.md).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/zcrpcConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/zcrpcConfig.cmake
              ${PROJECT_BINARY_DIR}/zcrpcConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/Findliburing.cmake
        DESTINATION ${ZC_CMAKE_DIR} COMPONENT dev)

# zcrpc.pc finds the prefix from its own place, so the same file works
# under --prefix P, /usr/local and the .deb's /usr.
if(ZC_WITH_TLS)
  set(ZC_PC_REQUIRES_PRIVATE "liburing libssl libcrypto")
else()
  set(ZC_PC_REQUIRES_PRIVATE "liburing")
endif()
file(RELATIVE_PATH ZC_PC_UP /r/${CMAKE_INSTALL_LIBDIR}/pkgconfig /r)
string(REGEX REPLACE "/$" "" ZC_PC_UP "${ZC_PC_UP}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/zcrpc.pc.in
               ${PROJECT_BINARY_DIR}/zcrpc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/zcrpc.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# The API reference, one page per function and per header, kept beside
# the sources by tools/gen_man.py (ctest docs.man checks it is current).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/man/man3
        DESTINATION ${CMAKE_INSTALL_MANDIR} COMPONENT dev)

if(TARGET zcrpc_zcperf)
  install(TARGETS zcrpc_zcperf RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          COMPONENT tools)
endif()

# One Debian package with everything above (cpack -G DEB in the build
# directory); installable with `apt-get install ./zcrpc_*.deb`, which
# pulls liburing and the tools' libraries through the computed Depends.
set(CPACK_PACKAGE_NAME zcrpc)
set(CPACK_PACKAGE_VENDOR "zcrpc")
set(CPACK_PACKAGE_CONTACT "zcrpc maintainers <zcrpc@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "RPC-serving TCP stack on io_uring: library, headers, zcperf")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# pkg-config and static linking need liburing's headers and .pc file,
# and with TLS OpenSSL's (libssl-dev: headers, libssl.a, libssl.pc).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "liburing-dev")
if(ZC_WITH_TLS)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libssl-dev (>= 3.0)")
endif()
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
include(CPack)
