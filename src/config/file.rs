//! The TOML config file (`--config`): the same settings as the flags.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where a partition with no committed position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The partition's log start.
    Earliest,
    /// The partition's last stable offset when the mirror first sees it.
    Latest,
}

/// What to do when the source deleted records (retention, DeleteRecords) before they were
/// copied: the mirror's position is below the partition's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingSource {
    /// Refuse, naming the partition and the lost range (exit code 4).
    #[default]
    Fail,
    /// Go on at the partition's start; log the skipped range and count it.
    Skip,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressMode {
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorFile {
    pub name: Option<String>,
    pub topics: Option<String>,
    pub exclude: Option<String>,
    pub rename: Option<String>,
    #[serde(default)]
    pub transforms: Vec<String>,
    pub source_alias: Option<String>,
    pub on_transform_error: Option<String>,
    pub target_alias: Option<String>,
    pub num_streams: Option<usize>,
    pub shards: Option<u32>,
    pub state_dir: Option<PathBuf>,
    pub transaction_max_records: Option<usize>,
    pub transaction_max_ms: Option<u64>,
    pub transaction_max_bytes: Option<u64>,
    pub until_caught_up: Option<bool>,
    pub coordinate: Option<bool>,
    pub session_timeout: Option<u64>,
    pub start_from: Option<StartFrom>,
    pub on_missing_source: Option<MissingSource>,
    pub replication_factor: Option<i32>,
    pub refresh_interval: Option<u64>,
    pub connect_timeout: Option<u64>,
    pub groups: Option<String>,
    pub checkpoint_interval: Option<u64>,
    pub sync_group_offsets: Option<bool>,
    pub metrics_addr: Option<String>,
    pub progress: Option<ProgressMode>,
    #[serde(default)]
    pub source: ClusterFile,
    #[serde(default)]
    pub target: ClusterFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub bootstrap: Option<String>,
    /// A Java .properties file, relative to the TOML file.
    pub config: Option<PathBuf>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

pub fn read_mirror_file(path: &Path) -> Result<MirrorFile> {
    let text =
        std::fs::read_to_string(path).map_err(|cause| Error::Io { path: path.to_path_buf(), cause })?;
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
