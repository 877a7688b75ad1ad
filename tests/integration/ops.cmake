# ops/cluster (the local cluster runner): up / status / scale / restart / down against the
# real binaries, each test with its own free ports and run directory (ctest -L integration).
# The tests are Python (stdlib only, like ops/cluster itself); one ctest entry per class.
if(COURIER_BUILD_TESTS)
  set(courier_ops_tests
    UpScaleDownTest RestartTest DrainTimeoutTest SupervisorLossTest ConfigErrorTest KeyRotationTest
    JobsSurviveOpsTest)
  foreach(test_class IN LISTS courier_ops_tests)
    add_test(NAME ops_cluster.${test_class}
      COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/cluster_ops_test.py -v ${test_class})
    set_tests_properties(ops_cluster.${test_class} PROPERTIES
      LABELS integration
      TIMEOUT 300
      ENVIRONMENT "COURIER_BIN_DIR=${PROJECT_BINARY_DIR}/bin;COURIER_PLUGIN_DIR=${COURIER_PLUGIN_OUTPUT_DIRECTORY}")
  endforeach()
endif()

# The sample Prometheus alerting rules: promtool check rules / test rules (skipped, saying
# so, when promtool is neither on PATH nor in .tools/bin, where ops/bootstrap puts it).
courier_test(prometheus_rules_test
  SOURCES integration/prometheus_rules_test.cpp
  LIBS courier_test_support)
