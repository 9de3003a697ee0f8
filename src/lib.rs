//! kmirror: mirror Kafka topics between clusters exactly once, with exact offset translation.
//!
//! Layers, each importing only the ones below it:
//! - [`cmd`]: the subcommands, their flags and output (the only place with clap and anyhow);
//! - [`mirror`]: the exactly-once data path (plan, shard hosts, shard read loop, transactions,
//!   delivery, the offset-map writer, target topics);
//! - [`translate`]: the offset map read back (map sync, translator, checkpoints, group sync);
//! - [`ops`]: what a run shows about itself (telemetry, metrics, progress, HTTP, summary);
//! - [`config`]: settings, client properties, secrets, topic selection and naming;
//! - [`kafka`]: client set-up, error classification, ends, readers and admin calls over rdkafka.
pub mod cmd;
pub mod config;
pub mod error;
pub mod kafka;
pub mod mirror;
pub mod ops;
pub mod state_dir;
pub mod transform;
pub mod translate;

pub use error::{Error, Result};
