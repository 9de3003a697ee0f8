//! The exactly-once data path: [`plan`] (topics, partitions, shards) -> [`target_topics`]
//! (create and sync target topics) -> [`hosts`] / [`worker`] / [`shard`] (read, produce in
//! transactions, commit source positions to the shadow group) -> [`run`] (the run as a whole).
pub(crate) mod acl_sync;
pub(crate) mod context;
pub(crate) mod copied_configs;
pub(crate) mod decision;
pub(crate) mod delivery;
pub(crate) mod early_start;
pub(crate) mod failed_topics;
pub(crate) mod failover_guard;
pub(crate) mod failover_recheck;
pub(crate) mod flush;
pub(crate) mod hosts;
pub(crate) mod map_positions;
pub(crate) mod map_writer;
pub(crate) mod owners;
pub(crate) mod plan;
pub(crate) mod position_check;
pub(crate) mod positions;
pub(crate) mod read_guard;
pub(crate) mod refused_record;
pub(crate) mod run;
pub(crate) mod shadow;
pub(crate) mod shard;
pub(crate) mod stall_watch;
pub(crate) mod take_back;
pub(crate) mod target_topics;
pub(crate) mod topic_id_watch;
pub(crate) mod transaction;
pub(crate) mod worker;
