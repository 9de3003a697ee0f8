//! Real Kafka-API clusters for kmirror's tests, benchmarks and demo.
//!
//! [`KafkaCluster::shared`] gives the test process's long-lived cluster for a role, and
//! [`KafkaCluster::start`] one of the test's own (to kill, freeze or reconfigure): external
//! clusters named in the environment if set, else local brokers on free loopback ports, Apache
//! Kafka by default ([`apache_kafka`]), Tansu when `KMIRROR_TEST_BROKER=tansu`. Broker processes
//! die with the test process. The [`audit`] module tells what a correct `read_committed` reader
//! would see, whatever the broker shows its own readers. TLS ([`tls`]) and SASL/SCRAM
//! ([`scram_broker`]) listeners are the broker's own on Apache Kafka; Tansu gets a front.
mod acl_admin;
mod admin;
pub mod apache_kafka;
pub mod audit;
mod broker_binary;
mod cluster;
mod error;
pub mod java_tools;
mod mirror_audit;
mod ports;
mod probe;
pub mod raw_log;
mod raw_request;
mod record;
pub mod sasl_proxy;
pub mod scram;
pub mod scram_broker;
mod shared;
mod slow_link;
mod spawner;
pub mod tls;

pub use acl_admin::{AclOn, AclOp, AclRule};
pub use admin::{record_data, unique_suffix};
pub use apache_kafka::{KafkaSpec, KAFKA_VERSION, OLDER_KAFKA_VERSION};
pub use audit::{audit_records, AuditReport};
pub use broker_binary::TANSU_BIN_ENV;
pub use cluster::{free_loopback_port, Backend, KafkaCluster, Role, BROKER_ENV};
pub use error::{Error, Result};
pub use mirror_audit::{audit_mirror, compare, PartitionAudit};
pub use probe::SKIP_ABORTED_VISIBLE;
pub use record::{RecordData, StoredRecord};
pub use shared::{SHARED_SOURCE_ENV, SHARED_TARGET_ENV};
pub use slow_link::SlowLink;
