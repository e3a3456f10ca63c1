#include "troupe/actors/stage.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/stream_link.hpp"
#include "troupe/actors/system.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/send.hpp>
#include <caf/type_nr.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <memory>
#include <typeinfo>
#include <unordered_map>
#include <vector>

namespace troupe {

emitter::~emitter() = default;

stage_control::~stage_control() = default;

stage_logic::~stage_logic() = default;

void stage_logic::on_start(stage_control&) {
  // nop
}

void stage_logic::on_round_end(emitter&) {
  // nop
}

bool stage_logic::ready() {
  return true;
}

bool stage_logic::busy() const {
  return false;
}

void stage_logic::on_timer(uint64_t, emitter&) {
  // nop
}

void stage_logic::on_end(emitter&, const caf::error&) {
  // nop
}

caf::result<caf::message> stage_logic::on_request(caf::message&) {
  return caf::sec::unexpected_message;
}

void stage_logic::on_response(uint64_t, caf::message&) {
  // nop
}

void stage_logic::describe(actor_report&) const {
  // nop
}

void stage_logic::on_stop(const caf::error&) {
  // nop
}

source_logic::~source_logic() = default;

void source_logic::on_start(stage_control&) {
  // nop
}

void source_logic::on_timer(uint64_t, emitter&) {
  // nop
}

void source_logic::on_end(emitter&) {
  // nop
}

namespace {

using crash_flush_atom = caf::atom_constant<caf::atom("trp_crashf")>;

using source_poll_atom = caf::atom_constant<caf::atom("trp_spoll")>;

using stage_timer_atom = caf::atom_constant<caf::atom("trp_stimer")>;

using pump_again_atom = caf::atom_constant<caf::atom("trp_pumpag")>;

/// How long one round may take items before the stage lets its mailbox in
/// (a kill at a shutdown deadline, a cancel, status): slow logic with a full
/// window queued would otherwise hold the actor for the whole window.
constexpr auto max_round = std::chrono::milliseconds(1);

/// Most messages a stage handles while a resume is owed before it resumes
/// anyway: a mailbox that never empties must not hold results back.
constexpr size_t max_deferred_resumes = 64;

/// How long a stage whose logic threw may take to deliver what it had emitted.
constexpr caf::timespan crash_flush_timeout = std::chrono::seconds(1);

/// How often a source that had nothing to emit is asked again.
constexpr caf::timespan min_poll_delay = std::chrono::milliseconds(1);
constexpr caf::timespan max_poll_delay = std::chrono::milliseconds(100);

// The state of one stage incarnation, shared between its behavior and the
// functor that reports its counters when it stops (also on crash or kill).
class stage_core final : public stage_control,
                         public std::enable_shared_from_this<stage_core> {
public:
  stage_core(spawn_context ctx, stage_config cfg, uint32_t window)
    : ctx_(std::move(ctx)),
      cfg_(std::move(cfg)),
      inputs_(new_epoch(), window) {
    // nop
  }

  void set_logic(std::unique_ptr<stage_logic> x) {
    stage_ = std::move(x);
  }

  void set_logic(std::unique_ptr<source_logic> x) {
    source_ = std::move(x);
  }

  caf::behavior start(caf::event_based_actor* self) {
    self_ = self;
    if (cfg_.kind.empty())
      cfg_.kind = source_ ? "source" : (cfg_.next.empty() ? "sink" : "stage");
    auto me = address_or(ctx_, caf::actor_cast<caf::actor>(self));
    for (auto& next : cfg_.next) {
      outputs_.emplace_back(next, new_link_id());
      self->send(next, link_open{me, outputs_.back().id()});
    }
    auto c = shared_from_this();
    self->set_default_handler(
      [c](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
        return c->request(x);
      });
    guarded([this] {
      if (stage_)
        stage_->on_start(*this);
      else
        source_->on_start(*this);
    });
    return {
      [c](link_open& x) {
        c->inputs_.open(x);
        c->pump();
      },
      [c](link_items& x) {
        c->inputs_.receive(std::move(x));
        c->pump();
      },
      [c](const demand& x) {
        for (auto& out : c->outputs_)
          if (out.id() == x.link)
            out.on_demand(x);
        c->pump();
      },
      [c](const end_of_stream& x) {
        c->inputs_.end(x);
        c->pump();
      },
      [c](drain_atom) { c->drain(); },
      // The deadline is for supervisors; a stage simply finishes its stream.
      [c](drain_atom, caf::timespan) { c->drain(); },
      [c](stop_intake_atom) {
        c->intake_stopped_ = true;
        c->pump();
      },
      [c](crash_flush_atom) { c->exit_failed(); },
      [c](source_poll_atom) {
        c->poll_pending_ = false;
        c->pump();
      },
      [c](pump_again_atom) {
        c->resume_pending_ = false;
        c->pump();
      },
      [c](stage_timer_atom, uint64_t token) {
        // An ending source has closed its outputs: nothing is due any more.
        if (!c->finished_ && !c->failure_ && (c->stage_ || !c->ending_))
          c->guarded([&] {
            if (c->stage_)
              c->stage_->on_timer(token, *c);
            else
              c->source_->on_timer(token, *c);
          });
        c->pump();
      },
      [c](cancel_atom) {
        c->self_->quit(make_error(errc::cancelled));
      },
      [c](status_atom) { return c->report(stop_reason::running); },
    };
  }

  // A source stops producing; a stage ends once its inputs have ended (at
  // once if it never had any).
  void drain() {
    draining_ = true;
    intake_stopped_ = true;
    pump();
  }

  caf::event_based_actor* self() override {
    return self_;
  }

  size_t outputs() const override {
    return outputs_.size();
  }

  void schedule(caf::timespan delay, uint64_t token) override {
    self_->delayed_send(self_, delay, stage_timer_atom::value, token);
  }

  void resume() override {
    if (in_message_) {
      resume_owed_ = true;
      return;
    }
    pump();
  }

  void request(const caf::actor& dest, caf::message msg, uint64_t tag) override {
    auto id = self_->request(dest, caf::duration{caf::infinite}, std::move(msg)).id();
    if (!requests_)
      requests_ = std::make_unique<request_table>();
    auto& t = *requests_;
    if (t.spare.empty()) {
      t.tags.emplace(id.integer_value(), tag);
      return;
    }
    auto node = std::move(t.spare.back());
    t.spare.pop_back();
    node.key() = id.integer_value();
    node.mapped() = tag;
    t.tags.insert(std::move(node));
  }

  // Called by the actor before each message it handles. A resume owed
  // waits only behind responses: any other message (a status request, a
  // control message) sees the stage as if it had resumed at once.
  void enter_message(bool is_response) {
    if (resume_owed_ && !is_response && !finished_)
      pump();
    in_message_ = true;
  }

  // Resumes when owed and no other message waits: results that arrive
  // together leave together.
  void leave_message() {
    in_message_ = false;
    if (!resume_owed_ || finished_)
      return;
    if (!self_->mailbox().empty() && ++deferred_ < max_deferred_resumes)
      return;
    pump();
  }

  // A response to a request of stage_control::request goes to the logic;
  // false for other responses (CAF's own response handlers take them).
  bool take_response(caf::mailbox_element& x) {
    if (!requests_)
      return false;
    auto& t = *requests_;
    auto i = t.tags.find(x.mid.integer_value());
    if (i == t.tags.end())
      return false;
    auto tag = i->second;
    // The node is kept for the next request: no allocation per request.
    t.spare.push_back(t.tags.extract(i));
    if (!stage_ || finished_ || failure_)
      return true;
    auto answer = x.move_content_to_message();
    guarded([&] { stage_->on_response(tag, answer); });
    resume_owed_ = true;
    return true;
  }

  bool draining() const override {
    return draining_;
  }

  void push(item x) override {
    ++out_;
    if (ending_)
      ++flushed_;
    if (outputs_.empty() || outputs_closed_) {
      ++dropped_;
      return;
    }
    for (size_t i = 1; i < outputs_.size(); ++i)
      outputs_[i].push(x);
    outputs_.front().push(std::move(x));
  }

  actor_report report(stop_reason how) const {
    actor_report r;
    r.name = ctx_.name();
    r.kind = cfg_.kind;
    r.in = in_;
    r.out = out_;
    r.flushed = flushed_;
    r.dropped = dropped_;
    r.errors = errors_;
    r.lost = inputs_.gaps();
    r.restarts = ctx_.restarts();
    r.stopped = how;
    for (auto& o : outputs_) {
      r.resent += o.resent();
      r.max_in_flight = std::max(r.max_in_flight, o.max_in_flight());
      // Sent, unacknowledged items may yet be consumed by a surviving
      // downstream: they are reported apart from what was never sent.
      if (how != stop_reason::running) {
        r.dropped += o.pending();
        r.unconfirmed += o.in_flight();
      }
    }
    if (unexpected_ > 0)
      r.stats["unexpected"] = static_cast<int64_t>(unexpected_);
    if (stage_)
      stage_->describe(r);
    return r;
  }

  // Credit goes out as if from the stable address, so that the upstream's
  // address knows where to end the link should the upstream fail for good,
  // and that notice reaches this stage's next incarnation too.
  void send_acks() {
    inputs_.flush_acks([this](const caf::actor& up, const demand& d) {
      if (ctx_.address())
        caf::send_as(ctx_.address(), up, d);
      else
        self_->send(up, d);
    });
  }

  // Lets the logic answer what it holds, then sends the final report to the
  // supervisor; runs as the actor exits.
  void on_exit(const caf::error& reason) {
    if (stage_) {
      try {
        stage_->on_stop(reason);
      } catch (...) {
        // The actor is gone already; its report still goes out.
      }
    }
    if (!ctx_.supervisor())
      return;
    auto r = report(stop_reason_of(reason, draining_));
    if (reason)
      r.error = ctx_.system().render(reason);
    caf::anon_send(ctx_.supervisor(), std::move(r));
  }

  // Items the logic may emit before an output link holds a full window.
  size_t room() const override {
    size_t result = std::numeric_limits<size_t>::max();
    for (auto& o : outputs_)
      result = std::min(result, o.room());
    return result;
  }

  // The logic's answer to `msg`; what it throws is a crash of the stage (as
  // in guarded), built in place rather than assigned to a placeholder: a
  // request costs a few hundred instructions, and each caf::message made
  // and dropped on the way is an out-of-line call.
  caf::result<caf::message> answer_of(caf::message& msg) {
    try {
      return stage_->on_request(msg);
    } catch (const std::exception& e) {
      fail(e.what());
    } catch (...) {
      fail("unknown exception");
    }
    return failure_;
  }

  // A message outside the stream protocol, for the logic to answer (from
  // the default handler, or from stage_actor::consume at once).
  caf::result<caf::message> request(caf::message_view& x) {
    if (failure_)
      return failure_;
    if (!stage_ || finished_) {
      ++unexpected_;
      return caf::sec::unexpected_message;
    }
    auto msg = x.move_content_to_message();
    auto result = answer_of(msg);
    if (failure_)
      return failure_;
    if (result.flag == caf::rt_error
        && result.err == caf::sec::unexpected_message)
      ++unexpected_;
    pump();
    return result;
  }

private:
  bool has_room() const {
    return outputs_.empty() || room() > 0;
  }

  bool inputs_done() const {
    return inputs_.all_ended()
           && (draining_ || inputs_.upstreams() >= cfg_.inputs)
           && !stage_->busy();
  }

  // Runs logic code; what it throws is a crash of the stage. Returns false
  // if it threw.
  template <class F>
  bool guarded(F&& f) {
    try {
      f();
      return true;
    } catch (const std::exception& e) {
      fail(e.what());
    } catch (...) {
      fail("unknown exception");
    }
    return false;
  }

  // Consumes and produces what credit and room allow, then sends. Logic that
  // wakes the stage from inside a round only asks for another round.
  void pump() {
    if (pumping_) {
      pump_again_ = true;
      return;
    }
    resume_owed_ = false;
    deferred_ = 0;
    pumping_ = true;
    do {
      pump_again_ = false;
      pump_round();
    } while (pump_again_ && !finished_);
    pumping_ = false;
  }

  void pump_round() {
    if (finished_)
      return;
    if (failure_) {
      flush();
      return;
    }
    auto ok = guarded([this] {
      // The clock is read as the first item is taken (a round with nothing
      // to take reads none), then after 1, 2, 4 ... 32 items, then every 32:
      // slow logic is caught after its first item, fast logic pays next to
      // nothing.
      std::chrono::steady_clock::time_point round_end;
      size_t taken = 0;
      size_t next_check = 1;
      while (!ending_ && inputs_.has_item() && has_room() && stage_->ready()) {
        if (taken == 0)
          round_end = std::chrono::steady_clock::now() + max_round;
        auto x = inputs_.take();
        ++in_;
        stage_->on_item(x, *this);
        if (++taken < next_check)
          continue;
        next_check = taken < 32 ? taken * 2 : taken + 32;
        if (inputs_.has_item() && std::chrono::steady_clock::now() > round_end) {
          if (!resume_pending_) {
            resume_pending_ = true;
            self_->send(self_, pump_again_atom::value);
          }
          break;
        }
      }
      if (taken > 0)
        stage_->on_round_end(*this);
      if (source_ && !ending_) {
        if (intake_stopped_)
          begin_end(caf::error{});
        else if (has_room())
          produce();
      } else if (stage_ && !ending_ && inputs_done()) {
        begin_end(inputs_.error());
      }
    });
    if (ok)
      flush();
  }

  void produce() {
    auto before = out_;
    if (!source_->produce(*this, room())) {
      begin_end(caf::error{});
      return;
    }
    if (out_ != before) {
      poll_delay_ = min_poll_delay;
      return;
    }
    // Nothing now and nothing in flight: no demand will come back to wake the
    // source, so it asks again later, backing off while it stays empty.
    bool idle = std::all_of(outputs_.begin(), outputs_.end(),
                            [](const outbound_link& o) { return o.buffered() == 0; });
    if (idle && !poll_pending_) {
      poll_pending_ = true;
      self_->delayed_send(self_, poll_delay_, source_poll_atom::value);
      poll_delay_ = std::min(poll_delay_ * 2, max_poll_delay);
    }
  }

  void begin_end(const caf::error& reason) {
    ending_ = true;
    if (stage_)
      stage_->on_end(*this, reason);
    else
      source_->on_end(*this);
    for (auto& o : outputs_)
      o.close(reason);
    outputs_closed_ = true;
  }

  // Whether to send what credit allows on `o` now. While the downstream
  // still has half a window unacknowledged, it has plenty to do: small sends
  // wait until a quarter window is due, since each send is a message and an
  // acknowledgement back (a stage that takes one item per answer would
  // otherwise move its input one item per message each way).
  bool send_due(const outbound_link& o) const {
    auto w = o.window();
    return ending_ || failure_ || o.in_flight() < w / 2 || o.sendable() >= w / 4;
  }

  void flush() {
    bool all_ended = true;
    for (auto& o : outputs_) {
      if (send_due(o) && o.take_sendable(scratch_)) {
        self_->send(o.downstream(), std::move(scratch_));
        scratch_ = link_items{};
      }
      if (o.end_due())
        self_->send(o.downstream(), o.take_end());
      all_ended = all_ended && o.end_sent();
    }
    send_acks();
    if (failure_) {
      if (std::all_of(outputs_.begin(), outputs_.end(),
                      [](const outbound_link& o) { return o.buffered() == 0; }))
        exit_failed();
    } else if (ending_ && all_ended && !(stage_ && stage_->busy())) {
      finished_ = true;
      self_->quit();
    }
  }

  // The logic threw. The item counts as an error and is acknowledged, so it is
  // not fed to the next incarnation again (no poison-pill loop); what is still
  // queued is not acknowledged and goes to the next incarnation instead. What
  // the logic emitted before it threw is valid data: the stage delivers it
  // (within crash_flush_timeout) before it exits with the error.
  void fail(const std::string& what) {
    ++errors_;
    failure_ = caf::make_error(caf::sec::runtime_error, what);
    self_->delayed_send(self_, crash_flush_timeout, crash_flush_atom::value);
    flush();
  }

  void exit_failed() {
    if (finished_)
      return;
    finished_ = true;
    self_->quit(failure_);
  }

  spawn_context ctx_;
  stage_config cfg_;
  caf::event_based_actor* self_ = nullptr;
  std::unique_ptr<stage_logic> stage_;
  std::unique_ptr<source_logic> source_;
  std::vector<outbound_link> outputs_;
  inbound_links inputs_;
  link_items scratch_;
  bool draining_ = false;
  bool intake_stopped_ = false;
  bool ending_ = false;
  bool outputs_closed_ = false;
  bool finished_ = false;
  bool pumping_ = false;
  bool pump_again_ = false;
  bool resume_pending_ = false;
  caf::error failure_;
  bool poll_pending_ = false;
  bool in_message_ = false;
  bool resume_owed_ = false;
  size_t deferred_ = 0;
  // Requests of stage_control::request in flight: response id -> tag; and
  // nodes of answered ones, reused. Made by the first request: most stages
  // never make one, and an idle stage should stay small.
  struct request_table {
    std::unordered_map<uint64_t, uint64_t> tags;
    std::vector<std::unordered_map<uint64_t, uint64_t>::node_type> spare;
  };
  std::unique_ptr<request_table> requests_;
  caf::timespan poll_delay_ = min_poll_delay;
  uint64_t in_ = 0;
  uint64_t out_ = 0;
  uint64_t flushed_ = 0;
  uint64_t dropped_ = 0;
  uint64_t errors_ = 0;
  uint64_t unexpected_ = 0;
};

void validate(const stage_config& cfg, bool is_source, const std::string& name) {
  auto where = "stage_config" + (name.empty() ? "" : " of '" + name + "'");
  for (size_t i = 0; i < cfg.next.size(); ++i)
    if (!cfg.next[i])
      throw config_error(where, "next[" + std::to_string(i) + "] is not an actor");
  if (is_source && cfg.next.empty())
    throw config_error(where, "next is empty: a source needs a downstream");
  if (!is_source && cfg.inputs == 0)
    throw config_error(where, "inputs is 0: a stage waits for at least one input");
}

// The actor of a stage. It routes the responses to stage_control::request
// to the logic before CAF looks for a response handler, and lets the core
// resume once per burst of messages.
class stage_actor final : public caf::event_based_actor {
public:
  stage_actor(caf::actor_config& cfg, std::shared_ptr<stage_core> core)
    : caf::event_based_actor(cfg), core_(std::move(core)) {
    // nop
  }

