# `cmake --install build --prefix PREFIX` installs the runtime, the worker host, the example
# plugins and a CMake package, so a plugin builds out of tree with
#   find_package(Courier REQUIRED)
#   target_link_libraries(myplugin PRIVATE Courier::plugin)
# Layout: include/courier/*.hpp, lib/libcourier.so*, lib/courier/libNAME.so (plugins),
# bin/courier-worker, share/courier/schemas/services/*.toml, lib/cmake/Courier/.
include(CMakePackageConfigHelpers)

set(COURIER_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Courier)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/courier
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(FILES ${PROJECT_BINARY_DIR}/include/courier/version.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/courier)

install(TARGETS courier courier_plugin EXPORT CourierTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET courier-worker)
  install(TARGETS courier-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/schemas/services/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/courier/schemas/services FILES_MATCHING PATTERN "*.toml")

install(EXPORT CourierTargets NAMESPACE Courier:: DESTINATION ${COURIER_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/CourierConfig.cmake.in
  ${PROJECT_BINARY_DIR}/CourierConfig.cmake
  INSTALL_DESTINATION ${COURIER_INSTALL_CMAKEDIR})
# 0.x: a plugin must be built against the same minor version as its host (plugin ABI).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/CourierConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/CourierConfig.cmake ${PROJECT_BINARY_DIR}/CourierConfigVersion.cmake
  DESTINATION ${COURIER_INSTALL_CMAKEDIR})
