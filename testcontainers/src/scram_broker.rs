//! Clusters whose client listener requires SASL/SCRAM: Apache Kafka's own SCRAM listener, or a
//! Tansu broker behind the SCRAM front of [`crate::sasl_proxy`].
use std::net::TcpListener;
use std::path::Path;

use crate::apache_kafka::{ClientListener, KafkaSpec, ServerTls};
use crate::cluster::{free_loopback_port, spawn_tansu, wait_until_listening};
use crate::error::{Error, Result};
use crate::sasl_proxy::{invalid, SaslProxy};
use crate::scram::Mechanism;
use crate::tls::{pem_keystore, Identity};
use crate::{Backend, KafkaCluster};

/// How a SCRAM broker is set up.
pub struct ScramBroker<'a> {
    /// The mechanisms the listener enables; a client asking for another one is refused.
    pub mechanisms: &'a [Mechanism],
    /// Users as (name, password); each has a credential for every enabled mechanism.
    pub users: &'a [(String, String)],
    /// SCRAM over TLS (SASL_SSL) with this server certificate (Apache Kafka only).
    pub tls: Option<ScramTls<'a>>,
    /// Apache Kafka's `StandardAuthorizer`, with the first user (the harness's own clients) and
    /// the anonymous principal of the plain listeners as super users: every other user needs
    /// ACLs (Apache Kafka only).
    pub authorizer: bool,
}

/// The TLS side of a SASL_SSL listener.
pub struct ScramTls<'a> {
    pub server: &'a Identity,
    /// The CA that signed `server`, for the harness's own clients.
    pub ca: &'a Path,
    /// The host name the broker advertises; `server` must name it.
    pub host: &'a str,
    /// Where the broker's key store is written.
    pub dir: &'a Path,
}

impl KafkaCluster {
    /// A Tansu broker behind a SASL_PLAINTEXT (SCRAM) front: the broker advertises the front's
    /// port, so clients must authenticate. The harness's own clients log in as the first user;
    /// raw protocol reads use the broker's plain port.
    pub fn start_tansu_scram(setup: ScramBroker<'_>) -> Result<Self> {
        if setup.tls.is_some() {
            return Err(Error::Unsupported { operation: "SASL_SSL on Tansu", bootstrap: String::new() });
        }
        if setup.authorizer {
            return Err(Error::Unsupported { operation: "ACLs on Tansu", bootstrap: String::new() });
        }
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

    /// A cluster whose client listener requires SCRAM: Apache Kafka with the users created by
    /// its own `StorageTool` at format time, or Tansu behind a front when
    /// `KMIRROR_TEST_BROKER=tansu`.
    pub fn start_scram(setup: ScramBroker<'_>) -> Result<Self> {
        if Backend::local()? == Backend::Tansu {
            return Self::start_tansu_scram(setup);
        }
        let tls = match &setup.tls {
            Some(t) => Some(ServerTls {
                keystore: pem_keystore(t.dir, t.server)?,
                client_ca: None,
                host: t.host.to_string(),
            }),
            None => None,
        };
        let spec = KafkaSpec {
            nodes: 1,
            listener: ClientListener::Scram { mechanisms: setup.mechanisms.to_vec(), tls },
            users: setup.users.to_vec(),
            overrides: match (setup.authorizer, setup.users.first()) {
                (true, Some((admin, _))) => vec![
                    (
                        "authorizer.class.name".into(),
                        "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
                    ),
                    ("super.users".into(), format!("User:{admin};User:ANONYMOUS")),
                ],
                _ => Vec::new(),
            },
            client_round_trip: None,
            version: None,
        };
        let client_properties = client_properties(&setup)?;
        Self::start_kafka_for(&spec, client_properties)
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
    let mut properties = vec![
        ("sasl.mechanism".to_string(), mechanism.name().to_string()),
        ("sasl.username".into(), user.clone()),
        ("sasl.password".into(), password.clone()),
    ];
    match &setup.tls {
        Some(tls) => {
            properties.push(("security.protocol".into(), "SASL_SSL".into()));
            properties.push(("ssl.ca.location".into(), tls.ca.display().to_string()));
        }
        None => properties.push(("security.protocol".into(), "SASL_PLAINTEXT".into())),
    }
    Ok(properties)
}
