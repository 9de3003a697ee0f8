//! One source and one target cluster per test process, started on first use and shared by
//! every test that neither stops, freezes nor reconfigures a broker. JVM brokers take seconds
//! to start, so a test binary pays that once; tests stay apart by unique topic, group and mirror
//! names. The brokers die with the process (see `spawner`).
//!
//! A whole test run can share one pair too: `kmirror-test-clusters` starts it and prints
//! [`SHARED_SOURCE_ENV`] and [`SHARED_TARGET_ENV`]; with both set, every test binary uses those
//! clusters as its shared pair (`.ci/run` does this; a plain `cargo test` starts its own).
use std::sync::OnceLock;

use crate::cluster::{KafkaCluster, Role};
use crate::error::{Error, Result};

/// The bootstrap of a source cluster shared by a whole test run (see the module docs).
pub const SHARED_SOURCE_ENV: &str = "KMIRROR_TEST_SHARED_SOURCE";
/// The bootstrap of a target cluster shared by a whole test run.
pub const SHARED_TARGET_ENV: &str = "KMIRROR_TEST_SHARED_TARGET";

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
            let of_the_run = |var: &str| std::env::var(var).ok().filter(|b| !b.trim().is_empty());
            if let (Some(source), Some(target)) =
                (of_the_run(SHARED_SOURCE_ENV), of_the_run(SHARED_TARGET_ENV))
            {
                let (source, target) = (Self::run_wide(source), Self::run_wide(target));
                source.announce("shared source (of the whole run)");
                target.announce("shared target (of the whole run)");
                return Ok((source, target));
            }
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

    /// A cluster `kmirror-test-clusters` runs for the whole test run: Apache Kafka started the
    /// harness's way, but not this process's to pause or stop.
    fn run_wide(bootstrap: String) -> Self {
        let mut cluster = Self::handle(bootstrap, crate::cluster::Backend::ApacheKafka, None);
        cluster.shared = true;
        cluster
    }
}
