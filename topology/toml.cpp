// toml++'s implementation, compiled once for the whole library (see
// topology/meson.build for why not Debian's shared library).
//
// toml++ 3.3's parser meets input it does not expect with an assertion
// (`[` then a newline, in a table header, for one): with NDEBUG and clang that
// becomes __builtin_assume, undefined behaviour on bad bytes, and without
// NDEBUG an abort. Its own checks right after report such input as a parse
// error with a position, so the assertions are turned off here, for every
// compiler and build type, and bad input always ends in a parse error.
#undef NDEBUG
#define TOML_ASSERT(expr) static_assert(true)
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
