//! One cluster side's librdkafka settings: gathered from a properties file, the TOML file and
//! `--set side.KEY=VALUE`, with Java-only keys translated and unsafe ones refused.
use std::collections::BTreeMap;

use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;
use tracing::warn;

use crate::error::{Error, Result, Side};

/// Keys Java clients need and librdkafka does not know; harmless to drop.
const JAVA_ONLY_IGNORED: &[&str] = &[
    "key.deserializer",
    "value.deserializer",
    "key.serializer",
    "value.serializer",
    "exclude.internal.topics",
    "client.dns.lookup",
];

/// kmirror's `reconnect.backoff.ms` where the user sets none (librdkafka's is 100). librdkafka
/// connects to a broker it has just learned of (its bootstrap connection is dropped once the
/// first metadata answer names the brokers) no sooner than half of it after the bootstrap
/// connection was made: every new client's first request to a named broker waited 50 ms, and a
/// run makes a score of clients at its start. At 20: 11 ms (librdkafka's least). After a
/// failed connection the wait still doubles up to `reconnect.backoff.max.ms`.
const RECONNECT_BACKOFF_MS: u64 = 20;

/// The validated librdkafka properties of one side.
#[derive(Clone, Default)]
pub(crate) struct ClientSettings {
    side: Option<Side>,
    properties: BTreeMap<String, String>,
}

/// Shows the settings with every secret value replaced, so a Debug print never leaks one.
impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("side", &self.side)
            .field("properties", &self.redacted())
            .finish()
    }
}

impl ClientSettings {
    /// Applies `entries` in order (later wins), translating and checking each.
    pub(crate) fn build(side: Side, entries: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut settings = Self { side: Some(side), properties: BTreeMap::new() };
        for (key, value) in entries {
            let key = key.trim().to_string();
            let value = super::secrets::resolve(side, &key, value.trim())?;
            settings.apply(side, key, value)?;
        }
        settings.check_known_to_librdkafka(side)?;
        Ok(settings)
    }

    fn apply(&mut self, side: Side, key: String, value: String) -> Result<()> {
        let refuse = |message: String| Error::ClientConfig { side, message };
        if JAVA_ONLY_IGNORED.contains(&key.as_str()) {
            warn!(%side, key, "ignoring a Java-only client setting");
            return Ok(());
        }
        match (side, key.as_str()) {
            (_, "sasl.jaas.config") => {
                let (username, password) = parse_jaas(&value).map_err(refuse)?;
                self.properties.insert("sasl.username".into(), username);
                self.properties.insert("sasl.password".into(), password);
                return Ok(());
            }
            (_, "group.id") => {
                warn!(%side, "ignoring group.id: kmirror keeps its positions in its own shadow group on the target");
                return Ok(());
            }
            (_, "ssl.truststore.location" | "ssl.truststore.password" | "ssl.truststore.type") => {
                return Err(refuse(format!(
                    "{key} is a Java truststore setting; export the CA certificates to PEM and set ssl.ca.location"
                )));
            }
            (Side::Source, "enable.auto.commit") if value.eq_ignore_ascii_case("true") => {
                return Err(refuse(
                    "enable.auto.commit=true is refused: kmirror commits source positions inside target transactions, auto-commit would break exactly-once".into(),
                ));
            }
            (Side::Source, "isolation.level") if value != "read_committed" => {
                return Err(refuse(format!(
                    "isolation.level={value} is refused: kmirror reads read_committed so aborted source data is never copied"
                )));
            }
            (Side::Target, "transactional.id") => {
                return Err(refuse(
                    "transactional.id is set by kmirror (kmirror.NAME.SHARD) so a restarted instance fences the old one; remove it".into(),
                ));
            }
            (Side::Target, "enable.idempotence") if value.eq_ignore_ascii_case("false") => {
                return Err(refuse(
                    "enable.idempotence=false is refused: transactions need the idempotent producer".into(),
                ));
            }
            (Side::Target, "acks" | "request.required.acks") if !matches!(value.as_str(), "all" | "-1") => {
                return Err(refuse(format!("{key}={value} is refused: transactions need acks=all")));
            }
            _ => {}
        }
        self.properties.insert(key, value);
        Ok(())
    }

