# Prometheus text exposition shared by every /metrics page (courier-broker --http,
# courier-metrics): the writer, courier_build_info and the process_* families. A small
# static library: only the programs that serve /metrics link it.
add_library(courier_prometheus STATIC
  ${CMAKE_CURRENT_LIST_DIR}/text_format.cpp
  ${CMAKE_CURRENT_LIST_DIR}/process_metrics.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http_address.cpp)
courier_target(courier_prometheus)
target_link_libraries(courier_prometheus PUBLIC courier_internal)

# The strict page reader the tests hold every page to.
if(COURIER_BUILD_TESTS)
  add_library(courier_prometheus_check STATIC ${CMAKE_CURRENT_LIST_DIR}/exposition_check.cpp)
  courier_target(courier_prometheus_check)
  target_link_libraries(courier_prometheus_check PUBLIC courier_internal)
endif()

courier_test(prometheus_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/text_format_test.cpp ${CMAKE_CURRENT_LIST_DIR}/process_metrics_test.cpp
  LIBS courier_prometheus courier_prometheus_check)
