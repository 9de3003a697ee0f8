//! Apache Kafka (KRaft, the `apache/kafka` image) through the testcontainers crate, used when
//! a Docker engine answers. Built with the `docker` feature.
use std::os::unix::net::UnixStream;

use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, GenericImage, ImageExt};

use crate::cluster::free_loopback_port;
use crate::error::{Error, Result};

const IMAGE: &str = "apache/kafka";
const TAG: &str = "3.9.1";

/// Is a Docker engine listening on the usual socket (or DOCKER_HOST)?
pub fn engine_answers() -> bool {
    if std::env::var_os("DOCKER_HOST").is_some() {
        return true;
    }
    UnixStream::connect("/var/run/docker.sock").is_ok()
}

/// Starts a single-node KRaft cluster advertised on a free loopback port.
pub fn start_kafka() -> Result<(Container<GenericImage>, String)> {
    let port = free_loopback_port()?;
    let bootstrap = format!("127.0.0.1:{port}");
    let image = GenericImage::new(IMAGE, TAG)
        .with_wait_for(WaitFor::message_on_stdout("Kafka Server started"))
        .with_mapped_port(port, ContainerPort::Tcp(9092))
        .with_env_var("KAFKA_NODE_ID", "1")
        .with_env_var("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env_var("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env_var("KAFKA_ADVERTISED_LISTENERS", format!("PLAINTEXT://{bootstrap}"))
        .with_env_var("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env_var("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        .with_env_var("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env_var("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env_var("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env_var("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env_var("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
    let container = image.start().map_err(|e| Error::Docker(e.to_string()))?;
    Ok((container, bootstrap))
}
