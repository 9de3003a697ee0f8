//! A running Kafka-API cluster for a test, a benchmark or the demo.
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{debug, info};

use crate::broker_binary::tansu_binary;
use crate::error::{Error, Result};

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

/// What runs the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Named by `KMIRROR_TEST_{SOURCE,TARGET}_BOOTSTRAP`; shared between tests, never stopped by us.
    External,
    /// A local Tansu broker process with in-memory storage, owned by this handle.
    Tansu,
    /// Apache Kafka (KRaft) in a Docker container, removed when the handle drops.
    Docker,
}

/// A cluster that lives as long as this handle: dropping it kills and reaps the broker.
#[derive(Debug)]
pub struct KafkaCluster {
    bootstrap: String,
    backend: Backend,
    child: Option<Child>,
    /// Client settings every client of this cluster needs (e.g. TLS).
    pub(crate) client_properties: Vec<(String, String)>,
    /// A plain-TCP address of the broker, for raw protocol reads, when clients go through a
    /// TLS proxy.
    pub(crate) plain_address: Option<String>,
    /// The TLS proxy in front of the broker, if any; stopped with it.
    pub(crate) proxy: Option<Child>,
    /// The SASL front of the broker, if any; it stops accepting when dropped.
    pub(crate) sasl_proxy: Option<crate::sasl_proxy::SaslProxy>,
    #[cfg(feature = "docker")]
    pub(crate) container: Option<testcontainers::Container<testcontainers::GenericImage>>,
}

const READY_TIMEOUT: Duration = Duration::from_secs(20);

impl KafkaCluster {
    /// Starts (or connects to) a cluster for `role`, in this order of preference: external
    /// clusters from the environment, else a local Tansu broker on a free loopback port.
    pub fn start(role: Role) -> Result<Self> {
        if let Ok(bootstrap) = std::env::var(role.env_var()) {
            if !bootstrap.trim().is_empty() {
                info!(%bootstrap, ?role, "using external cluster");
                return Ok(Self::handle(bootstrap, Backend::External, None));
            }
        }
        #[cfg(feature = "docker")]
        if crate::docker::engine_answers() {
            match crate::docker::start_kafka() {
                Ok((container, bootstrap)) => {
                    let mut cluster = Self::handle(bootstrap, Backend::Docker, None);
                    cluster.container = Some(container);
                    return Ok(cluster);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Docker answers but Apache Kafka did not start; using Tansu")
                }
            }
        }
        Self::start_tansu()
    }

    /// Starts a source and a target cluster.
    pub fn start_pair() -> Result<(Self, Self)> {
        Ok((Self::start(Role::Source)?, Self::start(Role::Target)?))
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
            child,
            client_properties: Vec::new(),
            plain_address: None,
            proxy: None,
            sasl_proxy: None,
            #[cfg(feature = "docker")]
            container: None,
        }
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The broker's process id, for tests that check it is gone after drop.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Freezes the broker (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP, "pause")
    }

    /// Thaws a paused broker (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal(Signal::SIGCONT, "resume")
    }

    /// Kills the broker and waits for it; its in-memory data is gone.
    pub fn stop(&mut self) -> Result<()> {
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
        #[cfg(feature = "docker")]
        if let Some(container) = self.container.take() {
            drop(container);
            return Ok(());
        }
        match self.backend {
            Backend::External => Err(self.unsupported("stop")),
            Backend::Tansu | Backend::Docker => Ok(()),
        }
    }

    fn signal(&self, signal: Signal, operation: &'static str) -> Result<()> {
        let child = self.child.as_ref().ok_or_else(|| self.unsupported(operation))?;
        let pid = i32::try_from(child.id()).map_err(|_| self.unsupported(operation))?;
        kill(Pid::from_raw(pid), signal)?;
        Ok(())
    }

    fn unsupported(&self, operation: &'static str) -> Error {
        Error::Unsupported { operation, bootstrap: self.bootstrap.clone() }
    }

    fn wait_until_listening(&self) -> Result<()> {
        wait_until_listening(&self.bootstrap)
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts a Tansu broker process (in-memory storage) listening on `listener` and advertising
/// `advertised`.
pub(crate) fn spawn_tansu(id: u16, listener: &str, advertised: &str) -> Result<Child> {
    let binary = tansu_binary()?;
    Command::new(&binary)
        .args(["broker", "--cluster-id", &format!("kmirror-test-{id}")])
        .args(["--listener-url", listener, "--advertised-listener-url", advertised])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| Error::Spawn { binary: binary.display().to_string(), source })
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

/// A loopback port that was free a moment ago; the OS picks it so parallel tests do not clash.
pub fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
