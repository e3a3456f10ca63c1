#!/usr/bin/env bash
# `meson install` gives a consumer what it needs: headers under include/troupe/
# and a troupe.pc that compiles and links a program against the library.
set -euo pipefail
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
pc=$(dirname "$(find "$dest" -name troupe.pc | head -n 1)")
prefix=$(PKG_CONFIG_PATH=$pc pkg-config --variable=prefix troupe)
test -f "$dest$prefix/include/troupe/supervision/supervisor.hpp"
cat > "$dest/consumer.cpp" <<'CPP'
#include <troupe/actors/system.hpp>
#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>
int main() {
  troupe::system sys;
  auto root = troupe::spawn_supervisor(sys, troupe::supervisor_spec{});
  auto report = troupe::shutdown(sys, root);
  return report && report->stopped == troupe::stop_reason::drained ? 0 : 1;
}
CPP
flags=$(PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$dest pkg-config --cflags --libs troupe)
# shellcheck disable=SC2086
c++ -std=c++17 "$dest/consumer.cpp" -o "$dest/consumer" $flags
LD_LIBRARY_PATH=$(dirname "$(find "$dest" -name 'libtroupe.so*' | head -n 1)") "$dest/consumer"
echo "installed headers and troupe.pc build a working consumer"
