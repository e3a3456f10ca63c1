// toml++'s implementation, compiled once for the whole library (see
// topology/meson.build for why not Debian's shared library).
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
