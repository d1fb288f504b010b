# Sanitizer and fuzzer instrumentation for the whole project.
#
#   GRADIENTD_SANITIZE_ADDRESS  AddressSanitizer + UndefinedBehaviorSanitizer
#                               (undefined behaviour is fatal, so it fails tests)
#   GRADIENTD_SANITIZE_THREAD   ThreadSanitizer
#   GRADIENTD_BUILD_FUZZERS     libFuzzer targets (clang only): every target is
#                               compiled with coverage instrumentation plus
#                               ASan + UBSan; the fuzzers link libFuzzer
#
# Include this from the top-level CMakeLists.txt *before* any
# add_subdirectory(): the flags are added at directory scope, so every target
# defined below it gets them -- our libraries, the generated protobuf library,
# the tools, the tests and the fuzzers -- without each target having to opt in
# (an ASan build where one library is not instrumented misses bugs, and a
# TSan build where one is not reports false races).
# Prebuilt system libraries (libprotobuf, Boost.program_options, GoogleTest)
# stay uninstrumented; see tests/tsan.supp.

option(GRADIENTD_SANITIZE_ADDRESS "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(GRADIENTD_SANITIZE_THREAD "Build with ThreadSanitizer" OFF)
option(GRADIENTD_BUILD_FUZZERS "Build the libFuzzer targets (requires clang)" OFF)

if(GRADIENTD_SANITIZE_ADDRESS AND GRADIENTD_SANITIZE_THREAD)
  message(FATAL_ERROR
    "GRADIENTD_SANITIZE_ADDRESS and GRADIENTD_SANITIZE_THREAD are mutually exclusive: "
    "use one build tree for each")
endif()
if(GRADIENTD_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR
      "GRADIENTD_BUILD_FUZZERS needs clang (libFuzzer); configure a separate build tree with "
      "CC=clang CXX=clang++ (tools/fuzz.sh does)")
  endif()
  if(GRADIENTD_SANITIZE_THREAD)
    message(FATAL_ERROR "GRADIENTD_BUILD_FUZZERS already uses ASan + UBSan; it cannot use TSan")
  endif()
endif()

set(_gradientd_sanitize_flags "")
if(GRADIENTD_SANITIZE_ADDRESS OR GRADIENTD_BUILD_FUZZERS)
  list(APPEND _gradientd_sanitize_flags
    -fsanitize=address,undefined
    -fno-sanitize-recover=undefined  # undefined behaviour aborts, so the test fails
    -fno-omit-frame-pointer)         # usable stack traces
endif()
if(GRADIENTD_SANITIZE_THREAD)
  list(APPEND _gradientd_sanitize_flags -fsanitize=thread -fno-omit-frame-pointer)
endif()

if(_gradientd_sanitize_flags)
  message(STATUS "gradientd: instrumenting every target with ${_gradientd_sanitize_flags}")
  add_compile_options(${_gradientd_sanitize_flags})
  add_link_options(${_gradientd_sanitize_flags})
endif()
if(GRADIENTD_SANITIZE_THREAD)
  # protobuf 3.21's map_field.h adds two members to MapFieldBase when
  # __SANITIZE_THREAD__ is defined (g++ defines it with -fsanitize=thread),
  # so every message with a map field -- google::protobuf::Struct, which
  # gradctl's JSON output uses -- gets a different layout in our code than in
  # Debian's uninstrumented libprotobuf, and inserting into a Struct crashes.
  # Keep the library's layout; _GLIBCXX_TSAN keeps what libstdc++ derives
  # from the same macro (shared_ptr's TSan-friendly reference counting).
  add_compile_options(-U__SANITIZE_THREAD__ -D_GLIBCXX_TSAN=1)
endif()
if(GRADIENTD_BUILD_FUZZERS)
  # Coverage feedback for libFuzzer in every library; only the fuzz targets
  # themselves link libFuzzer's main (see gradientd_fuzzer in tests/fuzz/).
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
unset(_gradientd_sanitize_flags)
