//! Clusters whose client listener requires SASL/SCRAM: a Tansu broker behind the SCRAM front
//! of [`crate::sasl_proxy`], or Apache Kafka in Docker with SCRAM users.
use std::net::TcpListener;

use crate::cluster::{free_loopback_port, spawn_tansu, wait_until_listening};
use crate::error::{Error, Result};
use crate::sasl_proxy::{invalid, SaslProxy};
use crate::scram::Mechanism;
use crate::{Backend, KafkaCluster};

/// How a SCRAM broker is set up.
pub struct ScramBroker<'a> {
    /// The mechanisms the listener enables; a client asking for another one is refused.
    pub mechanisms: &'a [Mechanism],
    /// Users as (name, password); each has a credential for every enabled mechanism.
    pub users: &'a [(String, String)],
}

impl KafkaCluster {
    /// A Tansu broker behind a SASL_PLAINTEXT (SCRAM) front: the broker advertises the front's
    /// port, so clients must authenticate. The harness's own clients log in as the first user;
    /// raw protocol reads use the broker's plain port.
    pub fn start_tansu_scram(setup: ScramBroker<'_>) -> Result<Self> {
        let client_properties = client_properties(&setup)?;
        let front = TcpListener::bind("127.0.0.1:0")?;
        let front_address = front.local_addr()?.to_string();
        let plain = free_loopback_port()?;
        let child =
            spawn_tansu(plain, &format!("tcp://127.0.0.1:{plain}"), &format!("tcp://{front_address}"))?;
        let mut cluster = Self::handle(front_address, Backend::Tansu, Some(child));
        let plain_address = format!("127.0.0.1:{plain}");
        wait_until_listening(&plain_address)?;
        cluster.sasl_proxy =
            Some(SaslProxy::start(front, plain_address.clone(), setup.mechanisms, setup.users)?);
        cluster.plain_address = Some(plain_address);
        cluster.client_properties = client_properties;
        Ok(cluster)
    }

    /// Apache Kafka in Docker whose client listener requires SCRAM; `Error::DockerUnavailable`
    /// says why when that is not possible here (built without the `docker` feature, or no engine).
    pub fn start_docker_scram(setup: ScramBroker<'_>) -> Result<Self> {
        #[cfg(feature = "docker")]
        {
            if !crate::docker::engine_answers() {
                return Err(Error::DockerUnavailable(
                    "no Docker engine answers (DOCKER_HOST or /var/run/docker.sock)".into(),
                ));
            }
            let (container, bootstrap, plain) =
                crate::docker::start_kafka_scram(setup.mechanisms, setup.users)?;
            let mut cluster = Self::handle(bootstrap, Backend::Docker, None);
            cluster.container = Some(container);
            cluster.plain_address = Some(plain);
            cluster.client_properties = client_properties(&setup)?;
            Ok(cluster)
        }
        #[cfg(not(feature = "docker"))]
        {
            let _ = setup;
            Err(Error::DockerUnavailable(
                "built without the docker feature (cargo test --features docker)".into(),
            ))
        }
    }

    /// The SASL front of a cluster started by [`KafkaCluster::start_tansu_scram`].
    pub fn sasl_proxy(&self) -> Option<&SaslProxy> {
        self.sasl_proxy.as_ref()
    }
}

/// What the harness's own clients use: the first user with the first mechanism.
fn client_properties(setup: &ScramBroker<'_>) -> Result<Vec<(String, String)>> {
    let (Some((user, password)), Some(mechanism)) = (setup.users.first(), setup.mechanisms.first()) else {
        return Err(Error::Io(invalid("a SCRAM broker needs at least one user and one mechanism")));
    };
    Ok(vec![
        ("security.protocol".into(), "SASL_PLAINTEXT".into()),
        ("sasl.mechanism".into(), mechanism.name().into()),
        ("sasl.username".into(), user.clone()),
        ("sasl.password".into(), password.clone()),
    ])
}
