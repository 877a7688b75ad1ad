# Reporting: error reports to courier.errors and stage metrics to courier.metrics
# (courier/reporting.hpp), plus the small synchronous caller tools use.
target_sources(courier PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/actor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/histogram.cpp
  ${CMAKE_CURRENT_LIST_DIR}/report_buffer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/report_channel.cpp
  ${CMAKE_CURRENT_LIST_DIR}/report_codec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/reporters.cpp
  ${CMAKE_CURRENT_LIST_DIR}/service_caller.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stage_delta.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stage_recorder.cpp)

courier_test(reporting_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/histogram_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/report_codec_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/report_buffer_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/stage_delta_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/reporters_test.cpp
  LIBS courier_internal)
