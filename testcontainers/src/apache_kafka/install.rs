//! Where the Apache Kafka jars that `scripts/setup.sh` installs from Maven Central live.
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The Apache Kafka release the harness runs; `scripts/setup.sh` installs the same one.
pub const KAFKA_VERSION: &str = "4.1.1";

/// The older release the harness also runs, `scripts/setup.sh` installing it beside: the last
/// of Kafka 3 (KRaft), the version of many clusters a migration starts from.
pub const OLDER_KAFKA_VERSION: &str = "3.9.1";

/// Names a folder of Kafka jars to use instead of the project's cached one.
pub const KAFKA_LIB_ENV: &str = "KMIRROR_KAFKA_LIB";

/// The folder holding the broker's jars and their runtime dependencies: [`KAFKA_VERSION`]'s
/// (or the folder [`KAFKA_LIB_ENV`] names).
pub fn kafka_lib() -> Result<PathBuf> {
    kafka_lib_of(None)
}

/// As [`kafka_lib`], or the installed jars of `version` if one is named.
pub fn kafka_lib_of(version: Option<&str>) -> Result<PathBuf> {
    let cached = |version: &str| workspace_root().join(".cache/kafka").join(version).join("lib");
    let lib = match (version, std::env::var_os(KAFKA_LIB_ENV)) {
        (Some(version), _) => cached(version),
        (None, Some(path)) => PathBuf::from(path),
        (None, None) => cached(KAFKA_VERSION),
    };
    let has_broker = std::fs::read_dir(&lib)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("kafka_2.13-")))
        .unwrap_or(false);
    if has_broker {
        Ok(lib)
    } else {
        Err(Error::KafkaMissing(lib.display().to_string()))
    }
}

/// `java` from `JAVA_HOME` when it is set, else from the PATH.
pub fn java_binary() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin/java"))
        .filter(|java| java.is_file())
        .unwrap_or_else(|| PathBuf::from("java"))
}

pub(crate) fn workspace_root() -> PathBuf {
    // This crate lives one level below the workspace root.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The version of the installed broker jar (`kafka_2.13-VERSION.jar`), if any.
pub fn installed_version() -> Option<String> {
    version_in(&kafka_lib().ok()?)
}

/// The Kafka release whose jars `lib` holds.
pub fn version_in(lib: &std::path::Path) -> Option<String> {
    std::fs::read_dir(lib).ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let version = name.strip_prefix("kafka_2.13-")?.strip_suffix(".jar")?;
        (!version.contains("test") && !version.contains("sources")).then(|| version.to_string())
    })
}
