# Cross-build for 64-bit Windows with mingw-w64; the tests run the .exe programs under Wine.
#   cmake --preset windows   (Debian: apt-get install mingw-w64 wine)
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Link the C runtime statically so Wine needs no MinGW DLLs beside the .exe.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
find_program(LAB_WINE NAMES wine wine64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${LAB_WINE})
