//! kmirror: mirror Kafka topics between clusters exactly once, with exact offset translation.
//!
//! Layers, each importing only the ones below it:
//! - [`cmd`]: the subcommands, their flags and output (the only place with clap and anyhow);
//! - `mirror`: the exactly-once data path (plan, shard hosts, shard read loop, transactions,
//!   delivery, the offset-map writer, target topics);
//! - `translate`: the offset map read back (map sync, translator, checkpoints, group sync);
//! - `ops`: what a run shows about itself (telemetry, metrics, progress, HTTP, summary);
//! - `config`: settings, client properties, secrets, topic selection and naming;
//! - `kafka`: client set-up, error classification, ends, readers and admin calls over rdkafka.
//!
//! What the crate exports is deliberate and small: [`cmd`] (the command line the binary runs) and
//! [`error`] (its exit codes). Everything else is `pub(crate)`, and the `unreachable_pub` lint
//! keeps it so.
pub mod cmd;
pub(crate) mod config;
pub mod error;
pub(crate) mod kafka;
pub(crate) mod mirror;
pub(crate) mod ops;
pub(crate) mod state_dir;
pub(crate) mod transform;
pub(crate) mod translate;

pub use error::{Error, Result};
