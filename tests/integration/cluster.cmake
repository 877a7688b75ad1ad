# Cluster behaviour (issue 7): real brokers, worker hosts registered with every broker, and
# the client SDK spreading a bounded job stream over them, while one broker is killed,
# stopped, or cut off at the link (network namespaces made by the test; skipped where
# `ip netns add` is not permitted). Also: one host's capacity shared across brokers.
add_library(clusterkit_plugin MODULE ${CMAKE_CURRENT_LIST_DIR}/plugins/clusterkit.cpp)
courier_target(clusterkit_plugin)
target_link_libraries(clusterkit_plugin PRIVATE courier_plugin)
set_target_properties(clusterkit_plugin PROPERTIES
  OUTPUT_NAME clusterkit
  LIBRARY_OUTPUT_DIRECTORY ${COURIER_PLUGIN_OUTPUT_DIRECTORY})

courier_test(cluster_integration_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/cluster_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cluster_credit_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cluster_capacity_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cluster_prefetch_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cluster_load_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cluster_failover_test.cpp
  LIBS courier_test_support cppzmq
  LABELS integration
  TIMEOUT 300)
add_dependencies(cluster_integration_test courier-broker courier-worker clusterkit_plugin)
