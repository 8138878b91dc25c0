# Finds llhttp as Debian's node-llhttp package ships it: generated C sources in
# /usr/share/llhttp and the header in /usr/share/include/llhttp, and compiles them into
# the static library target llhttp::llhttp.
find_path(LLHTTP_INCLUDE_DIR llhttp.h
  PATHS /usr/share/include/llhttp /usr/include/llhttp /usr/include
  NO_DEFAULT_PATH)
find_path(LLHTTP_SOURCE_DIR llhttp.c PATHS /usr/share/llhttp NO_DEFAULT_PATH)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Llhttp REQUIRED_VARS LLHTTP_INCLUDE_DIR LLHTTP_SOURCE_DIR)

if(Llhttp_FOUND AND NOT TARGET llhttp::llhttp)
  add_library(quire_llhttp STATIC
    ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c ${LLHTTP_SOURCE_DIR}/llhttp.c)
  target_include_directories(quire_llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
  set_target_properties(quire_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
  # Generated third-party code: compiled as shipped, without our warning flags.
  target_compile_options(quire_llhttp PRIVATE -w)
  add_library(llhttp::llhttp ALIAS quire_llhttp)
endif()
mark_as_advanced(LLHTTP_INCLUDE_DIR LLHTTP_SOURCE_DIR)
