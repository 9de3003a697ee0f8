//! A running Kafka-API cluster for a test, a benchmark or the demo.
use std::io::Write as _;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{debug, info};

use crate::apache_kafka::{self, KafkaSpec, Launched};
use crate::broker_binary::tansu_binary;
use crate::error::{Error, Result};
pub use crate::ports::free_loopback_port;
use crate::spawner::spawn_tied;

/// Which side of a mirror a cluster plays; it picks the external-cluster environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Target,
}

impl Role {
    pub fn env_var(self) -> &'static str {
        match self {
            Role::Source => "KMIRROR_TEST_SOURCE_BOOTSTRAP",
            Role::Target => "KMIRROR_TEST_TARGET_BOOTSTRAP",
        }
    }
}

/// Picks the local broker: `apache-kafka` (the default, the broker of record) or `tansu` (a
/// fast Kafka-API broker for development whose transactions are not to be trusted).
pub const BROKER_ENV: &str = "KMIRROR_TEST_BROKER";

/// What runs the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Named by `KMIRROR_TEST_{SOURCE,TARGET}_BOOTSTRAP`; shared between tests, never stopped by us.
    External,
    /// Apache Kafka (KRaft) JVM processes, from the jars `scripts/setup.sh` installs.
    ApacheKafka,
    /// A local Tansu broker process with in-memory storage.
    Tansu,
}

impl Backend {
    /// The local broker [`BROKER_ENV`] asks for.
    pub fn local() -> Result<Backend> {
        match std::env::var(BROKER_ENV).as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("apache-kafka") | Ok("kafka") => Ok(Backend::ApacheKafka),
            Ok("tansu") => Ok(Backend::Tansu),
            Ok(other) => Err(Error::UnknownBroker(other.to_string())),
        }
    }
}

/// A cluster that lives as long as this handle: dropping it kills and reaps the broker, unless
/// the handle is a view of a shared cluster ([`KafkaCluster::shared`]).
#[derive(Debug)]
pub struct KafkaCluster {
    bootstrap: String,
    backend: Backend,
    /// A view of a cluster other tests use too: it cannot be paused or stopped.
    pub(crate) shared: bool,
    /// Replicas of each topic the harness creates.
    replicas: i32,
    /// The Tansu broker process.
    child: Option<Child>,
    /// The Apache Kafka nodes, with their folder.
    kafka: Option<Launched>,
    /// Client settings every client of this cluster needs (e.g. TLS).
    pub(crate) client_properties: Vec<(String, String)>,
    /// A plain-TCP address of the one broker, for raw protocol reads, when clients go through a
    /// TLS or SASL front (Tansu).
    pub(crate) plain_address: Option<String>,
    /// Plain listeners of every node when the client listener is secured (Apache Kafka).
    pub(crate) internal_bootstrap: Option<String>,
    /// The TLS proxy in front of the broker, if any; stopped with it.
    pub(crate) proxy: Option<Child>,
    /// The SASL front of the broker, if any; it stops accepting when dropped.
    pub(crate) sasl_proxy: Option<crate::sasl_proxy::SaslProxy>,
}

const READY_TIMEOUT: Duration = Duration::from_secs(20);

impl KafkaCluster {
    /// A cluster of this test's own for `role`: the external cluster named in the environment
    /// if set, else a local broker ([`Backend::local`]) on free loopback ports. Tests that
    /// pause, stop or reconfigure a broker need one; others should use [`KafkaCluster::shared`].
    pub fn start(role: Role) -> Result<Self> {
        if let Some(cluster) = Self::external(role) {
            return Ok(cluster);
        }
        match Backend::local()? {
            Backend::Tansu => Self::start_tansu(),
            _ => Self::start_kafka(&KafkaSpec::plaintext(1)),
        }
    }

    /// A source and a target cluster of this test's own; Apache Kafka JVMs boot side by side.
    pub fn start_pair() -> Result<(Self, Self)> {
        let external = (Self::external(Role::Source), Self::external(Role::Target));
        if let (Some(source), Some(target)) = external {
            return Ok((source, target));
        }
        if Backend::local()? == Backend::Tansu {
            return Ok((Self::start(Role::Source)?, Self::start(Role::Target)?));
        }
        let spec = KafkaSpec::plaintext(1);
        let (source, target) = (apache_kafka::launch(&spec)?, apache_kafka::launch(&spec)?);
        Ok((
            Self::from_kafka(apache_kafka::ready_or_relaunch(source, &spec)?, Vec::new()),
            Self::from_kafka(apache_kafka::ready_or_relaunch(target, &spec)?, Vec::new()),
        ))
    }

    fn external(role: Role) -> Option<Self> {
        let bootstrap = std::env::var(role.env_var()).ok().filter(|b| !b.trim().is_empty())?;
        info!(%bootstrap, ?role, "using external cluster");
        Some(Self::handle(bootstrap, Backend::External, None))
    }

