//! The one way kmirror creates a Kafka client: each client gets only the settings that apply to
//! its kind. A side's settings serve all of that side's clients (one `--set target.linger.ms`
//! for the producers, the same side's `security.protocol` for every client), but handing a
//! consumer a producer setting makes librdkafka warn that it "will be ignored by this consumer
//! instance", once per client. Which setting applies to which kind comes from the linked
//! librdkafka itself (`rd_kafka_conf_properties_show`), so it is right for its version.
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::fd::FromRawFd;
use std::sync::OnceLock;

use rdkafka::admin::AdminClient;
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfig, FromClientConfigAndContext};
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::producer::{BaseProducer, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;

/// What kind of client a setting is for, in librdkafka's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Consumer,
    Producer,
    /// An admin client: a producer handle that produces nothing, so it takes only settings
    /// common to both kinds.
    Admin,
}

/// A client type and the role its settings are filtered for.
pub(crate) trait HasRole {
    const ROLE: Role;
}

impl<C: ConsumerContext> HasRole for BaseConsumer<C> {
    const ROLE: Role = Role::Consumer;
}

impl<C: ProducerContext> HasRole for BaseProducer<C> {
    const ROLE: Role = Role::Producer;
}

impl<C: ProducerContext + 'static> HasRole for ThreadedProducer<C> {
    const ROLE: Role = Role::Producer;
}

impl<C: ClientContext> HasRole for AdminClient<C> {
    const ROLE: Role = Role::Admin;
}

/// `create` and `create_with_context` with the settings filtered for the client's role.
pub(crate) trait CreateForRole {
    fn create_for_role<T: FromClientConfig + HasRole>(&self) -> KafkaResult<T>;
    fn create_for_role_with_context<C: ClientContext, T: FromClientConfigAndContext<C> + HasRole>(
        &self,
        context: C,
    ) -> KafkaResult<T>;
}

impl CreateForRole for ClientConfig {
    fn create_for_role<T: FromClientConfig + HasRole>(&self) -> KafkaResult<T> {
        for_role(self, T::ROLE).create()
    }

    fn create_for_role_with_context<C: ClientContext, T: FromClientConfigAndContext<C> + HasRole>(
        &self,
        context: C,
    ) -> KafkaResult<T> {
        for_role(self, T::ROLE).create_with_context(context)
    }
}

/// `config` without the settings that librdkafka says belong to the other kind of client.
/// Unknown names pass: librdkafka refuses them by name when the client is created.
pub(crate) fn for_role(config: &ClientConfig, role: Role) -> ClientConfig {
    let kinds = property_kinds();
    // config_map() hides secret values, so the copy is made by removing, not by setting.
    let mut out = config.clone();
    for key in config.config_map().keys() {
        if !applies(kinds.get(*key).copied(), role) {
            out.remove(key);
        }
    }
    // librdkafka's producers ask brokers to make a topic they write to that does not exist, and
    // brokers do by default (`auto.create.topics.enable`), with the broker's partition count
    // and configs: a target topic deleted under the mirror would come back wrong under its
    // own producers. kmirror makes every topic it writes to itself.
    if role == Role::Producer && out.get(AUTO_CREATE).is_none() {
        out.set(AUTO_CREATE, "false");
    }
    out
}

const AUTO_CREATE: &str = "allow.auto.create.topics";

/// Which client kinds a property is for: librdkafka's C/P column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Both,
    ConsumerOnly,
    ProducerOnly,
}

fn applies(kind: Option<Kind>, role: Role) -> bool {
    matches!(
        (kind, role),
        (None | Some(Kind::Both), _)
            | (Some(Kind::ConsumerOnly), Role::Consumer)
            | (Some(Kind::ProducerOnly), Role::Producer)
    )
}

fn property_kinds() -> &'static HashMap<String, Kind> {
    static KINDS: OnceLock<HashMap<String, Kind>> = OnceLock::new();
    KINDS.get_or_init(|| parse_table(&librdkafka_table().unwrap_or_default()))
}

