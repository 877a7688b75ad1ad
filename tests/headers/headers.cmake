# Header check (issue 13): every header of the project compiles on its own (it includes what
# it uses), and each area's headers compile together in one translation unit (no clashes
# of names between them). Built with the tests, never linked: the objects are the check.
function(courier_check_headers name)
  cmake_parse_arguments(arg "" "" "DIRS;LIBS;EXCLUDE" ${ARGN})
  set(headers)
  foreach(dir ${arg_DIRS})
    file(GLOB_RECURSE found CONFIGURE_DEPENDS ${dir}/*.hpp)
    list(APPEND headers ${found})
  endforeach()
  list(FILTER headers EXCLUDE REGEX "(_test|_fixture|/testdata/|/node_modules/)")
  foreach(pattern ${arg_EXCLUDE})
    list(FILTER headers EXCLUDE REGEX "${pattern}")
  endforeach()
  list(SORT headers)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/header_check/${name})
  set(sources)
  set(all "// Every header of ${name} at once.\n")
  foreach(header ${headers})
    file(RELATIVE_PATH relative ${PROJECT_SOURCE_DIR} ${header})
    string(MAKE_C_IDENTIFIER "${relative}" id)
    set(source ${out_dir}/${id}.cpp)
    file(CONFIGURE OUTPUT ${source} CONTENT "#include \"${header}\"\n")
    list(APPEND sources ${source})
    string(APPEND all "#include \"${header}\"\n")
  endforeach()
  file(CONFIGURE OUTPUT ${out_dir}/all_together.cpp CONTENT "${all}")
  add_library(header_check_${name} OBJECT ${sources} ${out_dir}/all_together.cpp)
  courier_target(header_check_${name})
  target_link_libraries(header_check_${name} PRIVATE ${arg_LIBS})
endfunction()

courier_check_headers(runtime
  DIRS ${PROJECT_SOURCE_DIR}/runtime/include ${PROJECT_SOURCE_DIR}/runtime/src
  LIBS courier_internal tomlplusplus::tomlplusplus SQLite::SQLite3)
courier_check_headers(brokers DIRS ${PROJECT_SOURCE_DIR}/brokers LIBS courier_broker SQLite::SQLite3)
courier_check_headers(services
  DIRS ${PROJECT_SOURCE_DIR}/services
  LIBS courier_error_sink courier_metrics courier_builtin_service PkgConfig::httplib SQLite::SQLite3)
courier_check_headers(cli DIRS ${PROJECT_SOURCE_DIR}/ops/cli LIBS courier_cli_support courier_internal
  courier_command_line nlohmann_json::nlohmann_json)
# And every area's headers in one translation unit.
courier_check_headers(everything
  DIRS ${PROJECT_SOURCE_DIR}/runtime/include ${PROJECT_SOURCE_DIR}/runtime/src ${PROJECT_SOURCE_DIR}/brokers
       ${PROJECT_SOURCE_DIR}/services ${PROJECT_SOURCE_DIR}/ops/cli
  LIBS courier_internal courier_broker courier_error_sink courier_metrics courier_builtin_service courier_cli_support
       courier_command_line tomlplusplus::tomlplusplus SQLite::SQLite3 PkgConfig::httplib nlohmann_json::nlohmann_json)
