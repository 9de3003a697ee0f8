//! `kmirror mirror --print-config`: the effective configuration after flags, the TOML file,
//! properties files and `${env:...}`/`${file:...}` references are combined, in the TOML file's
//! own format, with every secret value redacted.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::groups::GroupSelector;
use crate::config::MirrorSettings;

#[derive(Serialize)]
struct Shown<'a> {
    name: &'a str,
    topics: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    exclude: &'a str,
    rename: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    transforms: &'a [String],
    on_transform_error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_alias: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_alias: Option<&'a str>,
    num_streams: usize,
    shards: u32,
    state_dir: String,
    transaction_max_records: usize,
    transaction_max_ms: u64,
    transaction_max_bytes: u64,
    until_caught_up: bool,
    serial_commits: bool,
    coordinate: bool,
    /// Left out when `target.session.timeout.ms` sets it (the two may not both be given).
    #[serde(skip_serializing_if = "Option::is_none")]
    session_timeout: Option<u64>,
    start_from: &'static str,
    on_missing_source: crate::config::MissingSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    replication_factor: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exclude_configs: Option<&'a str>,
    refresh_interval: u64,
    connect_timeout: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a str>,
    checkpoint_interval: u64,
    sync_group_offsets: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_acls: Option<crate::config::AclPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_addr: Option<&'a str>,
    progress: crate::config::ProgressMode,
    source: Side<'a>,
    target: Side<'a>,
}

#[derive(Serialize)]
struct Side<'a> {
    bootstrap: &'a str,
    properties: BTreeMap<String, String>,
}

/// A whole-name regex as it was given (without the anchors it was compiled with).
fn as_given(regex: &regex::Regex) -> &str {
    let compiled = regex.as_str();
    compiled.strip_prefix("^(?:").and_then(|r| r.strip_suffix(")$")).unwrap_or(compiled)
}

pub(crate) fn render(settings: &MirrorSettings) -> String {
    let (topics, exclude) = settings.selector.patterns();
    let shown = Shown {
        name: &settings.name,
        topics,
        exclude,
        rename: settings.rename.describe(),
        transforms: &settings.transforms_given.specs,
        on_transform_error: if settings.transforms.skips_errors() { "skip" } else { "stop" },
        source_alias: settings.transforms_given.source_alias.as_deref(),
        target_alias: settings.transforms_given.target_alias.as_deref(),
        num_streams: settings.num_streams,
        shards: settings.shards,
        state_dir: settings.state_dir.display().to_string(),
        transaction_max_records: settings.transaction_max_records,
        transaction_max_ms: settings.transaction_max.as_millis() as u64,
        transaction_max_bytes: settings.transaction_max_bytes,
        until_caught_up: settings.until_caught_up,
        serial_commits: !settings.overlapping_commits,
        coordinate: settings.coordinate,
        // Only --coordinate has a group to time out (and a file naming it otherwise is refused).
        session_timeout: (settings.coordinate && settings.target.get("session.timeout.ms").is_none())
            .then_some(settings.session_timeout.as_secs()),
        start_from: match settings.start_from {
            crate::config::StartFrom::Earliest => "earliest",
            crate::config::StartFrom::Latest => "latest",
        },
        on_missing_source: settings.on_missing_source,
        replication_factor: settings.replication_factor,
        exclude_configs: settings.exclude_configs.as_ref().map(as_given),
        refresh_interval: settings.refresh_interval.as_secs(),
        connect_timeout: settings.connect_timeout.as_secs(),
        groups: settings.groups.as_ref().map(GroupSelector::as_str),
        checkpoint_interval: settings.checkpoint_interval.as_secs(),
        sync_group_offsets: settings.sync_group_offsets,
        sync_acls: settings.sync_acls,
        metrics_addr: settings.metrics_addr.as_deref(),
        progress: settings.progress,
        source: Side { bootstrap: &settings.source_bootstrap, properties: settings.source.redacted() },
        target: Side { bootstrap: &settings.target_bootstrap, properties: settings.target.redacted() },
    };
    let body =
        toml::to_string(&shown).unwrap_or_else(|e| format!("# could not render the configuration: {e}\n"));
    format!("# effective configuration of mirror {} (secrets redacted)\n{body}", settings.name)
}

#[cfg(test)]
mod tests {
    use crate::config::{ClusterFile, MirrorFile, MirrorSettings};

    #[test]
    fn printed_config_redacts_secrets_and_keeps_the_rest() {
        std::env::set_var("KMIRROR_TEST_PRINT_PW", "print-secret");
        let flags = MirrorFile {
            name: Some("printed".into()),
            topics: Some("t".into()),
            source: ClusterFile { bootstrap: Some("src:9092".into()), ..ClusterFile::default() },
            target: ClusterFile { bootstrap: Some("dst:9092".into()), ..ClusterFile::default() },
            ..MirrorFile::default()
        };
        let sets = [
            "source.sasl.username=reader".to_string(),
            "target.sasl.password=${env:KMIRROR_TEST_PRINT_PW}".to_string(),
        ];
        let settings =
            MirrorSettings::resolve(&flags, &sets, crate::config::SettingsFile::None).expect("valid");
        let printed = super::render(&settings);
        assert!(!printed.contains("print-secret") && printed.contains("[redacted]"), "{printed}");
        assert!(printed.contains("\"sasl.username\" = \"reader\""), "{printed}");
    }

    #[test]
    fn a_pattern_prints_as_given_even_with_anchors_of_its_own() {
        for given in ["retention\\..*", "^(retention\\.ms)$", "(?:a)|(?:b)"] {
            let compiled = crate::config::whole_name_regex("--exclude-configs", given).expect("regex");
            assert_eq!(super::as_given(&compiled), given);
        }
    }
}
