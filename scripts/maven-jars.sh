# Sourced by scripts/setup.sh and scripts/setup-mm2.sh: one way to fetch a Java program's jars
# from Maven Central into a lib folder.
#
# maven_jars HOME LIB WHAT GROUP:ARTIFACT:VERSION...
# Writes HOME/pom.xml with the artifacts as dependencies, copies their runtime closure into LIB
# (emptied first), and fails (naming WHAT and HOME/mvn.log) if Maven fails or if one artifact
# lands in two versions: Maven picks the nearest version of a dependency, not the highest, and
# two versions of one jar on a classpath would be a silent mix.
maven_jars() {
  local home="$1" lib="$2" what="$3"
  shift 3
  command -v mvn >/dev/null 2>&1 || { echo "setup: error: Maven is needed to fetch $what from Maven Central (install maven)" >&2; return 1; }
  rm -rf "$lib" && mkdir -p "$lib"
  {
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0">'
    echo '  <modelVersion>4.0.0</modelVersion>'
    echo '  <groupId>kmirror.setup</groupId><artifactId>jars</artifactId><version>1</version>'
    echo '  <packaging>pom</packaging>'
    echo '  <dependencies>'
    local coordinate group artifact version
    for coordinate in "$@"; do
      IFS=: read -r group artifact version <<<"$coordinate"
      echo "    <dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency>"
    done
    echo '  </dependencies>'
    echo '</project>'
  } >"$home/pom.xml"
  if ! mvn -B -q -f "$home/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib" >"$home/mvn.log" 2>&1; then
    echo "setup: error: Maven could not fetch $what (see $home/mvn.log)" >&2
    return 1
  fi
  local twice
  # MAVEN_JARS_DISTINCT: names that two different artifacts share, both wanted (Kafka 3's
  # com.yammer.metrics and ZooKeeper's io.dropwizard.metrics, each a metrics-core).
  twice=$(ls "$lib" | sed -E 's/-[0-9][^-]*(-[A-Za-z0-9.]+)?\.jar$//' | sort | uniq -d \
    | grep -vxF -e "${MAVEN_JARS_DISTINCT:-}" || true)
  if [ -n "$twice" ]; then
    echo "setup: error: two versions of $twice in $lib" >&2
    return 1
  fi
}
