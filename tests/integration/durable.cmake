# Accepted means stored (issue 14): brokers killed and restarted on their data directory,
# a store that fills up, results that expire, Titanic across a crash.
courier_test(durable_jobs_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/worker_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/durable_jobs_test.cpp
  LIBS courier_test_support cppzmq
  LABELS integration
  TIMEOUT 400)
add_dependencies(durable_jobs_test courier-broker courier-worker clusterkit_plugin)
