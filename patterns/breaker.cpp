#include "troupe/patterns/breaker.hpp"
