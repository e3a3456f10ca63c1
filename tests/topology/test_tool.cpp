// `troupe` with the test kinds registered: the way a user builds a troupe
// that knows kinds of their own, and what the command-line tests run.

#include "topology/run_kinds.hpp"

#include <troupe/tools/tool_main.hpp>

int main(int argc, char** argv) {
  troupe::test::register_run_kinds();
  return troupe::tool_main(argc, argv);
}
