//! Apache Kafka (KRaft) clusters run as local JVM processes, from the jars `scripts/setup.sh`
//! installs from Maven Central: each node is formatted with Kafka's own `StorageTool` (SCRAM
//! users included) and started as `java -cp LIB/* kafka.Kafka server.properties`.
//!
//! Starting is split in two ([`launch`], then [`Launched::wait_ready`]) so that several clusters
//! boot their JVMs at the same time.
mod install;
mod server_config;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tracing::debug;

pub(crate) use install::workspace_root;
pub use install::{
    installed_version, java_binary, kafka_lib, kafka_lib_of, version_in, KAFKA_LIB_ENV, KAFKA_VERSION,
    OLDER_KAFKA_VERSION,
};
use server_config::{log4j2_properties, ClusterLayout, NodePorts};
pub use server_config::{ClientListener, ServerTls, BROKER_LOG_ENV};

use crate::error::{Error, Result};
use crate::ports::free_loopback_ports;
use crate::slow_link::SlowLink;
use crate::spawner::spawn_tied;

/// JVM start-up and KRaft election take seconds, more on a loaded 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const STARTED_LINE: &str = "Kafka Server started";
/// What a JVM logs when a port it was given has been bound by someone else since.
const PORT_TAKEN: &str = "Address already in use";
/// Launches of one cluster, the first included, before a port clash is reported as a failure.
const LAUNCH_ATTEMPTS: usize = 3;

/// What to start.
#[derive(Debug, Clone)]
pub struct KafkaSpec {
    /// 1, or 3 for tests that lose a leader.
    pub nodes: usize,
    pub listener: ClientListener,
    /// SCRAM users (name, password), created at format time for every mechanism of the listener.
    pub users: Vec<(String, String)>,
    /// Broker settings that replace the harness's defaults.
    pub overrides: Vec<(String, String)>,
    /// Clients reach every node across a link with this round trip ([`crate::slow_link`]);
    /// the nodes replicate and write transaction markers over a plain local listener.
    pub client_round_trip: Option<Duration>,
    /// The Kafka release the nodes run: `None` for the harness's ([`KAFKA_VERSION`], or the
    /// jars `KMIRROR_KAFKA_LIB` names), or one `scripts/setup.sh` installs
    /// ([`OLDER_KAFKA_VERSION`]).
    pub version: Option<&'static str>,
}

impl KafkaSpec {
    pub fn plaintext(nodes: usize) -> Self {
        Self {
            nodes,
            listener: ClientListener::Plaintext,
            users: Vec::new(),
            overrides: Vec::new(),
            client_round_trip: None,
            version: None,
        }
    }

    /// Plaintext nodes that clients reach across a link with `round_trip`, as across regions.
    pub fn behind_slow_link(nodes: usize, round_trip: Duration) -> Self {
        Self { client_round_trip: Some(round_trip), ..Self::plaintext(nodes) }
    }

    /// Plaintext nodes for tests that kill one: its partitions move once its controller lease
    /// runs out, after 6 s instead of the harness's 25 s (which lets a frozen node stay frozen),
    /// so a producer's 30 s flush has room after the election.
    pub fn for_leader_kills(nodes: usize) -> Self {
        Self {
            overrides: vec![("broker.session.timeout.ms".into(), "6000".into())],
            ..Self::plaintext(nodes)
        }
    }
}

/// Extra JVM options for every node, from `KMIRROR_TEST_BROKER_JVM_OPTS` (split on spaces; `{dir}`
/// stands for the node's directory, e.g. `-Xlog:gc:file={dir}/gc.log`).
pub const JVM_OPTS_ENV: &str = "KMIRROR_TEST_BROKER_JVM_OPTS";

fn extra_jvm_options(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::env::var(JVM_OPTS_ENV)
        .unwrap_or_default()
        .split_whitespace()
        .map(|option| option.replace("{dir}", &dir))
        .collect()
}

/// One node: its configuration, data and process.
#[derive(Debug)]
pub(crate) struct Node {
    pub id: usize,
    /// The jars the node runs.
    pub lib: PathBuf,
    pub dir: PathBuf,
    pub ports: NodePorts,
    pub child: Option<Child>,
}

