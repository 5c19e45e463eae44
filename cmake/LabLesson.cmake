# lab_lesson(<dir> [LINUX_ONLY])
#   Builds lessons/<dir>/server.c and client.c into <build>/lessons/<dir>/server and client
#   (server.exe and client.exe on Windows), each linked with the common helper.
#   Targets are named <NN>-server and <NN>-client, e.g. 01-server.
function(lab_lesson dir)
  cmake_parse_arguments(LESSON "LINUX_ONLY" "" "" ${ARGN})
  if(LESSON_LINUX_ONLY AND NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
    message(STATUS "Lesson ${dir} is Linux-only: skipped on ${CMAKE_SYSTEM_NAME}")
    return()
  endif()
  string(SUBSTRING "${dir}" 0 2 number)
  foreach(role server client)
    set(target ${number}-${role})
    add_executable(${target} ${role}.c)
    target_link_libraries(${target} PRIVATE lab_common)
    set_target_properties(${target} PROPERTIES
      OUTPUT_NAME ${role}
      # $<1:...> keeps multi-configuration generators (Visual Studio) from adding Debug/.
      RUNTIME_OUTPUT_DIRECTORY $<1:${CMAKE_BINARY_DIR}/lessons/${dir}>)
  endforeach()
  set_property(GLOBAL APPEND PROPERTY LAB_LESSONS ${dir})
endfunction()
