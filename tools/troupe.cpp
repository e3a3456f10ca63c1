#include "troupe/tools/tool_main.hpp"

int main(int argc, char** argv) {
  return troupe::tool_main(argc, argv);
}
