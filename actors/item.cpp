#include "troupe/actors/item.hpp"

namespace troupe {

item::item(caf::message x) noexcept {
  if (x.size() == 1 && x.match_element<item>(0))
    init_from(x.get_as<item>(0));
  else
    new (&msg_) caf::message(std::move(x));
}

std::string to_string(const item& x) {
  return caf::to_string(x.to_message());
}

} // namespace troupe
