#define BOOST_TEST_MODULE troupe supervision
#include <boost/test/unit_test.hpp>
