# Benchmarks (ops/bench runs them; they are not tests).
if(TARGET benchmark::benchmark)
  add_executable(courier-microbench bench/microbench.cpp)
  courier_target(courier-microbench)
  target_link_libraries(courier-microbench PRIVATE courier_broker courier_internal benchmark::benchmark spdlog::spdlog)
endif()

add_executable(courier-bench bench/bench_main.cpp)
courier_target(courier-bench)
target_link_libraries(courier-bench PRIVATE courier_internal CLI11::CLI11)
