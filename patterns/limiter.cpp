#include "troupe/patterns/limiter.hpp"
