# Integration tests of the worker host (issue 4): they start the real courier-broker and
# courier-worker with the example plugins and the test-only `testkit` plugin.
add_library(testkit_plugin MODULE ${CMAKE_CURRENT_LIST_DIR}/plugins/testkit.cpp)
courier_target(testkit_plugin)
target_link_libraries(testkit_plugin PRIVATE courier_plugin)
set_target_properties(testkit_plugin PROPERTIES
  OUTPUT_NAME testkit
  LIBRARY_OUTPUT_DIRECTORY ${COURIER_PLUGIN_OUTPUT_DIRECTORY})

courier_test(worker_integration_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/worker_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_protocol_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_broker_test.cpp
  LIBS courier_test_support cppzmq
  LABELS integration
  TIMEOUT 180)
add_dependencies(worker_integration_test
  courier-worker courier-broker testkit_plugin echo_plugin textstats_plugin courier_fixture_bad_abi)

# `cmake --install` + an out-of-tree build of services/plugins/echo against the prefix.
# Needs the whole tree built (the install copies every target), as ops/test does.
courier_test(worker_install_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/worker_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_install_test.cpp
  LIBS courier_test_support cppzmq
  LABELS integration
  TIMEOUT 600)
target_compile_definitions(worker_install_test PRIVATE
  COURIER_CMAKE_COMMAND="${CMAKE_COMMAND}"
  COURIER_BUILD_DIR="${PROJECT_BINARY_DIR}")
add_dependencies(worker_install_test courier-worker courier-broker echo_plugin)

# Faults stay small (issue 12): crashing, hanging and leaking handlers under process and
# thread isolation, drains, wrong keys, reconnect backoff; with the error sink's view.
courier_test(isolation_integration_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/worker_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_isolation_test.cpp
  LIBS courier_test_support cppzmq
  LABELS integration
  TIMEOUT 300)
add_dependencies(isolation_integration_test
  courier-worker courier-broker courier-error-sink courier-services-cli testkit_plugin)
target_compile_definitions(isolation_integration_test PRIVATE
  COURIER_SERVICES_CLI="$<TARGET_FILE:courier-services-cli>")
