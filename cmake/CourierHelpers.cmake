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

# ---- installation ---------------------------------------------------------------------
# Every installed file runs from any prefix: executables find libcourier through a RUNPATH
# relative to themselves ($ORIGIN/../lib), so `cmake --install build --prefix P` needs no
# LD_LIBRARY_PATH. Each area installs its own targets with these helpers.
file(RELATIVE_PATH COURIER_BIN_TO_LIB /${CMAKE_INSTALL_BINDIR} /${CMAKE_INSTALL_LIBDIR})
set(COURIER_EXECUTABLE_RUNPATH "$ORIGIN/${COURIER_BIN_TO_LIB}")
set(COURIER_PLUGIN_RUNPATH "$ORIGIN/..")  # lib/courier/libNAME.so → lib/libcourier.so
set(COURIER_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/courier)
set(COURIER_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/courier)

# Man pages are made from each program's --help and --version by help2man (Debian package
# help2man, installed by ops/bootstrap); without it the build and install skip them.
find_program(COURIER_HELP2MAN help2man)
if(NOT COURIER_HELP2MAN)
  message(STATUS "help2man not found: no man pages")
endif()

# courier_man_page(NAME COMMAND cmd... DESCRIPTION text [DEPENDS ...]) builds man/NAME.1 from
# `cmd --help` and installs it into share/man/man1.
function(courier_man_page name)
  cmake_parse_arguments(arg "" "DESCRIPTION" "COMMAND;DEPENDS" ${ARGN})
  if(NOT COURIER_HELP2MAN)
    return()
  endif()
  set(page ${PROJECT_BINARY_DIR}/man/${name}.1)
  # help2man runs the command with --help and --version; a wrapper script is given as the
  # program when the command has arguments (the Python launcher).
  add_custom_command(OUTPUT ${page}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND ${COURIER_HELP2MAN} --no-info --no-discard-stderr --section=1
      --name=${arg_DESCRIPTION} --source=Courier --output=${page} ${arg_COMMAND}
    DEPENDS ${arg_DEPENDS}
    COMMENT "Man page ${name}.1"
    VERBATIM)
  add_custom_target(${name}_man ALL DEPENDS ${page})
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endfunction()

# courier_install_executable(TARGET DESCRIPTION text): bin/NAME with a relative RUNPATH, and
# its man page.
function(courier_install_executable target)
  cmake_parse_arguments(arg "" "DESCRIPTION" "" ${ARGN})
  set_target_properties(${target} PROPERTIES INSTALL_RPATH "${COURIER_EXECUTABLE_RUNPATH}")
  install(TARGETS ${target} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  get_target_property(name ${target} OUTPUT_NAME)
  if(NOT name)
    set(name ${target})
  endif()
  courier_man_page(${name} COMMAND $<TARGET_FILE:${target}> DEPENDS ${target} DESCRIPTION "${arg_DESCRIPTION}")
endfunction()

# courier_install_configured(SOURCE file DESTINATION dir [RENAME name]) installs `file` with
# @COURIER_PREFIX@, @COURIER_BINDIR@ and @COURIER_DATADIR@ replaced by the paths of the
# prefix it is installed into, decided at install time (`cmake --install --prefix P`), so a
# systemd unit's ExecStart names the installed binary.
function(courier_install_configured)
  cmake_parse_arguments(arg "" "SOURCE;DESTINATION;RENAME" "" ${ARGN})
  get_filename_component(source ${arg_SOURCE} ABSOLUTE)
  if(arg_RENAME)
    set(name ${arg_RENAME})
  else()
    get_filename_component(name ${source} NAME)
  endif()
  # Staged per prefix: installs into several prefixes at once (tests) must not share a file.
  install(CODE "
    set(COURIER_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(COURIER_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    set(COURIER_DATADIR \"\${CMAKE_INSTALL_PREFIX}/${COURIER_INSTALL_DATADIR}\")
    string(MD5 courier_prefix_hash \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
    set(courier_staged \"${PROJECT_BINARY_DIR}/install-configured/\${courier_prefix_hash}/${arg_DESTINATION}/${name}\")
    configure_file(\"${source}\" \"\${courier_staged}\" @ONLY)
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${arg_DESTINATION}\" TYPE FILE FILES \"\${courier_staged}\")
    file(REMOVE_RECURSE \"${PROJECT_BINARY_DIR}/install-configured/\${courier_prefix_hash}\")
  ")
endfunction()
