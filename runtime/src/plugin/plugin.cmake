# The plugin API and the worker host (courier/plugin.hpp, courier/worker.hpp), built into
# libcourier. Included by runtime/CMakeLists.txt.

# courier/version.hpp, generated so plugins record the Courier they were built against.
set(COURIER_GENERATED_INCLUDE_DIR ${PROJECT_BINARY_DIR}/include)
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.hpp.in
  ${COURIER_GENERATED_INCLUDE_DIR}/courier/version.hpp @ONLY)
target_include_directories(courier PUBLIC $<BUILD_INTERFACE:${COURIER_GENERATED_INCLUDE_DIR}>)

target_sources(courier PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/job_context.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stage_stats.cpp
  ${CMAKE_CURRENT_LIST_DIR}/payload_schema.cpp
  ${CMAKE_CURRENT_LIST_DIR}/error_reporter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/plugin_loader.cpp
  ${CMAKE_CURRENT_LIST_DIR}/key_source.cpp
  ${CMAKE_CURRENT_LIST_DIR}/key_reject_warnings.cpp
  ${CMAKE_CURRENT_LIST_DIR}/job_runner.cpp
  ${CMAKE_CURRENT_LIST_DIR}/job_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/child_link.cpp
  ${CMAKE_CURRENT_LIST_DIR}/process_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/worker_options.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prefetch_planner.cpp
  ${CMAKE_CURRENT_LIST_DIR}/worker_host.cpp
)
target_link_libraries(courier PRIVATE ${CMAKE_DL_LIBS})

# Courier::plugin: what a plugin links (headers + libcourier, which the host shares).
add_library(courier_plugin INTERFACE)
target_link_libraries(courier_plugin INTERFACE courier)
target_compile_features(courier_plugin INTERFACE cxx_std_20)  # concepts in courier/plugin.hpp
set_target_properties(courier_plugin PROPERTIES EXPORT_NAME plugin)
add_library(Courier::plugin ALIAS courier_plugin)
install(TARGETS courier_plugin EXPORT CourierTargets)
install(FILES ${COURIER_GENERATED_INCLUDE_DIR}/courier/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/courier)

if(COURIER_BUILD_TESTS)
  # Two tiny plugins for the loader's tests: a well-formed one and one built for another ABI.
  foreach(fixture good bad_abi)
    add_library(courier_fixture_${fixture} MODULE ${CMAKE_CURRENT_LIST_DIR}/testdata/${fixture}_plugin.cpp)
    courier_target(courier_fixture_${fixture})
    target_link_libraries(courier_fixture_${fixture} PRIVATE courier_plugin)
    set_target_properties(courier_fixture_${fixture} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests/plugins)
  endforeach()
  courier_test(plugin_test
    SOURCES
      ${CMAKE_CURRENT_LIST_DIR}/stage_stats_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/payload_schema_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/reply_cache_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/key_reject_warnings_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/plugin_api_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/job_runner_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/child_link_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/worker_options_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/prefetch_planner_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/plugin_loader_test.cpp
    LIBS courier_internal)
  target_compile_definitions(plugin_test PRIVATE
    COURIER_FIXTURE_PLUGIN_DIR="${PROJECT_BINARY_DIR}/tests/plugins"
    COURIER_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_dependencies(plugin_test courier_fixture_good courier_fixture_bad_abi)
endif()