    /// librdkafka itself says which properties it does not know; ask it before any connection.
    fn check_known_to_librdkafka(&self, side: Side) -> Result<()> {
        let mut config = ClientConfig::new();
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config.create_native_config().map(|_| ()).map_err(|e| {
            // librdkafka's words and the key, on one line; not the value as given, which may be
            // a secret (a misspelt sasl.password): librdkafka names it only for a number or a
            // choice out of range.
            let message = match &e {
                KafkaError::ClientConfig(_, description, key, _) => {
                    let description = description.split_whitespace().collect::<Vec<_>>().join(" ");
                    format!("{key}: {description}")
                }
                other => other.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
            };
            let hint = if message.contains("No such configuration property") {
                " (not a librdkafka setting; see librdkafka's CONFIGURATION.md)"
            } else {
                ""
            };
            Error::ClientConfig { side, message: format!("{message}{hint}") }
        })
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Removes and returns a key kmirror handles itself.
    pub(crate) fn take(&mut self, key: &str) -> Option<String> {
        self.properties.remove(key)
    }

    /// A librdkafka configuration holding these properties.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        if !self.properties.contains_key("reconnect.backoff.ms") {
            let most = self.get("reconnect.backoff.max.ms").and_then(|v| v.parse::<u64>().ok());
            let backoff = most.map_or(RECONNECT_BACKOFF_MS, |most| most.min(RECONNECT_BACKOFF_MS));
            config.set("reconnect.backoff.ms", backoff.to_string());
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// The properties with secret values replaced by a placeholder: safe to print.
    pub(crate) fn redacted(&self) -> BTreeMap<String, String> {
        self.properties
            .iter()
            .map(|(k, v)| {
                let shown = if super::secrets::is_secret(k) {
                    super::secrets::REDACTED.to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect()
    }
}

/// Reads username and password from a PLAIN or SCRAM JAAS line.
fn parse_jaas(value: &str) -> std::result::Result<(String, String), String> {
    let module = value.split_whitespace().next().unwrap_or_default();
    if !(module.ends_with("PlainLoginModule") || module.ends_with("ScramLoginModule")) {
        return Err(format!(
            "sasl.jaas.config with {module} is not supported; set librdkafka's sasl.* properties instead"
        ));
    }
    let field = |name: &str| -> std::result::Result<String, String> {
        let start = value
            .find(&format!("{name}=\""))
            .ok_or_else(|| format!("sasl.jaas.config has no {name}=\"...\""))?
            + name.len()
            + 2;
        let len = value[start..].find('"').ok_or_else(|| format!("sasl.jaas.config: unterminated {name}"))?;
        Ok(value[start..start + len].to_string())
    };
    Ok((field("username")?, field("password")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(side: Side, entries: &[(&str, &str)]) -> Result<ClientSettings> {
        ClientSettings::build(side, entries.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn clients_reconnect_sooner_unless_the_user_chose() {
        let backoff = |entries: &[(&str, &str)]| {
            let config = build(Side::Target, entries).expect("valid").client_config();
            config.get("reconnect.backoff.ms").map(str::to_string)
        };
        assert_eq!(backoff(&[]).as_deref(), Some("20"));
        assert_eq!(backoff(&[("reconnect.backoff.ms", "250")]).as_deref(), Some("250"));
        assert_eq!(
            backoff(&[("reconnect.backoff.max.ms", "10")]).as_deref(),
            Some("10"),
            "never above the most"
        );
    }

    #[test]
    fn jaas_becomes_sasl_username_and_password() {
        let settings = build(
            Side::Source,
            &[(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3cret\";",
            )],
        )
        .expect("valid");
        assert_eq!(settings.get("sasl.username"), Some("alice"));
        assert_eq!(settings.get("sasl.password"), Some("s3cret"));
        assert_eq!(settings.get("sasl.jaas.config"), None);
    }

    #[test]
    fn unsafe_settings_are_refused_with_reasons() {
        let err = build(Side::Source, &[("isolation.level", "read_uncommitted")]).expect_err("refused");
        assert!(
            err.to_string().starts_with("source config: isolation.level=read_uncommitted is refused"),
            "{err}"
        );
        assert!(build(Side::Source, &[("enable.auto.commit", "true")]).is_err());
        assert!(build(Side::Source, &[("enable.auto.commit", "false")]).is_ok());
        let err = build(Side::Target, &[("transactional.id", "x")]).expect_err("refused");
        assert!(err.to_string().contains("kmirror.NAME.SHARD"), "{err}");
        assert!(build(Side::Target, &[("acks", "1")]).is_err());
        assert!(build(Side::Target, &[("acks", "all")]).is_ok());
    }

    #[test]
    fn unknown_properties_are_named() {
        let err = build(Side::Target, &[("no.such.setting", "1")]).expect_err("refused").to_string();
        assert!(err.starts_with("target config:") && err.contains("no.such.setting"), "{err}");
    }

    #[test]
    fn debug_output_and_redacted_views_never_show_a_secret() {
        let settings = build(
            Side::Source,
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "alice"),
                ("sasl.password", "s3cret-value"),
            ],
        )
        .expect("valid");
        let debug = format!("{settings:?}");
        assert!(
            !debug.contains("s3cret-value") && debug.contains("[redacted]") && debug.contains("alice"),
            "{debug}"
        );
        assert_eq!(settings.redacted()["sasl.password"], "[redacted]");
        assert_eq!(
            settings.get("sasl.password"),
            Some("s3cret-value"),
            "the client still gets the real value"
        );
    }

    #[test]
    fn each_sasl_mechanism_is_composed_for_its_side_only() {
        for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let entries = [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", "src-user"),
                ("sasl.password", "src-pw"),
            ];
            let source = build(Side::Source, &entries).expect("valid");
            let target = build(
                Side::Target,
                &[
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", mechanism),
                    ("sasl.username", "dst-user"),
                    ("sasl.password", "dst-pw"),
                ],
            )
            .expect("valid");
            let (s, t) = (source.client_config(), target.client_config());
            assert_eq!(
                (s.get("sasl.mechanism"), s.get("sasl.username"), s.get("sasl.password")),
                (Some(mechanism), Some("src-user"), Some("src-pw"))
            );
            assert_eq!(
                (t.get("sasl.username"), t.get("sasl.password"), t.get("security.protocol")),
                (Some("dst-user"), Some("dst-pw"), Some("SASL_PLAINTEXT"))
            );
            assert_eq!(s.get("security.protocol"), Some("SASL_SSL"));
        }
    }

    #[test]
    fn java_only_keys_are_dropped_and_sides_do_not_mix() {
        let source = build(
            Side::Source,
            &[
                ("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer"),
                ("sasl.username", "s"),
            ],
        )
        .expect("valid");
        let target = build(Side::Target, &[("sasl.username", "t")]).expect("valid");
        assert_eq!(source.get("key.deserializer"), None);
        assert_eq!(source.get("sasl.username"), Some("s"));
        assert_eq!(target.get("sasl.username"), Some("t"));
    }
}
