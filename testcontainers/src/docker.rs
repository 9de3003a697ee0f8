//! Apache Kafka (KRaft, the `apache/kafka` image) through the testcontainers crate, used when
//! a Docker engine answers. Built with the `docker` feature.
use std::os::unix::net::UnixStream;

use testcontainers::core::{CmdWaitFor, ContainerPort, ExecCommand, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, ContainerRequest, GenericImage, ImageExt};

use crate::cluster::free_loopback_port;
use crate::error::{Error, Result};
use crate::scram::{Mechanism, ITERATIONS};

const IMAGE: &str = "apache/kafka";
const TAG: &str = "3.9.1";
const JAAS_PATH: &str = "/etc/kafka/kmirror_server_jaas.conf";

/// Is a Docker engine listening on the usual socket (or DOCKER_HOST)?
pub fn engine_answers() -> bool {
    if std::env::var_os("DOCKER_HOST").is_some() {
        return true;
    }
    UnixStream::connect("/var/run/docker.sock").is_ok()
}

/// A single-node KRaft broker and controller with the given client listeners (besides the
/// controller's), e.g. `PLAINTEXT://:9092`, advertised as `advertised`.
fn kraft(listeners: &str, advertised: &str, protocols: &str) -> ContainerRequest<GenericImage> {
    GenericImage::new(IMAGE, TAG)
        .with_wait_for(WaitFor::message_on_stdout("Kafka Server started"))
        .with_env_var("KAFKA_NODE_ID", "1")
        .with_env_var("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env_var("KAFKA_LISTENERS", format!("{listeners},CONTROLLER://:9093"))
        .with_env_var("KAFKA_ADVERTISED_LISTENERS", advertised)
        .with_env_var("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env_var("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", format!("CONTROLLER:PLAINTEXT,{protocols}"))
        .with_env_var("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env_var("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env_var("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env_var("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env_var("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
}

/// Starts a single-node KRaft cluster advertised on a free loopback port.
pub fn start_kafka() -> Result<(Container<GenericImage>, String)> {
    let port = free_loopback_port()?;
    let bootstrap = format!("127.0.0.1:{port}");
    let container = kraft("PLAINTEXT://:9092", &format!("PLAINTEXT://{bootstrap}"), "PLAINTEXT:PLAINTEXT")
        .with_mapped_port(port, ContainerPort::Tcp(9092))
        .start()
        .map_err(|e| Error::Docker(e.to_string()))?;
    Ok((container, bootstrap))
}

/// A cluster whose client listener requires SASL/SCRAM with `mechanisms`, with `users` (name,
/// password) created through the broker's own tools. A second, plain listener serves the
/// harness's raw log reads and the tools; it is also the inter-broker listener.
/// Returns the container, the SASL bootstrap address and the plain address.
pub fn start_kafka_scram(
    mechanisms: &[Mechanism],
    users: &[(String, String)],
) -> Result<(Container<GenericImage>, String, String)> {
    let (port, plain_port) = (free_loopback_port()?, free_loopback_port()?);
    let bootstrap = format!("127.0.0.1:{port}");
    let plain = format!("127.0.0.1:{plain_port}");
    let enabled: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
    let jaas = "KafkaServer {\n  org.apache.kafka.common.security.scram.ScramLoginModule required;\n};\n";
    let container = kraft(
        "SASL://:9092,PLAIN://:9094",
        &format!("SASL://{bootstrap},PLAIN://localhost:9094"),
        "SASL:SASL_PLAINTEXT,PLAIN:PLAINTEXT",
    )
    .with_mapped_port(port, ContainerPort::Tcp(9092))
    .with_mapped_port(plain_port, ContainerPort::Tcp(9094))
    .with_copy_to(JAAS_PATH, jaas.as_bytes().to_vec())
    .with_env_var("KAFKA_OPTS", format!("-Djava.security.auth.login.config={JAAS_PATH}"))
    .with_env_var("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAIN")
    .with_env_var("KAFKA_SASL_ENABLED_MECHANISMS", enabled.join(","))
    .start()
    .map_err(|e| Error::Docker(e.to_string()))?;
    for (name, password) in users {
        let credentials: Vec<String> = mechanisms
            .iter()
            .map(|m| format!("{}=[iterations={ITERATIONS},password={password}]", m.name()))
            .collect();
        let command = ExecCommand::new([
            "/opt/kafka/bin/kafka-configs.sh",
            "--bootstrap-server",
            "localhost:9094",
            "--alter",
            "--entity-type",
            "users",
            "--entity-name",
            name,
            "--add-config",
            &credentials.join(","),
        ])
        .with_cmd_ready_condition(CmdWaitFor::exit_code(0));
        container.exec(command).map_err(|e| Error::Docker(format!("creating SCRAM user {name}: {e}")))?;
    }
    Ok((container, bootstrap, plain))
}
