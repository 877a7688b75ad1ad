courier_test(broker_integration_test
  SOURCES integration/broker_integration_test.cpp integration/broker_fuzz_test.cpp
    integration/broker_security_test.cpp
  LIBS courier_test_support
  LABELS integration
  TIMEOUT 300)
add_dependencies(broker_integration_test courier-broker courier-test-worker)
