//! The exactly-once data path: [`plan`] (topics, partitions, shards) -> [`target_topics`]
//! (create and sync target topics) -> [`hosts`] / [`worker`] / [`shard`] (read, produce in
//! transactions, commit source positions to the shadow group) -> [`run`] (the run as a whole).
pub mod context;
pub mod delivery;
pub mod flush;
pub mod hosts;
pub mod map_positions;
pub mod map_writer;
pub mod owners;
pub mod plan;
pub mod position_check;
pub mod positions;
pub mod read_guard;
pub mod run;
pub mod shadow;
pub mod shard;
pub mod stall_watch;
pub mod target_topics;
pub mod transaction;
pub mod worker;