  caf::behavior make_behavior() override {
    auto core = core_;
    attach_functor([core](const caf::error& reason) { core->on_exit(reason); });
    return core_->start(this);
  }

  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    if (!core_)
      return caf::event_based_actor::consume(x);
    core_->enter_message(x.mid.is_response());
    auto result = caf::invoke_message_result::consumed;
    if (x.mid.is_response()) {
      if (!core_->take_response(x))
        result = caf::event_based_actor::consume(x);
    } else if (awaited_responses_.empty() && has_behavior()
               && for_the_logic(x.content())) {
      // While a logic awaits a response (request(...).await), CAF keeps
      // other messages in the mailbox: that stays CAF's to do.
      result = answer(x);
    } else {
      result = caf::event_based_actor::consume(x);
    }
    core_->leave_message();
    return result;
  }

  // What the core holds (the logic, its workers' handles) must not live on
  // in a stopped actor that someone still holds a handle of.
  void on_exit() override {
    core_.reset();
  }

private:
  // Whether `xs` can only end at the logic's on_request: it starts with a
  // plain value (a number, a string, a type of the user's) that no case of
  // the stage's behavior takes and CAF does not handle itself (its system
  // messages and atoms are built-in types of their own). Such a message
  // skips CAF's matching of every behavior case before the default handler,
  // which costs as much as the stage's own handling of it.
  static bool for_the_logic(const caf::type_erased_tuple& xs) {
    if (xs.empty())
      return false;
    auto [nr, info] = xs.type(0);
    if (nr == 0)
      return *info != typeid(link_open) && *info != typeid(link_items)
             && *info != typeid(demand) && *info != typeid(end_of_stream);
    static const std::array<uint16_t, 12> plain{
      caf::type_nr<int8_t>::value,   caf::type_nr<int16_t>::value,
      caf::type_nr<int32_t>::value,  caf::type_nr<int64_t>::value,
      caf::type_nr<uint8_t>::value,  caf::type_nr<uint16_t>::value,
      caf::type_nr<uint32_t>::value, caf::type_nr<uint64_t>::value,
      caf::type_nr<bool>::value,     caf::type_nr<float>::value,
      caf::type_nr<double>::value,   caf::type_nr<std::string>::value,
    };
    return std::find(plain.begin(), plain.end(), nr) != plain.end();
  }

