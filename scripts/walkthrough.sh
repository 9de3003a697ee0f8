#!/usr/bin/env bash
# The README's batch-migration walk-through, run for real: two local Tansu brokers, a topic
# loaded by the harness's `load` example, then `kmirror mirror --until-caught-up`, `status` with
# new records waiting, a second batch, a third that has nothing to do, and `verify`.
# Prints each command and its output. Needs `bash scripts/setup.sh` and `cargo build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
TANSU="${KMIRROR_TANSU_BIN:-.cache/bin/tansu}"
KMIRROR="${KMIRROR_BIN:-target/debug/kmirror}"
cargo build -q -p kmirror-testcontainers --example load
LOAD=target/debug/examples/load
work=/tmp/kmirror-walkthrough
rm -rf "$work" && mkdir -p "$work"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

broker() { # port
  "$TANSU" broker --cluster-id "walk-$1" --listener-url "tcp://127.0.0.1:$1" \
    --advertised-listener-url "tcp://127.0.0.1:$1" --storage-engine memory://tansu/ >/dev/null 2>&1 &
  pids+=($!)
}
broker 19092
broker 29092
sleep 2
"$LOAD" 127.0.0.1:19092 orders 4 12500 >/dev/null

show() { echo "\$ kmirror ${*:2}"; "$@" 2>&1 | sed -E 's/^[0-9T:.-]+Z +//'; echo; }
mirror=(mirror --source 127.0.0.1:19092 --target 127.0.0.1:29092 --name orders-migration
  --topics orders --state-dir "$work/state" --until-caught-up)
show "$KMIRROR" "${mirror[@]}"
"$LOAD" 127.0.0.1:19092 orders 4 500 >/dev/null
echo "(500 more records per partition arrive on the source)"
echo
show "$KMIRROR" status --target 127.0.0.1:29092 --source 127.0.0.1:19092 --name orders-migration
show "$KMIRROR" "${mirror[@]}"
show "$KMIRROR" "${mirror[@]}"
show "$KMIRROR" verify --source 127.0.0.1:19092 --target 127.0.0.1:29092 --name orders-migration \
  --state-dir "$work/verify"
