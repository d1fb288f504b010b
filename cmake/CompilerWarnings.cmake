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
