# The dashboard in a real browser (ctest -L browser): Debian's chromium driven by
# playwright-core from node_modules (ops/bootstrap installs both). The test skips itself,
# and ctest reports it skipped, when either is missing.
if(NOT TARGET courier-services-cli OR NOT TARGET courier-worker OR NOT TARGET echo_plugin OR NOT TARGET textstats_plugin OR NOT COURIER_BUILD_TESTS)
  return()
endif()
add_executable(dashboard_browser_test integration/dashboard_browser_test.cpp)
courier_target(dashboard_browser_test)
target_link_libraries(dashboard_browser_test PRIVATE courier_test_support courier GTest::gtest_main)
target_compile_definitions(dashboard_browser_test PRIVATE COURIER_BINARY_DIR="${PROJECT_BINARY_DIR}"
  COURIER_SERVICES_CLI="$<TARGET_FILE:courier-services-cli>")
set_target_properties(dashboard_browser_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
add_dependencies(dashboard_browser_test courier-broker courier-error-sink courier-metrics courier-worker
  courier-test-worker echo_plugin textstats_plugin)
gtest_discover_tests(dashboard_browser_test
  PROPERTIES LABELS "browser;integration" TIMEOUT 300 SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
  DISCOVERY_TIMEOUT 30)
