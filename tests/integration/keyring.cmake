# Key file races (issue 12): processes started together creating one keyring file, via
# Keyring::LoadOrCreate and GenerateKeyFile (`courier keygen`). No binaries needed: the
# test forks itself.
courier_test(keyring_race_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/keyring_race_test.cpp
  LIBS courier_test_support
  LABELS integration
  TIMEOUT 300)