/// Rows of librdkafka's configuration table: `name | C/P | range | default | ...`.
fn parse_table(table: &str) -> HashMap<String, Kind> {
    table
        .lines()
        .filter_map(|line| {
            let mut columns = line.split('|').map(str::trim);
            let name = columns.next()?;
            let kind = match columns.next()? {
                "*" => Kind::Both,
                "C" => Kind::ConsumerOnly,
                "P" => Kind::ProducerOnly,
                _ => return None,
            };
            Some((name.to_string(), kind))
        })
        .collect()
}

/// The table as the linked librdkafka prints it.
#[allow(unsafe_code)]
fn librdkafka_table() -> Option<String> {
    // SAFETY: tmpfile returns an owned FILE or null; the table is written and flushed to it
    // before its descriptor is duplicated into a File, and the FILE is closed once.
    unsafe {
        let fp = nix::libc::tmpfile();
        if fp.is_null() {
            return None;
        }
        rdkafka::bindings::rd_kafka_conf_properties_show(fp);
        nix::libc::fflush(fp);
        let fd = nix::libc::dup(nix::libc::fileno(fp));
        nix::libc::fclose(fp);
        if fd < 0 {
            return None;
        }
        let mut file = std::fs::File::from_raw_fd(fd);
        let mut table = String::new();
        file.rewind().ok()?;
        file.read_to_string(&mut table).ok()?;
        Some(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linked_librdkafka_says_which_settings_are_whose() {
        let kinds = property_kinds();
        assert!(kinds.len() > 100, "the whole table is read: {} rows", kinds.len());
        assert_eq!(kinds.get("bootstrap.servers"), Some(&Kind::Both));
        assert_eq!(kinds.get("linger.ms"), Some(&Kind::ProducerOnly));
        assert_eq!(kinds.get("transactional.id"), Some(&Kind::ProducerOnly));
        assert_eq!(kinds.get("fetch.min.bytes"), Some(&Kind::ConsumerOnly));
        assert_eq!(kinds.get("isolation.level"), Some(&Kind::ConsumerOnly));
        // Topic-level settings are in the table too.
        assert_eq!(kinds.get("acks"), Some(&Kind::ProducerOnly));
        assert_eq!(kinds.get("auto.offset.reset"), Some(&Kind::ConsumerOnly));
    }

    #[test]
    fn each_role_keeps_its_own_and_the_common_settings() {
        let mut side = ClientConfig::new();
        side.set("bootstrap.servers", "b:9092")
            .set("security.protocol", "plaintext")
            .set("linger.ms", "5")
            .set("fetch.min.bytes", "1")
            .set("not.a.setting", "x")
            .set("sasl.password", "kept as it is");
        let keys = |role| {
            let config = for_role(&side, role);
            config.config_map().keys().map(|k| k.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(
            keys(Role::Consumer),
            ["bootstrap.servers", "fetch.min.bytes", "not.a.setting", "sasl.password", "security.protocol"]
        );
        assert_eq!(
            keys(Role::Producer),
            [
                "allow.auto.create.topics",
                "bootstrap.servers",
                "linger.ms",
                "not.a.setting",
                "sasl.password",
                "security.protocol"
            ]
        );
        assert_eq!(
            keys(Role::Admin),
            ["bootstrap.servers", "not.a.setting", "sasl.password", "security.protocol"]
        );
        assert_eq!(for_role(&side, Role::Consumer).get("sasl.password"), Some("kept as it is"));
        assert_eq!(for_role(&side, Role::Producer).get("allow.auto.create.topics"), Some("false"));
        side.set("allow.auto.create.topics", "true");
        assert_eq!(
            for_role(&side, Role::Producer).get("allow.auto.create.topics"),
            Some("true"),
            "a setting of the user's stands"
        );
    }
}
