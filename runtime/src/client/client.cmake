# The client SDK (courier/client.hpp): sources of libcourier and their unit tests.
# Included by runtime/CMakeLists.txt; paths are relative to runtime/.
set(COURIER_CLIENT_DIR ${CMAKE_CURRENT_LIST_DIR})

target_sources(courier PRIVATE
  ${COURIER_CLIENT_DIR}/client.cpp
  ${COURIER_CLIENT_DIR}/client_core.cpp
  ${COURIER_CLIENT_DIR}/client_options.cpp
  ${COURIER_CLIENT_DIR}/discovery.cpp
  ${COURIER_CLIENT_DIR}/stored_jobs.cpp
  ${COURIER_CLIENT_DIR}/timings.cpp
)

courier_test(client_unit_test
  SOURCES
    ${COURIER_CLIENT_DIR}/client_core_test.cpp
    ${COURIER_CLIENT_DIR}/client_options_test.cpp
    ${COURIER_CLIENT_DIR}/discovery_test.cpp
    ${COURIER_CLIENT_DIR}/in_flight_test.cpp
    ${COURIER_CLIENT_DIR}/stored_jobs_test.cpp
  LIBS courier_internal)

# Stored jobs end to end over sockets, against an in-process fake broker (no binaries).
courier_test(client_jobs_test
  SOURCES ${COURIER_CLIENT_DIR}/client_jobs_test.cpp
  LIBS courier_internal)
