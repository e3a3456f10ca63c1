#include "troupe/actors/item.hpp"

namespace troupe {

item::item(caf::message x) noexcept : msg_(std::move(x)) {
  if (msg_.size() == 1 && msg_.match_element<item>(0))
    *this = item{msg_.get_as<item>(0)};
}

std::string to_string(const item& x) {
  return caf::to_string(x.to_message());
}

} // namespace troupe