    /// An Apache Kafka cluster as `spec` says, whatever [`BROKER_ENV`] asks for.
    pub fn start_kafka(spec: &KafkaSpec) -> Result<Self> {
        Self::start_kafka_for(spec, Vec::new())
    }

    /// As [`KafkaCluster::start_kafka`], for clients that need `client_properties` (TLS, SASL).
    pub(crate) fn start_kafka_for(
        spec: &KafkaSpec,
        client_properties: Vec<(String, String)>,
    ) -> Result<Self> {
        let launched = apache_kafka::ready_or_relaunch(apache_kafka::launch(spec)?, spec)?;
        Ok(Self::from_kafka(launched, client_properties))
    }

    pub(crate) fn from_kafka(launched: Launched, client_properties: Vec<(String, String)>) -> Self {
        let mut cluster = Self::handle(launched.bootstrap(), Backend::ApacheKafka, None);
        cluster.replicas = launched.replicas();
        cluster.internal_bootstrap = launched.internal_bootstrap();
        cluster.client_properties = client_properties;
        cluster.kafka = Some(launched);
        cluster
    }

    pub fn start_tansu() -> Result<Self> {
        let port = free_loopback_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let child = spawn_tansu(port, &url, &url)?;
        let cluster = Self::handle(format!("127.0.0.1:{port}"), Backend::Tansu, Some(child));
        cluster.wait_until_listening()?;
        debug!(bootstrap = %cluster.bootstrap, "tansu broker ready");
        Ok(cluster)
    }

    pub(crate) fn handle(bootstrap: String, backend: Backend, child: Option<Child>) -> Self {
        Self {
            bootstrap,
            backend,
            shared: false,
            replicas: 1,
            child,
            kafka: None,
            client_properties: Vec::new(),
            plain_address: None,
            internal_bootstrap: None,
            proxy: None,
            sasl_proxy: None,
        }
    }

    /// A handle on the same brokers that owns nothing: dropping it stops nothing.
    pub(crate) fn view(&self) -> Self {
        let mut view = Self::handle(self.bootstrap.clone(), self.backend.clone(), None);
        view.shared = true;
        view.replicas = self.replicas;
        view.client_properties = self.client_properties.clone();
        view.plain_address = self.plain_address.clone();
        view.internal_bootstrap = self.internal_bootstrap.clone();
        view
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Is this a view of a cluster that other tests use too?
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// What runs this cluster, for test output: e.g. "Apache Kafka 4.1.1 (KRaft, 1 node)".
    pub fn describe(&self) -> String {
        match self.backend {
            Backend::ApacheKafka => {
                let version = match self.kafka.as_ref().and_then(|k| k.nodes.first()) {
                    Some(node) => apache_kafka::version_in(&node.lib),
                    None => apache_kafka::installed_version(),
                }
                .unwrap_or_else(|| "?".into());
                match &self.kafka {
                    Some(k) if k.nodes.len() == 1 => format!("Apache Kafka {version} (KRaft, 1 node)"),
                    Some(k) => format!("Apache Kafka {version} (KRaft, {} nodes)", k.nodes.len()),
                    None => format!("Apache Kafka {version}"),
                }
            }
            Backend::Tansu => "Tansu (development broker; its transactions prove nothing)".into(),
            Backend::External => "an external cluster".into(),
        }
    }

    /// Says on the test output, past libtest's capture, which broker runs the tests.
    pub(crate) fn announce(&self, what: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "kmirror-testcontainers: {what}: {} at {}",
            self.describe(),
            self.bootstrap
        );
    }

    /// The broker's process id (the first node's), for tests that check it is gone after drop.
    pub fn pid(&self) -> Option<u32> {
        match &self.kafka {
            Some(k) => k.nodes.first().and_then(|n| n.pid()),
            None => self.child.as_ref().map(Child::id),
        }
    }

    /// The process ids of every running node.
    pub fn pids(&self) -> Vec<u32> {
        match &self.kafka {
            Some(k) => k.nodes.iter().filter_map(|n| n.pid()).collect(),
            None => self.child.as_ref().map(Child::id).into_iter().collect(),
        }
    }

    /// Replicas of each topic the harness creates: 1, or 3 on a 3-node cluster.
    pub fn replicas(&self) -> i32 {
        self.replicas
    }

