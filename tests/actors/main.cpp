#define BOOST_TEST_MODULE troupe actors
#include <boost/test/unit_test.hpp>
