//! The `server.properties` and log4j2 configuration of one KRaft node (broker and controller in
//! one process), sized for a 2-core test machine.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::scram::Mechanism;

/// The listener clients use. Every node also has a plain `INTERNAL` listener when this one is
/// secured: brokers replicate over it, and the harness reads raw logs through it.
#[derive(Debug, Clone)]
pub enum ClientListener {
    Plaintext,
    /// SASL/SCRAM with these mechanisms, over TLS when `tls` is set (SASL_SSL).
    Scram {
        mechanisms: Vec<Mechanism>,
        tls: Option<ServerTls>,
    },
    /// TLS, with client certificates when [`ServerTls::client_ca`] is set.
    Tls(ServerTls),
}

/// The broker side of a TLS listener.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// One PEM file with the unencrypted PKCS#8 key and the certificate chain.
    pub keystore: PathBuf,
    /// Clients must present a certificate signed by this CA (PEM), if set.
    pub client_ca: Option<PathBuf>,
    /// The host name the broker advertises; the certificate must name it.
    pub host: String,
}

impl ClientListener {
    fn protocol(&self) -> &'static str {
        match self {
            ClientListener::Plaintext => "PLAINTEXT",
            ClientListener::Scram { tls: None, .. } => "SASL_PLAINTEXT",
            ClientListener::Scram { tls: Some(_), .. } => "SASL_SSL",
            ClientListener::Tls(_) => "SSL",
        }
    }

    fn tls(&self) -> Option<&ServerTls> {
        match self {
            ClientListener::Plaintext | ClientListener::Scram { tls: None, .. } => None,
            ClientListener::Scram { tls: Some(tls), .. } | ClientListener::Tls(tls) => Some(tls),
        }
    }

    pub(crate) fn is_plaintext(&self) -> bool {
        matches!(self, ClientListener::Plaintext)
    }

    pub(crate) fn host(&self) -> &str {
        self.tls().map(|t| t.host.as_str()).unwrap_or("127.0.0.1")
    }
}

/// The loopback ports of one node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodePorts {
    pub client: u16,
    pub controller: u16,
    /// The plain listener, when the client listener is secured or behind a slow link.
    pub internal: Option<u16>,
    /// The far end of a slow link to the client listener: the port the node advertises.
    pub far_end: Option<u16>,
}

impl NodePorts {
    pub fn advertised(&self) -> u16 {
        self.far_end.unwrap_or(self.client)
    }
}

/// What every node of a cluster shares.
pub(crate) struct ClusterLayout<'a> {
    pub nodes: &'a [NodePorts],
    pub listener: &'a ClientListener,
    /// Broker settings that override the defaults below, e.g. `log.segment.bytes`.
    pub overrides: &'a [(String, String)],
}