    /// Freezes the brokers (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP, "pause")
    }

    /// Thaws paused brokers (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal(Signal::SIGCONT, "resume")
    }

    /// Cuts (true) or heals (false) the link in front of a cluster started with
    /// [`KafkaSpec::behind_slow_link`]: a network partition between its clients and it, the
    /// brokers running on. The harness's own reads of raw logs go around it.
    pub fn set_link_cut(&self, cut: bool) -> Result<()> {
        match self.kafka.as_ref().map(|k| &k.links) {
            Some(links) if !links.is_empty() => {
                links.iter().for_each(|link| link.set_cut(cut));
                Ok(())
            }
            _ => {
                Err(self.unsupported("cutting the link (start the cluster with KafkaSpec::behind_slow_link)"))
            }
        }
    }

    /// Kills the brokers and waits for them; a Tansu broker's data is gone.
    pub fn stop(&mut self) -> Result<()> {
        if self.shared {
            return Err(self.unsupported("stop"));
        }
        self.sasl_proxy = None;
        if let Some(mut proxy) = self.proxy.take() {
            let _ = proxy.kill();
            let _ = proxy.wait();
        }
        if let Some(mut child) = self.child.take() {
            // A stopped process still dies of SIGKILL, so a paused broker is stopped too.
            let _ = child.kill();
            child.wait()?;
            return Ok(());
        }
        if let Some(kafka) = self.kafka.as_mut() {
            for node in &mut kafka.nodes {
                node.kill()?;
            }
            return Ok(());
        }
        match self.backend {
            Backend::External => Err(self.unsupported("stop")),
            Backend::Tansu | Backend::ApacheKafka => Ok(()),
        }
    }

    /// SIGKILLs Apache Kafka node `id` (1-based), as a crash would; its data stays on disk.
    pub fn kill_node(&mut self, id: usize) -> Result<()> {
        self.node(id, "kill a node")?.kill()
    }

    /// Starts a killed node again and waits until it is back.
    pub fn restart_node(&mut self, id: usize) -> Result<()> {
        let node = self.node(id, "restart a node")?;
        node.start()?;
        node.wait_started(Instant::now() + Duration::from_secs(120))
    }

    /// The node ids of an Apache Kafka cluster.
    pub fn node_ids(&self) -> Vec<usize> {
        self.kafka.as_ref().map(|k| k.nodes.iter().map(|n| n.id).collect()).unwrap_or_default()
    }

    fn node(&mut self, id: usize, operation: &'static str) -> Result<&mut apache_kafka::Node> {
        if self.shared {
            return Err(self.unsupported(operation));
        }
        let bootstrap = self.bootstrap.clone();
        self.kafka
            .as_mut()
            .and_then(|k| k.nodes.iter_mut().find(|n| n.id == id))
            .ok_or(Error::Unsupported { operation, bootstrap })
    }

    /// Lines of every node's server log that contain `needle` (e.g. "Failed authentication").
    pub fn broker_log_count(&self, needle: &str) -> usize {
        let Some(kafka) = &self.kafka else { return 0 };
        kafka
            .nodes
            .iter()
            .filter_map(|n| std::fs::read_to_string(n.dir.join("server.log")).ok())
            .map(|log| log.lines().filter(|l| l.contains(needle)).count())
            .sum()
    }

    fn signal(&self, signal: Signal, operation: &'static str) -> Result<()> {
        if self.shared {
            return Err(self.unsupported(operation));
        }
        let pids = self.pids();
        if pids.is_empty() {
            return Err(self.unsupported(operation));
        }
        for pid in pids {
            let pid = i32::try_from(pid).map_err(|_| self.unsupported(operation))?;
            kill(Pid::from_raw(pid), signal)?;
        }
        Ok(())
    }

    fn unsupported(&self, operation: &'static str) -> Error {
        if self.shared {
            Error::Shared { operation, bootstrap: self.bootstrap.clone() }
        } else {
            Error::Unsupported { operation, bootstrap: self.bootstrap.clone() }
        }
    }

    fn wait_until_listening(&self) -> Result<()> {
        wait_until_listening(&self.bootstrap)
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        if self.shared {
            return;
        }
        let _ = self.stop();
        // A failing test's brokers tell what they saw: keep their logs.
        if std::thread::panicking() {
            if let Some(kafka) = self.kafka.take() {
                let kept = kafka.keep_logs();
                let _ = writeln!(
                    std::io::stderr(),
                    "kmirror-testcontainers: broker logs kept in {}",
                    kept.display()
                );
            }
        }
    }
}

/// Starts a Tansu broker process (in-memory storage) listening on `listener` and advertising
/// `advertised`.
pub(crate) fn spawn_tansu(id: u16, listener: &str, advertised: &str) -> Result<Child> {
    let binary = tansu_binary()?;
    let mut command = Command::new(&binary);
    command
        .args(["broker", "--cluster-id", &format!("kmirror-test-{id}")])
        .args(["--listener-url", listener, "--advertised-listener-url", advertised])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn_tied(command).map_err(|source| Error::Spawn { binary: binary.display().to_string(), source })
}

pub(crate) fn wait_until_listening(address: &str) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < READY_TIMEOUT {
        if TcpStream::connect(address).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::NotReady { bootstrap: address.to_string(), seconds: READY_TIMEOUT.as_secs() })
}
