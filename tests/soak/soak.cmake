# ops/soak: three brokers, three worker hosts and one checked client stream under random
# kill -9, SIGSTOP/SIGCONT and restarts (issue 12). courier-soak-client is the client
# stream; the ctest case is a short run (CI), longer runs are by hand: `ops/soak 600`.
add_executable(courier-soak-client soak/soak_client.cpp)
courier_target(courier-soak-client)
target_link_libraries(courier-soak-client PRIVATE courier CLI11::CLI11)

if(COURIER_BUILD_TESTS)
  add_test(NAME ops_soak.Short COMMAND ${PROJECT_SOURCE_DIR}/ops/soak 45)
  set_tests_properties(ops_soak.Short PROPERTIES
    LABELS integration
    TIMEOUT 300
    ENVIRONMENT "COURIER_BIN_DIR=${PROJECT_BINARY_DIR}/bin;COURIER_PLUGIN_DIR=${COURIER_PLUGIN_OUTPUT_DIRECTORY}")
endif()