  // What CAF's consume does for a message its behavior does not match: the
  // default handler's result goes back as CAF's result visitor sends it (an
  // empty value is no answer to an asynchronous message).
  caf::invoke_message_result answer(caf::mailbox_element& x) {
    current_mailbox_element(&x);
    auto r = core_->request(x);
    // Without a sender or stages nobody could get an answer; making the
    // promise to find that out costs a fifth of the whole handling.
    if (x.sender == nullptr && x.stages.empty())
      return r.flag == caf::rt_skip ? caf::invoke_message_result::skipped
                                    : caf::invoke_message_result::consumed;
    switch (r.flag) {
      case caf::rt_value: {
        if (r.value.empty() && !x.mid.is_request())
          break; // an empty value answers no asynchronous message
        auto rp = make_response_promise();
        if (rp.pending())
          rp.deliver(std::move(r.value));
        break;
      }
      case caf::rt_error: {
        auto rp = make_response_promise();
        if (rp.pending())
          rp.deliver(std::move(r.err));
        break;
      }
      case caf::rt_delegated:
        break;
      case caf::rt_skip:
        return caf::invoke_message_result::skipped;
    }
    return caf::invoke_message_result::consumed;
  }

  std::shared_ptr<stage_core> core_;
};

template <class Logic>
caf::actor spawn_core(spawn_context ctx, stage_config cfg,
                      std::unique_ptr<Logic> logic) {
  constexpr bool is_source = std::is_same<Logic, source_logic>::value;
  if (!logic)
    throw config_error("spawn_" + std::string(is_source ? "source" : "stage"),
                       "logic is empty");
  validate(cfg, is_source, ctx.name());
  auto window = cfg.credit != 0 ? cfg.credit : default_credit(ctx.system());
  auto core = std::make_shared<stage_core>(ctx, std::move(cfg), window);
  core->set_logic(std::move(logic));
  ctx.declare(child_protocol{true, is_source});
  return ctx.system().spawn<stage_actor>(std::move(core));
}

class function_stage final : public stage_logic {
public:
  explicit function_stage(item_function f) : f_(std::move(f)) {
    // nop
  }
  void on_item(item& x, emitter& out) override {
    f_(x, out);
  }

private:
  item_function f_;
};

class function_source final : public source_logic {
public:
  explicit function_source(produce_function f) : f_(std::move(f)) {
    // nop
  }
  bool produce(emitter& out, size_t max) override {
    return f_(out, max);
  }

private:
  produce_function f_;
};

} // namespace

caf::actor spawn_stage(spawn_context ctx, stage_config cfg,
                       std::unique_ptr<stage_logic> logic) {
  return spawn_core(std::move(ctx), std::move(cfg), std::move(logic));
}

caf::actor spawn_source(spawn_context ctx, stage_config cfg,
                        std::unique_ptr<source_logic> logic) {
  return spawn_core(std::move(ctx), std::move(cfg), std::move(logic));
}

caf::actor spawn_stage(spawn_context ctx, stage_config cfg, item_function f) {
  if (!f)
    throw config_error("spawn_stage", "item function is empty");
  return spawn_stage(std::move(ctx), std::move(cfg),
                     std::make_unique<function_stage>(std::move(f)));
}

caf::actor spawn_source(spawn_context ctx, stage_config cfg,
                        produce_function f) {
  if (!f)
    throw config_error("spawn_source", "produce function is empty");
  return spawn_source(std::move(ctx), std::move(cfg),
                      std::make_unique<function_source>(std::move(f)));
}

} // namespace troupe
