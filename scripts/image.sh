#!/usr/bin/env bash
# Build embedserve's container image (the Containerfile) with podman, or docker where that is
# what the machine has:
#
#   scripts/image.sh build [TAG]      # default TAG embedserve:latest
#   scripts/image.sh engine ARGS...   # the engine with this machine's flags (run, rm, inspect)
#
# BASE=IMAGE picks the base image (default: the official python:3.11-slim-bookworm). Where no
# registry answers, a Debian bookworm base is made here instead: debootstrap (minbase, with
# python3) from the Debian mirror that apt uses, imported as localhost/embedserve-base:bookworm.
#
# podman as root in a container-less sandbox needs runc, cgroupfs, the host network and no
# default ulimits (containers.conf beside this script); PODMAN_FLAGS replaces the first two.
# The build mounts this machine's pip configuration, CA certificates and local wheel folder
# read-only, so pip in the build reaches the same package index the host does.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
default_base="docker.io/library/python:3.11-slim-bookworm"
local_base="localhost/embedserve-base:bookworm"

install_tools() {
  if command -v podman >/dev/null || command -v docker >/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing podman, runc and debootstrap (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq podman runc debootstrap >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq podman runc debootstrap >/dev/null; }
  else
    echo "scripts/image.sh: needs podman or docker" >&2
    exit 2
  fi
}

engine_command() {  # the engine and its flags, one word per line
  if command -v podman >/dev/null; then
    echo podman
    # shellcheck disable=SC2086
    printf '%s\n' ${PODMAN_FLAGS---runtime runc --cgroup-manager cgroupfs}
  else
    echo docker
  fi
}

engine() {
  local command
  mapfile -t command < <(engine_command)
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
  "${command[@]}" "$@"
}

mirror() {
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -v security | head -n1 | awk '{print $2}')
  echo "${uri:-http://deb.debian.org/debian}"
}

local_base_image() {
  if engine image exists "$local_base" 2>/dev/null; then return; fi
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  local tree
  tree="$(mktemp -d)"
  echo "making $local_base: debootstrap bookworm from $(mirror)" >&2
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$tree" "$(mirror)" >/dev/null
  rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/* \
    "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/usr/share/info/* "$tree"/usr/share/locale/*
  tar -C "$tree" -c . | engine import - "$local_base" >/dev/null
  rm -rf "$tree"
}

choose_base() {
  if [ "${BASE:-}" = "$local_base" ]; then local_base_image; fi
  if [ -n "${BASE:-}" ]; then echo "$BASE"; return; fi
  if timeout 30 engine pull -q "$default_base" >/dev/null 2>&1; then
    echo "$default_base"
  else
    echo "no registry answers: using a Debian base made here" >&2
    local_base_image
    echo "$local_base"
  fi
}

build() {
  local tag="${1:-embedserve:latest}" base mounts=() args=()
  base="$(choose_base)"
  if command -v podman >/dev/null; then
    for path in /etc/pip.conf /etc/xdg/pip /etc/ssl/certs /opt/wheels /opt/pypi /opt/pypi-more; do
      [ -e "$path" ] && mounts+=(-v "$path:$path:ro")
    done
    [ -d "$HOME/.config/pip" ] && mounts+=(-v "$HOME/.config/pip:/root/.config/pip:ro")
    [ -d /opt/wheels ] && args+=(--build-arg FIND_LINKS=/opt/wheels)
    args+=(--format docker --network host)
    args+=(--ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)")
  fi
  echo "building $tag on $base" >&2
  engine build "${args[@]}" "${mounts[@]}" --build-arg "BASE=$base" \
    ${TORCH_INDEX:+--build-arg "TORCH_INDEX=$TORCH_INDEX"} -t "$tag" -f "$root/Containerfile" "$root"
  engine image inspect "$tag" --format '{{.Size}}' | awk -v tag="$tag" \
    '{printf "%s: %.0f MB\n", tag, $1 / 1e6}'
}

install_tools
case "${1:-build}" in
  build) shift || true; build "$@" ;;
  engine)  # exec: signals sent to this script reach the engine (and a foreground container)
    shift
    mapfile -t command < <(engine_command)
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
    exec "${command[@]}" "$@" ;;
  base) local_base_image ;;
  tools) ;;  # installed above
  *) echo "usage: scripts/image.sh build [TAG] | engine ARGS... | base | tools" >&2; exit 2 ;;
esac
