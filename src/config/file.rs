//! The TOML config file (`--config`): the same settings as the flags.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where a partition with no committed position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StartFrom {
    /// The partition's log start.
    Earliest,
    /// The partition's last stable offset when the mirror first sees it.
    Latest,
}

/// What to do when the source deleted records (retention, DeleteRecords) before they were
/// copied, the mirror's position being below the partition's start, or deleted a topic a batch
/// was copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MissingSource {
    /// Refuse, naming the partition and the lost range (exit code 4).
    #[default]
    Fail,
    /// Go on at the partition's start; log the skipped range and count it (a batch ends a
    /// deleted topic's partitions where they were copied, and logs them).
    Skip,
}

/// Which of the source's ACLs `--sync-acls` copies to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum AclPolicy {
    /// DENY rules, and ALLOW rules for reading only: a DR copy is written by the mirror alone.
    ReadOnly,
    /// Every rule that names a mirrored topic or checkpointed group, as it is.
    All,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProgressMode {
    /// One overall bar (or line).
    #[default]
    Total,
    /// The overall bar and one per topic.
    Partitions,
    /// Nothing but the summary.
    Off,
}

/// The mirror's settings as a layer: the TOML file, and the flags in the same shape (the flags'
/// layer wins). Every field is optional; [`super::MirrorSettings::resolve`] fills defaults.
/// Serialized only to tell which settings a layer gives (see `origin`).
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MirrorFile {
    pub(crate) name: Option<String>,
    pub(crate) topics: Option<String>,
    pub(crate) exclude: Option<String>,
    pub(crate) rename: Option<String>,
    #[serde(default)]
    pub(crate) transforms: Vec<String>,
    pub(crate) source_alias: Option<String>,
    pub(crate) on_transform_error: Option<String>,
    pub(crate) target_alias: Option<String>,
    pub(crate) num_streams: Option<usize>,
    pub(crate) shards: Option<u32>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) transaction_max_records: Option<usize>,
    pub(crate) transaction_max_ms: Option<u64>,
    pub(crate) transaction_max_bytes: Option<u64>,
    pub(crate) until_caught_up: Option<bool>,
    pub(crate) serial_commits: Option<bool>,
    pub(crate) coordinate: Option<bool>,
    /// A flag only: a settings file that resumed every start would undo what it guards.
    #[serde(skip)]
    pub(crate) after_failover: bool,
    pub(crate) session_timeout: Option<u64>,
    pub(crate) start_from: Option<StartFrom>,
    pub(crate) on_missing_source: Option<MissingSource>,
    pub(crate) replication_factor: Option<i32>,
    pub(crate) exclude_configs: Option<String>,
    pub(crate) refresh_interval: Option<u64>,
    pub(crate) connect_timeout: Option<u64>,
    pub(crate) groups: Option<String>,
    pub(crate) checkpoint_interval: Option<u64>,
    pub(crate) sync_group_offsets: Option<bool>,
    pub(crate) sync_acls: Option<AclPolicy>,
    pub(crate) metrics_addr: Option<String>,
    pub(crate) progress: Option<ProgressMode>,
    #[serde(default)]
    pub(crate) source: ClusterFile,
    #[serde(default)]
    pub(crate) target: ClusterFile,
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterFile {
    pub(crate) bootstrap: Option<String>,
    /// A Java .properties file, relative to the TOML file.
    pub(crate) config: Option<PathBuf>,
    /// Client properties; numbers and booleans as TOML writes them (`linger.ms = 20`) too.
    #[serde(default, deserialize_with = "scalars_as_text")]
    pub(crate) properties: BTreeMap<String, String>,
}

/// A property's value as TOML may write it.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string, number or boolean")]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

/// Properties whose values are any TOML scalar, as librdkafka's text.
fn scalars_as_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    let given: BTreeMap<String, Scalar> = BTreeMap::deserialize(d)?;
    Ok(given
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Scalar::Text(text) => text,
                Scalar::Integer(n) => n.to_string(),
                Scalar::Float(x) => x.to_string(),
                Scalar::Boolean(b) => b.to_string(),
            };
            (key, text)
        })
        .collect())
}

pub(crate) fn read_mirror_file(path: &Path) -> Result<MirrorFile> {
    let text = std::fs::read_to_string(path).map_err(|cause| unreadable(path, &cause))?;
    let mut file: MirrorFile = toml::from_str(&text).map_err(|e| Error::ConfigFile {
        file: path.to_path_buf(),
        // The parser quotes the offending line, which may hold a password: keep the position
        // and the reason, drop the quote.
        message: e
            .to_string()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains('|'))
            .collect::<Vec<_>>()
            .join(": "),
    })?;
    let holds_secrets = [&file.source, &file.target]
        .iter()
        .any(|c| c.properties.keys().any(|k| super::secrets::is_secret(k)));
    super::secrets::warn_if_readable_by_others(path, holds_secrets);
    let base = path.parent().unwrap_or(Path::new("."));
    for cluster in [&mut file.source, &mut file.target] {
        if let Some(config) = &cluster.config {
            cluster.config = Some(base.join(config));
        }
    }
    Ok(file)
}

/// A config file that cannot be read: a usage error (exit code 2), named with why.
pub(crate) fn unreadable(path: &Path, cause: &std::io::Error) -> Error {
    Error::ConfigFile {
        file: path.to_path_buf(),
        message: format!("cannot be read ({cause}): check the path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_take_numbers_and_booleans_as_toml_writes_them() {
        let file: ClusterFile = toml::from_str(
            "[properties]\n\"linger.ms\" = 20\n\"enable.idempotence\" = true\n\"sasl.password\" = \"s3cret\"\n\"x\" = 0.5\n",
        )
        .expect("parse");
        let text = |k: &str| file.properties.get(k).map(String::as_str);
        assert_eq!(
            (text("linger.ms"), text("enable.idempotence"), text("sasl.password"), text("x")),
            (Some("20"), Some("true"), Some("s3cret"), Some("0.5"))
        );
        let err = toml::from_str::<ClusterFile>("[properties]\n\"a\" = [1]\n").map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("a string, number or boolean"), "{err}");
    }
}
