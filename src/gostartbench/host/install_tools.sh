#!/usr/bin/env bash
# Installs the Debian tools gostartbench uses: upx-ucl (from bookworm-backports), musl-tools,
# binutils, gcc, time, bpftrace (eBPF uprobes: the second phase instrument, used as root),
# linux-perf (perf: the sampler of profiled starts),
# and with --containers podman and debootstrap (container cells and their local base images)
# and, on a hybrid cgroup host, the one host setting crun needs (below). hyperfine is not among them: it comes from PyPI as a dependency
# (astral-dev-toolchain-hyperfine). Reuses the Debian mirror already configured on the host:
# no host name is written here. Run by `gostartbench doctor --install` (and so by
# `nox -s bench`) when a tool is missing and the user may install, and by CI.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
need=()
command -v upx >/dev/null || need+=(upx-ucl)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v strip >/dev/null || need+=(binutils)
command -v cc >/dev/null || need+=(gcc)
[ -x /usr/bin/time ] || need+=(time)
command -v bpftrace >/dev/null || need+=(bpftrace)  # the second phase instrument (uprobes)
command -v perf >/dev/null || need+=(linux-perf)  # the sampler of profiled starts
containers=0
[ "${1:-}" = "--containers" ] && containers=1  # container cells: the engine and its host setting
if [ $containers = 1 ]; then
  command -v podman >/dev/null || need+=(podman)  # the container engine of `container` cells
  command -v debootstrap >/dev/null || need+=(debootstrap)  # the local Debian base image
fi

# crun refuses a hybrid cgroup layout whose cgroup2 mount holds a controller ("cgroups in
# hybrid mode not supported"): move each such controller to a v1 hierarchy of its own (root).
# gostartbench doctor detects the same and prints these commands.
fix_cgroups() {
  [ $containers = 1 ] || return 0
  local ctl=/sys/fs/cgroup/unified/cgroup.controllers c
  [ -e /sys/fs/cgroup/cgroup.controllers ] && return 0  # pure cgroup v2
  [ -r "$ctl" ] || return 0
  for c in $(cat "$ctl"); do
    $SUDO mkdir -p "/sys/fs/cgroup/$c" && $SUDO mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" \
      && echo "install-tools: cgroup controller $c moved to /sys/fs/cgroup/$c (v1) for crun"
  done
}
if [ ${#need[@]} -eq 0 ]; then fix_cgroups; echo "install-tools: all present"; exit 0; fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
bp=/etc/apt/sources.list.d/gostartbench-backports.sources
if [ ! -e "$bp" ] && ! grep -rqs -- "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # The first non-security URI among the configured deb822 or one-line sources.
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | grep -v security | awk '{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n1 || true)
  fi
  if [ -n "$uri" ]; then
    printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" "$codename" | $SUDO tee "$bp" >/dev/null
  fi
fi
$SUDO apt-get update -qq
pkgs=()
for p in "${need[@]}"; do
  if [ "$p" = upx-ucl ]; then pkgs+=("upx-ucl/${codename}-backports"); else pkgs+=("$p"); fi
done
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fix_cgroups
upx --version | head -n1
