#!/usr/bin/env bash
# The README's batch-migration walk-through, run for real: two local Tansu brokers, a topic
# loaded with `tansu perf`, then `kmirror mirror --until-caught-up`, `status`, `verify`, and a
# re-run that has nothing to do. Prints each command and its output.
set -euo pipefail
cd "$(dirname "$0")/.."
TANSU="${KMIRROR_TANSU_BIN:-.cache/bin/tansu}"
KMIRROR="${KMIRROR_BIN:-target/debug/kmirror}"
work=$(mktemp -d)
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
"$TANSU" topic create --broker tcp://127.0.0.1:19092 --partitions 4 orders >/dev/null
for p in 0 1 2 3; do
  "$TANSU" perf orders --broker tcp://127.0.0.1:19092 produce --partition "$p" --record-size 200 \
    --batch-size 50 --per-second 5000 --duration 2s >/dev/null 2>&1
done

show() { echo "\$ ${*/#$KMIRROR/kmirror}"; "$@"; echo; }
common=(--source 127.0.0.1:19092 --target 127.0.0.1:29092 --name orders-migration)
show "$KMIRROR" mirror "${common[@]}" --topics 'orders' --state-dir "$work/state" --until-caught-up
show "$KMIRROR" status --target 127.0.0.1:29092 --source 127.0.0.1:19092 --name orders-migration
show "$KMIRROR" verify "${common[@]}" --state-dir "$work/verify"
show "$KMIRROR" mirror "${common[@]}" --topics 'orders' --state-dir "$work/state" --until-caught-up
