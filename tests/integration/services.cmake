# Integration tests of the error sink and the metrics collector: a real courier-broker,
# courier-error-sink and courier-metrics, reporters and workers around them.
if(NOT TARGET courier-error-sink OR NOT TARGET courier-metrics OR NOT TARGET courier_cli_support)
  return()
endif()

# `courier errors` / `courier metrics` on their own, for the tests (ops/cli wires the same
# two files into the real `courier`).
add_executable(courier-services-cli
  integration/services_cli_main.cpp
  ${PROJECT_SOURCE_DIR}/ops/cli/errors_command.cpp
  ${PROJECT_SOURCE_DIR}/ops/cli/metrics_command.cpp)
courier_target(courier-services-cli)
target_include_directories(courier-services-cli PRIVATE ${PROJECT_SOURCE_DIR}/ops/cli)
target_link_libraries(courier-services-cli PRIVATE courier_cli_support courier courier_metrics CLI11::CLI11)
set_target_properties(courier-services-cli PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)

courier_test(services_integration_test
  SOURCES integration/services_error_sink_test.cpp integration/services_metrics_test.cpp
    integration/services_hostile_test.cpp
  LIBS courier_test_support PkgConfig::httplib
  LABELS integration
  TIMEOUT 300)
add_dependencies(services_integration_test
  courier-broker courier-error-sink courier-metrics courier-test-worker courier-services-cli)
target_compile_definitions(services_integration_test PRIVATE
  COURIER_SERVICES_CLI="$<TARGET_FILE:courier-services-cli>")
add_dependencies(services_integration_test courier-worker echo_plugin)

# Every stage the design names is timed (issue 19): broker, sink, collector, a real
# courier-worker (testkit under a schema with a [reply]) and a reporting client.
courier_test(stages_integration_test
  SOURCES integration/services_stages_test.cpp
  LIBS courier_test_support PkgConfig::httplib
  LABELS integration
  TIMEOUT 300)
add_dependencies(stages_integration_test
  courier-broker courier-error-sink courier-metrics courier-worker testkit_plugin courier-services-cli)
target_compile_definitions(stages_integration_test PRIVATE
  COURIER_SERVICES_CLI="$<TARGET_FILE:courier-services-cli>")

# Prometheus end to end (issue 17): courier-broker --http (/metrics, /healthz) and the
# collector's stage histograms after real jobs through an echo worker.
courier_test(prometheus_integration_test
  SOURCES integration/prometheus_test.cpp
  LIBS courier_test_support courier_prometheus_check PkgConfig::httplib
  LABELS integration
  TIMEOUT 300)
add_dependencies(prometheus_integration_test
  courier-broker courier-error-sink courier-metrics courier-worker echo_plugin courier-services-cli)
target_compile_definitions(prometheus_integration_test PRIVATE
  COURIER_SERVICES_CLI="$<TARGET_FILE:courier-services-cli>")
