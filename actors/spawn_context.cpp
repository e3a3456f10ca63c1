#include "troupe/actors/spawn_context.hpp"

#include "troupe/actors/system.hpp"

namespace troupe {

spawn_context::spawn_context(caf::actor_system& sys)
  : sys_(&sys), protocol_(std::make_shared<child_protocol>()) {
  // nop
}

spawn_context::spawn_context(troupe::system& sys)
  : spawn_context(sys.actors()) {
  // nop
}

spawn_context::spawn_context(caf::actor_system& sys, std::string name,
                             caf::actor address, caf::actor supervisor,
                             uint32_t restarts, lookup_function lookup)
  : sys_(&sys),
    name_(std::move(name)),
    address_(std::move(address)),
    supervisor_(std::move(supervisor)),
    restarts_(restarts),
    lookup_(std::move(lookup)),
    protocol_(std::make_shared<child_protocol>()) {
  // nop
}

caf::actor spawn_context::sibling(const std::string& name) const {
  return lookup_ ? lookup_(name) : caf::actor{};
}

void spawn_context::declare(child_protocol protocol) const {
  *protocol_ = protocol;
}

child_protocol spawn_context::declared() const {
  return *protocol_;
}

caf::actor address_or(const spawn_context& ctx, const caf::actor& self) {
  return ctx.address() ? ctx.address() : self;
}

} // namespace troupe
