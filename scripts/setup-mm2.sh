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
if [ ! -f "$home/complete" ]; then
  command -v mvn >/dev/null 2>&1 || { echo "setup-mm2: error: Maven is needed to fetch MirrorMaker 2 from Maven Central (install maven)" >&2; exit 1; }
  echo "setup-mm2: installing MirrorMaker 2 ($kafka_version) from Maven Central into $lib" >&2
  rm -rf "$lib" && mkdir -p "$lib"
  cat > "$home/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kmirror.setup</groupId><artifactId>mirrormaker2</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-mirror</artifactId><version>$kafka_version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$log4j_version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$log4j_version</version></dependency>
  </dependencies>
</project>
POM
  if ! mvn -B -q -f "$home/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib" >"$home/mvn.log" 2>&1; then
    echo "setup-mm2: error: Maven could not fetch connect-mirror $kafka_version (see $home/mvn.log)" >&2
    exit 1
  fi
  twice=$(ls "$lib" | sed -E 's/-[0-9][^-]*(-[A-Za-z0-9.]+)?\.jar$//' | sort | uniq -d)
  if [ -n "$twice" ]; then
    echo "setup-mm2: error: two versions of $twice in $lib" >&2
    exit 1
  fi
  [ -f "$lib/connect-mirror-$kafka_version.jar" ] || { echo "setup-mm2: error: connect-mirror-$kafka_version.jar missing from $lib" >&2; exit 1; }
  touch "$home/complete"
fi
echo "$lib"