impl ClusterLayout<'_> {
    pub fn replicas(&self) -> usize {
        self.nodes.len().min(3)
    }

    /// The `server.properties` of node `index` (node ids start at 1).
    pub fn server_properties(&self, index: usize, data_dir: &Path) -> String {
        let node = self.nodes[index];
        let host = self.listener.host();
        let voters: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{}@127.0.0.1:{}", i + 1, n.controller))
            .collect();
        let mut listeners = vec![
            format!("CLIENT://127.0.0.1:{}", node.client),
            format!("CONTROLLER://127.0.0.1:{}", node.controller),
        ];
        let mut advertised = vec![format!("CLIENT://{host}:{}", node.advertised())];
        let mut protocols =
            vec![format!("CLIENT:{}", self.listener.protocol()), "CONTROLLER:PLAINTEXT".into()];
        let inter_broker = match node.internal {
            Some(port) => {
                listeners.push(format!("INTERNAL://127.0.0.1:{port}"));
                advertised.push(format!("INTERNAL://127.0.0.1:{port}"));
                protocols.push("INTERNAL:PLAINTEXT".into());
                "INTERNAL"
            }
            None => "CLIENT",
        };
        let replicas = self.replicas();
        // A lost broker must not stop writes on a 3-node cluster, nor lose acknowledged data.
        let min_isr = if replicas >= 3 { 2 } else { 1 };
        let mut settings: Vec<(String, String)> = [
            ("process.roles", "broker,controller".to_string()),
            ("node.id", (index + 1).to_string()),
            ("controller.quorum.voters", voters.join(",")),
            ("controller.listener.names", "CONTROLLER".into()),
            ("listeners", listeners.join(",")),
            ("advertised.listeners", advertised.join(",")),
            ("listener.security.protocol.map", protocols.join(",")),
            ("inter.broker.listener.name", inter_broker.into()),
            ("log.dirs", data_dir.display().to_string()),
            ("num.partitions", "1".into()),
            ("default.replication.factor", replicas.to_string()),
            ("min.insync.replicas", min_isr.to_string()),
            // Tests create every topic they use; a typo must not create one silently.
            ("auto.create.topics.enable", "false".into()),
            // The internal topics get one partition each: 50 would cost seconds on 2 cores.
            ("offsets.topic.num.partitions", "1".into()),
            ("offsets.topic.replication.factor", replicas.to_string()),
            ("transaction.state.log.num.partitions", "1".into()),
            ("transaction.state.log.replication.factor", replicas.to_string()),
            ("transaction.state.log.min.isr", min_isr.to_string()),
            ("share.coordinator.state.topic.num.partitions", "1".into()),
            ("share.coordinator.state.topic.replication.factor", replicas.to_string()),
            ("share.coordinator.state.topic.min.isr", min_isr.to_string()),
            ("group.initial.rebalance.delay.ms", "0".into()),
            // Tests write records with fixed timestamps years in the past (kmirror keeps them);
            // the retention check (every 5 min by default) would delete those on a cluster that
            // lives as long as a whole test run. Tests that need records gone delete them.
            ("log.retention.check.interval.ms", "86400000".into()),
            // A node frozen longer than this is fenced by its controller; on one node that
            // leaves no broker at all for a moment (see src/stall_watch.rs). 25 s instead of 9 s:
            // the tests that freeze a broker for up to 20 s test a frozen broker, the 28 s one a
            // fenced broker.
            ("broker.session.timeout.ms", "25000".into()),
            ("num.network.threads", "2".into()),
            ("num.io.threads", "2".into()),
            ("num.replica.fetchers", "1".into()),
            ("background.threads", "2".into()),
            // 128 MiB are allocated at start otherwise; compaction tests need only a little.
            ("log.cleaner.dedupe.buffer.size", (8 * 1024 * 1024).to_string()),
            ("log.cleaner.threads", "1".into()),
            // The cleaner looks for dirty logs every 15 s by default; compaction tests wait for it.
            ("log.cleaner.backoff.ms", "500".into()),
            // Aborted transactions of killed test clients are cleaned up within seconds.
            ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "2000".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        settings.extend(self.listener_settings());
        for (key, value) in self.overrides {
            settings.retain(|(k, _)| k != key);
            settings.push((key.clone(), value.clone()));
        }
        let mut text = String::new();
        for (key, value) in settings {
            let _ = writeln!(text, "{key}={value}");
        }
        text
    }

    fn listener_settings(&self) -> Vec<(String, String)> {
        let mut settings = Vec::new();
        let prefix = "listener.name.client";
        if let ClientListener::Scram { mechanisms, .. } = self.listener {
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            settings.push((format!("{prefix}.sasl.enabled.mechanisms"), names.join(",")));
            for name in names {
                settings.push((
                    format!("{prefix}.{}.sasl.jaas.config", name.to_lowercase()),
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;".into(),
                ));
            }
        }
        if let Some(tls) = self.listener.tls() {
            settings.push((format!("{prefix}.ssl.keystore.type"), "PEM".into()));
            settings.push((format!("{prefix}.ssl.keystore.location"), tls.keystore.display().to_string()));
            match &tls.client_ca {
                Some(ca) => {
                    settings.push((format!("{prefix}.ssl.client.auth"), "required".into()));
                    settings.push((format!("{prefix}.ssl.truststore.type"), "PEM".into()));
                    settings.push((format!("{prefix}.ssl.truststore.location"), ca.display().to_string()));
                }
                None => settings.push((format!("{prefix}.ssl.client.auth"), "none".into())),
            }
        }
        settings
    }
}

/// Sets the brokers' root log level (default WARN), e.g. `INFO` to see why a test failed.
pub const BROKER_LOG_ENV: &str = "KMIRROR_TEST_BROKER_LOG";

/// Log4j2 settings: warnings to `server.log`, plus the start-up line the harness waits for and
/// the authentication failures that security tests count.
pub(crate) fn log4j2_properties(log_file: &Path) -> String {
    let root = std::env::var(BROKER_LOG_ENV).unwrap_or_else(|_| "WARN".into());
    format!(
        "status = error\n\
         appender.file.type = File\n\
         appender.file.name = file\n\
         appender.file.fileName = {}\n\
         appender.file.layout.type = PatternLayout\n\
         appender.file.layout.pattern = [%d] %p %m (%c)%n\n\
         rootLogger.level = {root}\n\
         rootLogger.appenderRef.file.ref = file\n\
         logger.server.name = kafka.server.KafkaRaftServer\n\
         logger.server.level = INFO\n\
         logger.selector.name = org.apache.kafka.common.network.Selector\n\
         logger.selector.level = INFO\n",
        log_file.display(),
    )
}
