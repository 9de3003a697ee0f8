#!/usr/bin/env bash
# Opt-in, idempotent: MirrorMaker 2 (org.apache.kafka:connect-mirror, the same Apache Kafka
# version as the test broker) from Maven Central into .cache/, for the head-to-head benchmark
# (`cargo bench --bench versus_mm2`, which runs this itself). Prints the lib folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kafka_version="4.1.1"
log4j_version="2.24.3"
home="$root/.cache/mm2/$kafka_version"
lib="$home/lib"
# shellcheck source=scripts/maven-jars.sh
. "$root/scripts/maven-jars.sh"
if [ ! -f "$home/complete" ]; then
  echo "setup-mm2: installing MirrorMaker 2 ($kafka_version) from Maven Central into $lib" >&2
  # Its output goes to stderr: stdout is the lib folder, for the benchmark.
  maven_jars "$home" "$lib" "connect-mirror $kafka_version" \
    "org.apache.kafka:connect-mirror:$kafka_version" \
    "org.apache.logging.log4j:log4j-core:$log4j_version" \
    "org.apache.logging.log4j:log4j-slf4j-impl:$log4j_version" >&2 || exit 1
  [ -f "$lib/connect-mirror-$kafka_version.jar" ] || { echo "setup-mm2: error: connect-mirror-$kafka_version.jar missing from $lib" >&2; exit 1; }
  touch "$home/complete"
fi
echo "$lib"
