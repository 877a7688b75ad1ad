# Security integration tests (issue 9): the bad-input matrix and CURVE end to end, against
# the real courier-broker and courier-worker (echo plugin), the client SDK, raw CURVE peers
# and build/bin/courier.
courier_test(security_integration_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/worker_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/security_matrix_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/security_curve_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/security_privilege_test.cpp
  LIBS courier_test_support cppzmq
  LABELS integration
  TIMEOUT 300)
target_include_directories(security_integration_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_dependencies(security_integration_test
  courier-broker courier-worker echo_plugin courier_cli courier-error-sink courier-metrics)
