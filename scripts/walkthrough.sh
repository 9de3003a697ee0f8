#!/usr/bin/env bash
# The README's batch-migration walk-through, run for real: two local Apache Kafka clusters (the
# test harness's, one KRaft node each), a topic loaded by the harness's `load` example, then
# `kmirror mirror --until-caught-up`, `status` with new records waiting, a second batch, a third
# that has nothing to do, and `verify`.
# Prints each command and its output. Needs `bash scripts/setup.sh` and `cargo build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
KMIRROR="${KMIRROR_BIN:-$target_dir/debug/kmirror}"
cargo build -q -p kmirror-testcontainers --example load --bin kmirror-test-clusters
LOAD="$target_dir/debug/examples/load"
work=/tmp/kmirror-walkthrough
rm -rf "$work" && mkdir -p "$work"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# The clusters stop when this script's end of their stdin closes (at its exit).
coproc CLUSTERS { exec "$target_dir/debug/kmirror-test-clusters"; }
for _ in 1 2; do
  IFS= read -r -t 120 line <&"${CLUSTERS[0]}" || { echo "walkthrough: the clusters did not start" >&2; exit 1; }
  export "${line?}"
done
source_bootstrap=$KMIRROR_TEST_SHARED_SOURCE
target_bootstrap=$KMIRROR_TEST_SHARED_TARGET
"$LOAD" "$source_bootstrap" orders 4 12500 >/dev/null

# Ports differ per run; the text shows the ones the README uses.
show() {
  echo "\$ kmirror ${*:2}" | sed -e "s/$source_bootstrap/127.0.0.1:19092/g; s/$target_bootstrap/127.0.0.1:29092/g"
  "$@" 2>&1 | sed -E 's/^[0-9T:.-]+Z +//'
  echo
}
mirror=(mirror --source "$source_bootstrap" --target "$target_bootstrap" --name orders-migration
  --topics orders --state-dir "$work/state" --until-caught-up)
show "$KMIRROR" "${mirror[@]}"
"$LOAD" "$source_bootstrap" orders 4 500 >/dev/null
echo "(500 more records per partition arrive on the source)"
echo
show "$KMIRROR" status --target "$target_bootstrap" --source "$source_bootstrap" --name orders-migration
show "$KMIRROR" "${mirror[@]}"
show "$KMIRROR" "${mirror[@]}"
show "$KMIRROR" verify --source "$source_bootstrap" --target "$target_bootstrap" --name orders-migration \
  --state-dir "$work/verify"
