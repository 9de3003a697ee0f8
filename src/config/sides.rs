//! One cluster side's client settings, gathered in order from the TOML file's properties file,
//! the flag's properties file, the TOML properties and `--set SIDE.KEY=VALUE` (later wins), and
//! its bootstrap servers.
use std::path::PathBuf;

use super::{read_properties, usage, ClientSettings};
use crate::error::{Result, Side};

pub(super) fn side_settings(
    side: Side,
    file_config: Option<&PathBuf>,
    flag_config: Option<&PathBuf>,
    toml_properties: &std::collections::BTreeMap<String, String>,
    sets: &[String],
) -> Result<ClientSettings> {
    let mut entries = Vec::new();
    for path in [file_config, flag_config].into_iter().flatten() {
        entries.extend(read_properties(path)?);
    }
    entries.extend(toml_properties.iter().map(|(k, v)| (k.clone(), v.clone())));
    let prefix = format!("{side}.");
    for set in sets {
        // Named by its first word only: a setting given without its '=' may be a password.
        let (key, value) = set.split_once('=').ok_or_else(|| {
            let named = set.split_whitespace().next().unwrap_or_default();
            usage(&format!(
                "--set {named} ...: it must look like source.KEY=VALUE or target.KEY=VALUE (no '=' given)"
            ))
        })?;
        if !key.starts_with("source.") && !key.starts_with("target.") {
            return Err(usage(&format!("--set '{key}=...' must start with source. or target.")));
        }
        if let Some(key) = key.strip_prefix(&prefix) {
            entries.push((key.to_string(), value.to_string()));
        }
    }
    ClientSettings::build(side, entries)
}

/// The client config of `side` for a one-shot command (status, translate-offsets, verify):
/// from `--source`/`--target`, its properties file and `--set`, with the bootstrap it names.
pub(crate) fn client_config(
    side: Side,
    flag: Option<&String>,
    properties: Option<&PathBuf>,
    sets: &[String],
) -> Result<(rdkafka::ClientConfig, String)> {
    let mut settings = side_settings(side, None, properties, &Default::default(), sets)?;
    let servers = bootstrap(side, flag, None, &mut settings)?;
    let mut config = settings.client_config();
    config.set("bootstrap.servers", &servers);
    Ok((config, servers))
}

pub(super) fn bootstrap(
    side: Side,
    flag: Option<&String>,
    file: Option<&String>,
    settings: &mut ClientSettings,
) -> Result<String> {
    let from_properties =
        settings.take("bootstrap.servers").or_else(|| settings.take("metadata.broker.list"));
    flag.cloned().or_else(|| file.cloned()).or(from_properties).filter(|b| !b.trim().is_empty()).ok_or_else(
        || usage(&format!("--{side} BOOTSTRAP is required (or bootstrap.servers in the {side} config)")),
    )
}
