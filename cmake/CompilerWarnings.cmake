# Warnings for our own targets (not generated code): link gradientd_warnings
# PRIVATE.
add_library(gradientd_warnings INTERFACE)
target_compile_options(gradientd_warnings INTERFACE
  -Wall
  -Wextra
  -Wpedantic
  -Wshadow              # a local hides another name
  -Wconversion          # implicit narrowing
  -Wsign-conversion     # implicit signed/unsigned changes
  -Wnon-virtual-dtor    # polymorphic class without a virtual destructor
  -Wold-style-cast
  -Woverloaded-virtual
  -Wdouble-promotion    # float silently widened
  -Wimplicit-fallthrough
)

# Clang's thread-safety analysis (tools/thread_safety.sh): the GUARDED_BY /
# REQUIRES annotations of util/thread_annotations.h become errors when broken.
option(GRADIENTD_THREAD_SAFETY_ANALYSIS "Make clang's -Wthread-safety findings errors" OFF)
if(GRADIENTD_THREAD_SAFETY_ANALYSIS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GRADIENTD_THREAD_SAFETY_ANALYSIS needs clang (CXX=clang++)")
  endif()
  target_compile_options(gradientd_warnings INTERFACE -Wthread-safety -Werror=thread-safety)
endif()
