//! kmirror: mirror Kafka topics between clusters exactly once, with exact offset translation.
//!
//! The pipeline, one concern per module: [`config`] (flags, TOML, properties) -> [`plan`]
//! (topics, partitions, shards) -> [`target_topics`] (create and sync target topics) ->
//! [`worker`] / [`shard`] (read, produce in transactions, commit source positions to the
//! shadow group) -> [`mirror`] (the run as a whole).
pub mod app;
pub mod checkpoint;
pub mod cli;
pub mod client_errors;
pub mod cluster;
pub mod config;
pub mod context;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod flush;
pub mod group_sync;
pub mod groups;
pub mod http_endpoint;
pub mod incremental_alter;
pub mod log_filter;
pub mod map_sync;
pub mod metrics;
pub mod mirror;
pub mod offset_map;
pub mod owners;
pub mod plan;
pub mod positions;
pub mod print_config;
pub mod progress;
pub mod read_guard;
pub mod rename;
pub mod report;
pub mod shadow;
pub mod shard;
pub mod shard_hosts;
pub mod stall_watch;
pub mod state_dir;
pub mod status_cmd;
pub mod summary;
pub mod table;
pub mod target_topics;
pub mod telemetry;
pub mod terminal;
pub mod topic_reader;
pub mod topics;
pub mod transaction;
pub mod transform;
pub mod translate_cmd;
pub mod translator;
pub mod verify_cmd;
pub mod watermarks;
pub mod worker;

pub use error::{Error, Result};
