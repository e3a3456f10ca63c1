// A troupe node as a test process, driven by tests/actors/node_test.py:
//
//   node_peer serve [options]   opens a node, publishes "echo" (an order in,
//                               a receipt out), prints "port P" on stdout and
//                               runs until its stdin closes
//   node_peer ask --port P      reaches NAME (default "echo") at P, sends it
//                               an order and prints "receipt SKU TOTAL"
//   node_peer watch --port P    reaches "echo", monitors it, prints
//                               "watching" and then "down REASON" when it
//                               goes down
//
// Options: --port P, --name NAME, --patience-ms N (ask, watch; default
// 5000), --heartbeat-ms N, --timeout-ms N (0: no heartbeats),
// --tls CERT KEY CAFILE, --passphrase TEXT.
// Exit codes: 0 done; 2 node_unreachable; 3 no_actor_published_at_port;
// 4 node_error at start-up; 5 no down within 60 s; 1 anything else.
// Errors go to stderr as "error: ...", the node's and reach()'s log lines
// too.

#include "troupe/actors/errors.hpp"
#include "troupe/actors/node.hpp"
#include "troupe/actors/system.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

// A user type, registered on both sides under the same name: what the
// round trip proves crosses the wire.
struct order {
  std::string sku;
  int32_t quantity = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order& x) {
  return f(caf::meta::type_name("order"), x.sku, x.quantity);
}

struct receipt {
  std::string sku;
  int32_t total = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, receipt& x) {
  return f(caf::meta::type_name("receipt"), x.sku, x.total);
}

struct options {
  std::string mode;
  std::string name = "echo";
  troupe::node_settings node;
  std::chrono::milliseconds patience{5000};
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "error: " << why << "\n";
  std::exit(1);
}

options parse(int argc, char** argv) {
  options opts;
  if (argc < 2)
    usage("node_peer serve|ask|watch [options]");
  opts.mode = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size())
        usage(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--port")
      opts.node.port = static_cast<uint16_t>(std::stoi(value()));
    else if (args[i] == "--name")
      opts.name = value();
    else if (args[i] == "--patience-ms")
      opts.patience = std::chrono::milliseconds(std::stoi(value()));
    else if (args[i] == "--heartbeat-ms")
      opts.node.heartbeat = std::chrono::milliseconds(std::stoi(value()));
    else if (args[i] == "--timeout-ms")
      opts.node.node_timeout = std::chrono::milliseconds(std::stoi(value()));
    else if (args[i] == "--passphrase")
      opts.node.tls.passphrase = value();
    else if (args[i] == "--tls") {
      opts.node.tls.certificate = value();
      opts.node.tls.key = value();
      opts.node.tls.cafile = value();
    } else
      usage("unknown option " + args[i]);
  }
  return opts;
}

int exit_code(const caf::error& err) {
  if (err.category() == troupe::error_category
      && err.code() == static_cast<uint8_t>(troupe::errc::node_unreachable))
    return 2;
  if (err == caf::sec::no_actor_published_at_port)
    return 3;
  return 1;
}

int serve(caf::actor_system& sys, const options& opts) {
  // (The unused name is there because CAF 0.17 mishandles a spawned
  // function without arguments: UBSan sees a null reference.)
  auto echo = sys.spawn(
    [](const std::string&) -> caf::behavior {
      return {
        [](const order& x) { return receipt{x.sku, x.quantity * 2}; },
      };
    },
    std::string{"echo"});
  {
    troupe::node here{sys, opts.node, &std::cerr};
    here.publish("echo", echo);
    std::cout << "port " << here.port() << std::endl;
    std::string line;
    while (std::getline(std::cin, line))
      ;
  }
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  return 0;
}

int ask(caf::actor_system& sys, const options& opts) {
  auto who = troupe::reach(sys, "127.0.0.1", opts.node.port, opts.name,
                           opts.patience, &std::cerr);
  if (!who) {
    std::cerr << "error: " << sys.render(who.error()) << std::endl;
    return exit_code(who.error());
  }
  caf::scoped_actor self{sys};
  int code = 1;
  self->request(*who, std::chrono::seconds(10), order{"sku-7", 21})
    .receive(
      [&](const receipt& x) {
        std::cout << "receipt " << x.sku << " " << x.total << std::endl;
        code = 0;
      },
      [&](const caf::error& err) {
        std::cerr << "error: " << sys.render(err) << std::endl;
      });
  return code;
}

int watch(caf::actor_system& sys, const options& opts) {
  auto who = troupe::reach(sys, "127.0.0.1", opts.node.port, opts.name,
                           opts.patience, &std::cerr);
  if (!who) {
    std::cerr << "error: " << sys.render(who.error()) << std::endl;
    return exit_code(who.error());
  }
  caf::scoped_actor self{sys};
  self->monitor(*who);
  std::cout << "watching" << std::endl;
  int code = 5;
  self->receive(
    [&](const caf::down_msg& x) {
      std::cout << "down " << sys.render(x.reason) << std::endl;
      code = 0;
    },
    caf::after(std::chrono::seconds(60)) >> [] {});
  return code;
}

} // namespace

int main(int argc, char** argv) {
  auto opts = parse(argc, argv);
  caf::actor_system_config cfg;
  cfg.add_message_type<order>("order");
  cfg.add_message_type<receipt>("receipt");
  try {
    troupe::enable_distribution(cfg, opts.node);
  } catch (const troupe::node_error& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 4;
  }
  troupe::system_settings settings;
  settings.scheduler_threads = 2;
  troupe::apply_settings(cfg, settings);
  troupe::system sys{cfg};
  try {
    if (opts.mode == "serve")
      return serve(sys, opts);
    if (opts.mode == "ask")
      return ask(sys, opts);
    if (opts.mode == "watch")
      return watch(sys, opts);
  } catch (const troupe::node_error& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 4;
  }
  usage("unknown mode " + opts.mode);
}
