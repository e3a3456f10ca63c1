#include "troupe/patterns/pool.hpp"
