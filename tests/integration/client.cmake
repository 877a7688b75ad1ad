# Integration tests of the client SDK and the `courier` CLI (ctest -L integration): a real
# courier-broker, a raw-frame CRW01 test worker written here, and build/bin/courier.
add_library(courier_client_test_worker STATIC ${CMAKE_CURRENT_LIST_DIR}/client_test_worker.cpp)
courier_target(courier_client_test_worker)
target_include_directories(courier_client_test_worker PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(courier_client_test_worker PUBLIC courier_test_support courier_internal cppzmq)

courier_test(client_integration_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/client_calls_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client_failover_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client_cli_test.cpp
  LIBS courier_client_test_worker nlohmann_json::nlohmann_json
  LABELS integration
  TIMEOUT 180)
add_dependencies(client_integration_test courier-broker courier_cli)
