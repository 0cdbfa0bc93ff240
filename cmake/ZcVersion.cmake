# <zcrpc/version.h>, generated from project(VERSION): the version lives
# only in the top-level CMakeLists.txt.
set(ZC_GENERATED_INCLUDE ${PROJECT_BINARY_DIR}/include)
configure_file(${PROJECT_SOURCE_DIR}/cmake/version.h.in
               ${ZC_GENERATED_INCLUDE}/zcrpc/version.h @ONLY)
