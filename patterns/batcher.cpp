#include "troupe/patterns/batcher.hpp"
