#define BOOST_TEST_MODULE troupe patterns
#include <boost/test/unit_test.hpp>
