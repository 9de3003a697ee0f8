use std::io;

/// Errors of the test-cluster harness; each names what failed and, where it helps, the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("test broker binary not found: {0} (run scripts/setup.sh or set KMIRROR_TANSU_BIN)")]
    BrokerBinaryMissing(String),
    #[error("could not start {binary}: {source}")]
    Spawn { binary: String, source: io::Error },
    #[error("test broker on {bootstrap} did not become ready within {seconds} s")]
    NotReady { bootstrap: String, seconds: u64 },
    #[error("{operation} is not possible on an external cluster ({bootstrap})")]
    Unsupported { operation: &'static str, bootstrap: String },
    #[error("{operation} is not possible on the shared cluster {bootstrap}: other tests use it (start a dedicated one with KafkaCluster::start)")]
    Shared { operation: &'static str, bootstrap: String },
    #[error("the shared test clusters did not start: {0}")]
    SharedUnavailable(String),
    #[error("Apache Kafka is not installed in {0} (run scripts/setup.sh, or set KMIRROR_TEST_BROKER=tansu for the development broker)")]
    KafkaMissing(String),
    #[error("Apache Kafka node {node} failed: {detail}")]
    KafkaFailed { node: usize, detail: String },
    #[error("Apache Kafka node {node} could not bind its port {detail} (another process took it)")]
    PortTaken { node: usize, detail: String },
    #[error("unknown KMIRROR_TEST_BROKER value '{0}' (use apache-kafka or tansu)")]
    UnknownBroker(String),
    #[error("kafka client error during {context}: {source}")]
    Kafka { context: String, source: rdkafka::error::KafkaError },
    #[error("topic {topic}: {message}")]
    Topic { topic: String, message: String },
    #[error("raw protocol error talking to {broker}: {message}")]
    Protocol { broker: String, message: String },
    #[error("tls setup: {0}")]
    Tls(String),
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("signal error: {0}")]
    Signal(#[from] nix::Error),
    #[error("timed out after {seconds} s: {what}")]
    Timeout { what: String, seconds: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn kafka(context: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
    let context = context.into();
    move |source| Error::Kafka { context, source }
}
