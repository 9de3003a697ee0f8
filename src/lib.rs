//! kmirror: mirror Kafka topics between clusters exactly once, with exact offset translation.
//!
//! The pipeline, one concern per module: [`config`] (flags, TOML, properties) -> [`plan`]
//! (topics, partitions, shards) -> [`target_topics`] (create and sync target topics) ->
//! [`worker`] / [`shard`] (read, produce in transactions, commit source positions to the
//! shadow group) -> [`mirror`] (the run as a whole).
pub mod app;
pub mod cli;
pub mod config;
pub mod context;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod incremental_alter;
pub mod mirror;
pub mod plan;
pub mod shadow;
pub mod shard;
pub mod state_dir;
pub mod target_topics;
pub mod topics;
pub mod watermarks;
pub mod worker;

pub use error::{Error, Result};
