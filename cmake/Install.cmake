# `cmake --install build --prefix PREFIX` installs a package that runs from that prefix.
# Each area installs its own files beside its targets (runtime/, brokers/, services/*/,
# ops/); this file adds what belongs to the package as a whole: the CMake package, so
#   find_package(Courier REQUIRED)
#   target_link_libraries(myplugin PRIVATE Courier::plugin)   # or Courier::courier
# works out of tree. Layout:
#   bin/            courier, courier-broker, courier-worker, courier-error-sink,
#                   courier-metrics, courier-cluster (RUNPATH $ORIGIN/../lib)
#   lib/            libcourier.so*, pkgconfig/courier.pc, cmake/Courier/
#   lib/courier/    example plugins (libNAME.so)
#   include/courier/  the public headers
#   share/courier/  schemas/services/*.toml, systemd/ units, configs/ samples,
#                   cluster.example.toml
#   share/man/man1/ a page per program (when help2man is installed)
include(CMakePackageConfigHelpers)

set(COURIER_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Courier)

# The plugin ABI the installed headers speak, for find_package users (Courier_PLUGIN_ABI_VERSION).
file(STRINGS ${PROJECT_SOURCE_DIR}/runtime/include/courier/plugin.hpp courier_abi_line
  REGEX "^#define COURIER_PLUGIN_ABI_VERSION [0-9]+")
string(REGEX REPLACE "^#define COURIER_PLUGIN_ABI_VERSION ([0-9]+).*" "\\1" COURIER_PLUGIN_ABI_VERSION "${courier_abi_line}")

install(EXPORT CourierTargets NAMESPACE Courier:: DESTINATION ${COURIER_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/CourierConfig.cmake.in
  ${PROJECT_BINARY_DIR}/CourierConfig.cmake
  INSTALL_DESTINATION ${COURIER_INSTALL_CMAKEDIR})
# 0.x: a plugin must be built against the same minor version as its host (plugin ABI).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/CourierConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/CourierConfig.cmake ${PROJECT_BINARY_DIR}/CourierConfigVersion.cmake
  DESTINATION ${COURIER_INSTALL_CMAKEDIR})
