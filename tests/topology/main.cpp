#define BOOST_TEST_MODULE troupe topology
#include <boost/test/unit_test.hpp>
