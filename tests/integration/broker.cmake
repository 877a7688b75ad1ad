courier_test(broker_integration_test
  SOURCES integration/broker_integration_test.cpp integration/broker_fuzz_test.cpp
    integration/broker_security_test.cpp
  LIBS courier_test_support
  LABELS integration
  TIMEOUT 300)
add_dependencies(broker_integration_test courier-broker courier-test-worker)

# A worker killed with SIGKILL is noticed within a second (socket monitor, PROTOCOL.md §7.6);
# a poison job is dead-lettered at max_crashes.
courier_test(worker_loss_test
  SOURCES integration/worker_loss_test.cpp
  LIBS courier_test_support
  LABELS integration
  TIMEOUT 120)
add_dependencies(worker_loss_test courier-broker courier-test-worker)

# Hostile peers (issue 15): reply theft, service-table flooding, memory in bytes,
# connection floods, each played by a raw peer against the real broker.
courier_test(hostile_test
  SOURCES integration/hostile_test.cpp
  LIBS courier_test_support
  LABELS integration
  TIMEOUT 300)
add_dependencies(hostile_test courier-broker courier-test-worker)
