// Function workers: a batch is answered with one result per item, in order;
// an item whose function returns an error or throws gets that error in its
// place, and the worker carries on.

#include "fixture.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/actors/messages.hpp>
#include <troupe/patterns/function_worker.hpp>

#include <stdexcept>

using namespace troupe;
using namespace troupe::test;

namespace {

caf::expected<item> halve_even(item& x) {
  auto n = x.get_as<uint64_t>(0);
  if (n == 3)
    throw std::runtime_error("three");
  if (n % 2 != 0)
    return caf::make_error(caf::sec::invalid_argument, "odd");
  return make_item(n / 2);
}

batch numbers(std::initializer_list<uint64_t> xs) {
  batch result;
  for (auto x : xs)
    result.items.push_back(make_item(x));
  return result;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(function_worker, system_fixture)

BOOST_AUTO_TEST_CASE(a_batch_is_answered_with_one_result_per_item_in_order) {
  auto worker = spawn_function_worker(sys.actors(), halve_even);
  self->request(worker, patience, numbers({8, 2, 4}))
    .receive(
      [](batch& results) {
        BOOST_REQUIRE_EQUAL(results.items.size(), 3u);
        BOOST_CHECK_EQUAL(results.items[0].get_as<uint64_t>(0), 4u);
        BOOST_CHECK_EQUAL(results.items[1].get_as<uint64_t>(0), 1u);
        BOOST_CHECK_EQUAL(results.items[2].get_as<uint64_t>(0), 2u);
      },
      fail_on_error());
  caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(an_error_or_a_throw_takes_the_place_of_that_result_alone) {
  auto worker = spawn_function_worker(sys.actors(), halve_even);
  for (int round = 0; round < 2; ++round) // the worker survives the throw
    self->request(worker, patience, numbers({3, 6, 5}))
      .receive(
        [](batch& results) {
          BOOST_REQUIRE_EQUAL(results.items.size(), 3u);
          BOOST_REQUIRE(results.items[0].match_elements<caf::error>());
          auto& threw = results.items[0].get_as<caf::error>(0);
          BOOST_CHECK(threw == errc::job_threw);
          BOOST_CHECK_EQUAL(results.items[1].get_as<uint64_t>(0), 3u);
          BOOST_REQUIRE(results.items[2].match_elements<caf::error>());
          BOOST_CHECK(results.items[2].get_as<caf::error>(0)
                      == caf::sec::invalid_argument);
        },
        fail_on_error());
  caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
