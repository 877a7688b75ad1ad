# Shared settings for Courier's own targets: warnings are errors on our code only.
set(COURIER_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)

if(COURIER_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(COURIER_FUZZ)
  # Coverage for libFuzzer everywhere, plus the sanitizers that turn bugs into crashes.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

function(courier_target target)
  target_compile_options(${target} PRIVATE ${COURIER_WARNINGS})
endfunction()

# courier_test(NAME SOURCES... [LIBS ...] [LABELS ...]) builds a GoogleTest binary and
# registers each of its tests with ctest.
function(courier_test name)
  cmake_parse_arguments(arg "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT COURIER_BUILD_TESTS)
    return()
  endif()
  add_executable(${name} ${arg_SOURCES})
  courier_target(${name})
  target_link_libraries(${name} PRIVATE ${arg_LIBS} GTest::gtest_main GTest::gmock)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  if(NOT arg_LABELS)
    set(arg_LABELS unit)
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${arg_LABELS}" TIMEOUT ${arg_TIMEOUT}
    DISCOVERY_TIMEOUT 30)
endfunction()
