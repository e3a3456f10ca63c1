// In a program linked against libtroupe, CAF's calls reach libtroupe's
// connection watch: nothing is reported as unwatched (the node's log would
// otherwise say what is not checked; tests/actors/node_test.py shows what
// the watch tells).

#include <troupe/actors/connection_watch.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

BOOST_AUTO_TEST_SUITE(connection_watch)

BOOST_AUTO_TEST_CASE(libtroupe_is_bound_before_caf_and_openssl) {
  auto gaps = troupe::unwatched(true);
  std::string all;
  for (auto& gap : gaps)
    all += gap + "; ";
  BOOST_TEST(gaps.empty(), all);
}

BOOST_AUTO_TEST_SUITE_END()