impl Node {
    fn config(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    fn server_log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Starts the node's JVM (again, after [`Node::kill`]: its data is kept on disk).
    pub fn start(&mut self) -> Result<()> {
        let lib = self.lib.clone();
        let stdout = std::fs::File::create(self.dir.join("stdout.log"))?;
        let mut command = Command::new(java_binary());
        command
            .args(["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError"])
            // Later options win: a bench can try Kafka's own JVM settings, or log the GC.
            .args(extra_jvm_options(&self.dir))
            .arg(format!("-Dlog4j2.configurationFile={}", self.dir.join("log4j2.properties").display()))
            .arg(format!("-Dkafka.logs.dir={}", self.dir.display()))
            .arg("-cp")
            .arg(classpath(&lib))
            .arg("kafka.Kafka")
            .arg(self.config())
            .stdin(Stdio::null())
            .stdout(stdout.try_clone()?)
            .stderr(stdout);
        // A restarted node must be waited for afresh.
        let _ = std::fs::remove_file(self.server_log());
        self.child = Some(spawn_tied(command).map_err(|source| spawn_error(&lib, source))?);
        Ok(())
    }

    /// SIGKILLs the node, as a crash would; a frozen node dies too.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where clients connect: the far end of the slow link, if there is one.
    pub fn client_address(&self, host: &str) -> String {
        format!("{host}:{}", self.ports.advertised())
    }

    /// Waits for the start-up line; fails early, with the node's last words, if it exits.
    pub fn wait_started(&mut self, deadline: Instant) -> Result<()> {
        loop {
            if std::fs::read_to_string(self.server_log()).is_ok_and(|log| log.contains(STARTED_LINE)) {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?.map(|status| status.to_string()),
                None => Some("not running".into()),
            };
            if let Some(status) = exited {
                if self.logs().contains(PORT_TAKEN) {
                    return Err(Error::PortTaken { node: self.id, detail: format!("{:?}", self.ports) });
                }
                return Err(Error::KafkaFailed {
                    node: self.id,
                    detail: format!("{status}: {}", self.last_words()),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::KafkaFailed {
                    node: self.id,
                    detail: format!(
                        "not started within {} s: {}",
                        READY_TIMEOUT.as_secs(),
                        self.last_words()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the node printed and logged, both files one after the other.
    fn logs(&self) -> String {
        let mut text = String::new();
        for file in ["stdout.log", "server.log"] {
            if let Ok(mut f) = std::fs::File::open(self.dir.join(file)) {
                let _ = f.read_to_string(&mut text);
            }
        }
        text
    }

    fn last_words(&self) -> String {
        let text = self.logs();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(6)..].join(" | ")
    }
}

impl Drop for Node {
    // A cluster given up on (a port clash, a failed start) must not leave JVMs running.
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A cluster whose JVMs are booting.
#[derive(Debug)]
pub(crate) struct Launched {
    /// Removed when the cluster drops, after its nodes are killed.
    pub folder: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub listener: ClientListener,
    /// The slow links in front of the nodes, if the spec asked for them; held so that they
    /// keep accepting as long as the nodes run.
    pub links: Vec<SlowLink>,
}

impl Launched {
    pub fn wait_ready(mut self) -> Result<Self> {
        let deadline = Instant::now() + READY_TIMEOUT;
        for node in &mut self.nodes {
            node.wait_started(deadline)?;
        }
        debug!(bootstrap = %self.bootstrap(), "apache kafka ready");
        Ok(self)
    }

    pub fn bootstrap(&self) -> String {
        let host = self.listener.host();
        self.nodes.iter().map(|n| n.client_address(host)).collect::<Vec<_>>().join(",")
    }

    /// The plain listeners, when clients use a secured one.
    pub fn internal_bootstrap(&self) -> Option<String> {
        let ports: Option<Vec<u16>> = self.nodes.iter().map(|n| n.ports.internal).collect();
        ports.map(|p| p.iter().map(|port| format!("127.0.0.1:{port}")).collect::<Vec<_>>().join(","))
    }

    /// Keeps the folder (logs, data) past the cluster's end, out of the stale-folder sweep.
    pub fn keep_logs(self) -> PathBuf {
        let kept = self.folder.keep();
        let name =
            kept.file_name().map(|n| n.to_string_lossy().replace("kmirror-kafka-", "kmirror-kafka-logs-"));
        match name.map(|n| kept.with_file_name(n)) {
            Some(renamed) if std::fs::rename(&kept, &renamed).is_ok() => renamed,
            _ => kept,
        }
    }

    pub fn replicas(&self) -> i32 {
        self.nodes.len().min(3) as i32
    }
}

/// Waits for `launched`; if a node lost one of its ports to another process between the port
/// search and its JVM's bind, the cluster is launched afresh on new ports, a bounded number of times.
pub(crate) fn ready_or_relaunch(launched: Launched, spec: &KafkaSpec) -> Result<Launched> {
    let mut attempt = 1;
    let mut launched = launched;
    loop {
        match launched.wait_ready() {
            Err(Error::PortTaken { node, detail }) if attempt < LAUNCH_ATTEMPTS => {
                tracing::warn!(node, %detail, attempt, "a broker port was taken; launching again");
                attempt += 1;
                launched = launch(spec)?;
            }
            other => return other,
        }
    }
}

/// Formats every node (in parallel) and starts their JVMs; see [`Launched::wait_ready`].
pub(crate) fn launch(spec: &KafkaSpec) -> Result<Launched> {
    if spec.nodes == 0 {
        return Err(Error::Io(std::io::Error::other("a cluster needs at least one node")));
    }
    let lib = kafka_lib_of(spec.version)?;
    sweep_stale_dirs();
    let dir = tempfile::Builder::new().prefix(&format!("kmirror-kafka-{}-", std::process::id())).tempdir()?;
    // Replication and transaction markers must not cross a slow link meant for clients only.
    let internal = !spec.listener.is_plaintext() || spec.client_round_trip.is_some();
    let mut free = free_loopback_ports(spec.nodes * 4)?.into_iter();
    let mut next = || free.next().ok_or_else(|| Error::Io(std::io::Error::other("no free loopback port")));
    let mut ports = Vec::new();
    for _ in 0..spec.nodes {
        ports.push(NodePorts {
            client: next()?,
            controller: next()?,
            internal: if internal { Some(next()?) } else { None },
            far_end: if spec.client_round_trip.is_some() { Some(next()?) } else { None },
        });
    }
    let layout = ClusterLayout { nodes: &ports, listener: &spec.listener, overrides: &spec.overrides };
    let cluster_id = random_cluster_id()?;
    let mut nodes = Vec::new();
    let mut formats = Vec::new();
    for (index, node_ports) in ports.iter().enumerate() {
        let node_dir = dir.path().join(format!("node-{}", index + 1));
        std::fs::create_dir_all(node_dir.join("data"))?;
        let node = Node { id: index + 1, lib: lib.clone(), dir: node_dir, ports: *node_ports, child: None };
        std::fs::write(node.config(), layout.server_properties(index, &node.dir.join("data")))?;
        std::fs::write(node.dir.join("log4j2.properties"), log4j2_properties(&node.server_log()))?;
        formats.push(format_storage(&lib, &node, &cluster_id, spec)?);
        nodes.push(node);
    }
    for (node, format) in nodes.iter().zip(formats) {
        let out = format.wait_with_output()?;
        if !out.status.success() {
            let text =
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            return Err(Error::KafkaFailed {
                node: node.id,
                detail: format!("storage format failed: {}", text.trim()),
            });
        }
    }
    let mut links = Vec::new();
    if let Some(round_trip) = spec.client_round_trip {
        for node in &nodes {
            if let Some(far_end) = node.ports.far_end {
                let listener = std::net::TcpListener::bind(("127.0.0.1", far_end))?;
                let near_end = format!("127.0.0.1:{}", node.ports.client);
                links.push(SlowLink::start(listener, near_end, round_trip / 2)?);
            }
        }
    }
    for node in &mut nodes {
        node.start()?;
    }
    Ok(Launched { folder: dir, nodes, listener: spec.listener.clone(), links })
}

fn format_storage(lib: &Path, node: &Node, cluster_id: &str, spec: &KafkaSpec) -> Result<Child> {
    let mut command = Command::new(java_binary());
    command
        .args(["-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp"])
        .arg(classpath(lib))
        .args(["kafka.tools.StorageTool", "format", "-c"])
        .arg(node.config())
        .args(["-t", cluster_id]);
    if let ClientListener::Scram { mechanisms, .. } = &spec.listener {
        for (user, password) in &spec.users {
            for mechanism in mechanisms {
                command
                    .arg("--add-scram")
                    .arg(format!("{}=[name={user},password={password}]", mechanism.name()));
            }
        }
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    spawn_tied(command).map_err(|source| spawn_error(lib, source))
}

fn classpath(lib: &Path) -> String {
    format!("{}/*", lib.display())
}

fn spawn_error(lib: &Path, source: std::io::Error) -> Error {
    Error::Spawn {
        binary: format!("{} (Java 17 runs Apache Kafka from {})", java_binary().display(), lib.display()),
        source,
    }
}

/// A KRaft cluster id: 16 random bytes, base64url without padding, as `StorageTool random-uuid`
/// prints (without the second of JVM start-up). One that starts with '-' would read as an
/// option on StorageTool's command line, so those are drawn again.
fn random_cluster_id() -> Result<String> {
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    loop {
        let mut bytes = [0u8; 16];
        urandom.read_exact(&mut bytes)?;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
}

/// Shared clusters live until their test process exits, so nothing removes their folders then;
/// the next launch removes those whose process is gone.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("kmirror-kafka-").and_then(|rest| rest.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
