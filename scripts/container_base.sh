#!/usr/bin/env bash
# Make this machine able to build and run vidgen's containers with podman, doing only what is missing:
#
#   1. podman, runc and debootstrap (apt-get), and podman's Docker-compatible socket client side;
#   2. /etc/containers/containers.conf with the settings a sandboxed machine needs (runc instead of
#      crun, cgroupfs, file events, explicit ulimits: crun and podman's default ulimits are refused);
#   3. the base image localhost/debian:bookworm, made with debootstrap from the Debian mirror apt
#      already uses, when no container registry is reachable to pull python:3.11-slim from.
#
# Run it as root; run it again any time: each step is skipped when its result is already there.
# Afterwards build with `--build-arg BASE_IMAGE=localhost/debian:bookworm` (deployments/README.md).
set -euo pipefail

BASE_IMAGE=localhost/debian:bookworm
CONTAINERS_CONF=/etc/containers/containers.conf

say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    say "installing podman, runc, debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
else
    say "podman, runc and debootstrap are installed"
fi

if [ -f "$CONTAINERS_CONF" ] && grep -q '^runtime = "runc"' "$CONTAINERS_CONF"; then
    say "$CONTAINERS_CONF already selects runc"
elif [ -s "$CONTAINERS_CONF" ]; then
    echo "$CONTAINERS_CONF exists with other settings; add these by hand:" >&2
    echo '  [engine] runtime = "runc", cgroup_manager = "cgroupfs", events_logger = "file"' >&2
    echo '  [containers] default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' >&2
    exit 1
else
    say "writing $CONTAINERS_CONF"
    mkdir -p "$(dirname "$CONTAINERS_CONF")"
    cat >"$CONTAINERS_CONF" <<'CONF'
# Written by scripts/container_base.sh: this machine's sandbox refuses crun and podman's default ulimits.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi

if podman image exists "$BASE_IMAGE"; then
    say "$BASE_IMAGE exists"
elif podman pull --quiet docker.io/library/python:3.11-slim >/dev/null 2>&1; then
    say "a registry is reachable: build with the Dockerfile's default base (python:3.11-slim); no local base needed"
else
    # The mirror apt uses, so the base is made from wherever this machine already gets Debian from.
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d /var/tmp/debian-bookworm.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    say "no registry reachable: making $BASE_IMAGE with debootstrap from $mirror (about a minute)"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    tar -C "$rootfs" -c . | podman import --quiet - "$BASE_IMAGE" >/dev/null
    say "made $BASE_IMAGE"
fi
