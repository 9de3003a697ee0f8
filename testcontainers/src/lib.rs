//! Real Kafka-API clusters for kmirror's tests, benchmarks and demo.
//!
//! [`KafkaCluster::start`] gives a cluster in one line: external clusters named in the
//! environment if set, else Apache Kafka in Docker (with the `docker` feature, when an engine
//! answers), else a local Tansu broker process on a free loopback port, killed and
//! reaped when the handle drops. The [`audit`] module tells what a correct `read_committed`
//! reader would see, whatever the broker shows its own readers. Brokers that require TLS
//! ([`tls`]) or SASL/SCRAM ([`scram_broker`]) put a front before Tansu, since its own TLS and
//! SCRAM did not work.
mod admin;
pub mod audit;
mod broker_binary;
mod cluster;
#[cfg(feature = "docker")]
mod docker;
mod error;
mod mirror_audit;
mod probe;
pub mod raw_log;
mod record;
pub mod sasl_proxy;
pub mod scram;
pub mod scram_broker;
pub mod tls;

pub use admin::{record_data, unique_suffix};
pub use audit::{audit_records, AuditReport};
pub use broker_binary::TANSU_BIN_ENV;
pub use cluster::{free_loopback_port, Backend, KafkaCluster, Role};
pub use error::{Error, Result};
pub use mirror_audit::{audit_mirror, compare, PartitionAudit};
pub use probe::SKIP_ABORTED_VISIBLE;
pub use record::{RecordData, StoredRecord};
