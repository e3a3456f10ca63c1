#!/usr/bin/env bash
# A user's own `troupe` against the installed library: troupe_topology.pc,
# the installed headers, a kind registered before tool_main(), usable from a
# file like a built-in one.
set -euo pipefail
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
pc=$(dirname "$(find "$dest" -name troupe_topology.pc | head -n 1)")
prefix=$(PKG_CONFIG_PATH=$pc pkg-config --variable=prefix troupe_topology)
test -x "$dest$prefix/bin/troupe" || { echo "FAIL: troupe not installed" >&2; exit 1; }
cat > "$dest/my_troupe.cpp" <<'CPP'
#include <troupe/tools/tool_main.hpp>
#include <troupe/topology/kind.hpp>

int main(int argc, char** argv) {
  troupe::register_kind(troupe::source_kind(
    "ticks", "counts to `count`", [](troupe::kind_config& c) {
      auto count = c.integer("count", 10, 0, 1000000);
      return troupe::actor_starter{[count](const troupe::spawn_context& ctx,
                                           const troupe::wiring& w) {
        auto next = std::make_shared<int64_t>(0);
        return troupe::spawn_source(ctx, w.links,
                                    [count, next](troupe::emitter& out, size_t max) {
          for (size_t i = 0; i < max && *next < count; ++i)
            out.push(caf::make_message((*next)++));
          return *next < count;
        });
      }};
    }));
  troupe::register_kind(troupe::sink_kind(
    "drop", "takes items", [](troupe::kind_config&) {
      return troupe::actor_starter{[](const troupe::spawn_context& ctx,
                                      const troupe::wiring& w) {
        return troupe::spawn_stage(ctx, w.links, [](troupe::item&, troupe::emitter&) {});
      }};
    }));
  return troupe::tool_main(argc, argv);
}
CPP
flags=$(PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$dest pkg-config --cflags --libs troupe_topology)
# shellcheck disable=SC2086
c++ -std=c++17 "$dest/my_troupe.cpp" -o "$dest/my_troupe" $flags
export LD_LIBRARY_PATH
LD_LIBRARY_PATH=$(dirname "$(find "$dest" -name 'libtroupe_topology.so*' | head -n 1)")
"$dest/my_troupe" kinds | grep -q '^ticks ' || { echo "FAIL: kinds" >&2; exit 1; }
cat > "$dest/t.toml" <<'TOML'
[actors.ticks]
kind = "ticks"
count = 500
next = "drop"

[actors.drop]
kind = "drop"
TOML
"$dest/my_troupe" run "$dest/t.toml" --report json > "$dest/report.json"
grep -q '"consumed": 500' "$dest/report.json" || { cat "$dest/report.json" >&2; exit 1; }
echo "a troupe of one's own builds against the installed library and runs"
