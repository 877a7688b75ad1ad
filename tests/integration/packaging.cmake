# Courier as a package (issue 17). The command line of every executable and the worker's
# schema lookup, against the build tree (ctest -L integration); and the install test
# (ctest -L install): `cmake --install` into a temporary prefix, the documents' plugin and
# client built against it, the services run from it. The install test needs the whole
# tree built (the install copies every target), as ops/test does.
courier_test(command_line_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/command_line_test.cpp
  LIBS courier_test_support
  LABELS integration
  TIMEOUT 300)
target_compile_definitions(command_line_test PRIVATE COURIER_VERSION="${PROJECT_VERSION}")
add_dependencies(command_line_test courier_cli courier-broker courier-worker courier-error-sink courier-metrics echo_plugin)

courier_test(worker_schema_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/worker_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_schema_test.cpp
  LIBS courier_test_support cppzmq
  LABELS integration
  TIMEOUT 180)
add_dependencies(worker_schema_test courier-worker courier-broker echo_plugin)

courier_test(install_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/doc_blocks.cpp
    ${CMAKE_CURRENT_LIST_DIR}/install_test.cpp
  LIBS courier_test_support
  LABELS install
  TIMEOUT 1500)
if(COURIER_HELP2MAN)
  set(courier_have_help2man 1)
else()
  set(courier_have_help2man 0)
endif()
target_compile_definitions(install_test PRIVATE
  COURIER_BUILD_DIR="${PROJECT_BINARY_DIR}"
  COURIER_VERSION="${PROJECT_VERSION}"
  COURIER_HAVE_HELP2MAN=${courier_have_help2man})
add_dependencies(install_test courier_cli courier-broker courier-worker courier-error-sink courier-metrics
  echo_plugin textstats_plugin)
