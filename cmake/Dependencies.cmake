# Every external dependency Courier uses, found in one place. All come from Debian 12
# packages installed by ops/bootstrap.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(cppzmq 4.9 CONFIG REQUIRED)      # target cppzmq (brings libzmq)
find_package(msgpack 4 CONFIG REQUIRED)       # target msgpackc-cxx (needs Boost headers)
find_package(spdlog 1.10 CONFIG REQUIRED)     # spdlog::spdlog (links fmt::fmt)
find_package(tomlplusplus 3 CONFIG REQUIRED)  # tomlplusplus::tomlplusplus
find_package(CLI11 CONFIG REQUIRED)           # CLI11::CLI11
find_package(nlohmann_json 3 CONFIG REQUIRED) # nlohmann_json::nlohmann_json
find_package(SQLite3 REQUIRED)                # SQLite::SQLite3
pkg_check_modules(sodium REQUIRED IMPORTED_TARGET libsodium>=1.0.18)  # PkgConfig::sodium
pkg_check_modules(httplib REQUIRED IMPORTED_TARGET cpp-httplib)       # PkgConfig::httplib

if(COURIER_BUILD_TESTS)
  find_package(GTest 1.12 CONFIG REQUIRED)    # GTest::gtest_main, GTest::gmock
  include(GoogleTest)
  find_package(benchmark CONFIG QUIET)        # benchmark::benchmark, for ops/bench
endif()
