//! One source and one target cluster per test process, started on first use and shared by
//! every test that neither stops, freezes nor reconfigures a broker. JVM brokers take seconds
//! to start, so a test binary pays that once; tests stay apart by unique topic, group and mirror
//! names. The brokers die with the process (see `spawner`).
use std::sync::OnceLock;

use crate::cluster::{KafkaCluster, Role};
use crate::error::{Error, Result};

static SHARED: OnceLock<std::result::Result<(KafkaCluster, KafkaCluster), String>> = OnceLock::new();

impl KafkaCluster {
    /// A view of this process's shared cluster for `role`; see the module docs.
    pub fn shared(role: Role) -> Result<Self> {
        let (source, target) = Self::shared_pair()?;
        Ok(match role {
            Role::Source => source,
            Role::Target => target,
        })
    }

    /// Views of this process's shared source and target clusters.
    pub fn shared_pair() -> Result<(Self, Self)> {
        let shared = SHARED.get_or_init(|| {
            let (source, target) = Self::start_pair().map_err(|e| e.to_string())?;
            source.announce("shared source");
            target.announce("shared target");
            Ok((source, target))
        });
        match shared {
            Ok((source, target)) => Ok((source.view(), target.view())),
            Err(why) => Err(Error::SharedUnavailable(why.clone())),
        }
    }
}
