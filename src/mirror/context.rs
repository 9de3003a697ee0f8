//! What every worker of one mirror run shares.
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::MirrorSettings;
use crate::mirror::failover_recheck::FailoverRecheck;
use crate::mirror::topic_id_watch::TopicIdWatch;
use crate::ops::telemetry::Telemetry;

pub(crate) struct MirrorContext {
    pub(crate) settings: MirrorSettings,
    /// Set on SIGINT/SIGTERM: finish the open transaction and stop.
    pub(crate) stop: AtomicBool,
    /// Shared with the HTTP endpoint, which outlives no run but lives on its own thread.
    pub(crate) telemetry: Arc<Telemetry>,
    /// Both clusters' IDs of the mirrored topics, asked for on a thread of its own.
    pub(crate) topic_ids: TopicIdWatch,
    /// This run made the map topic (it did not exist): until a shard writes to its partition,
    /// that partition is empty, and the shards started with the run need not ask.
    pub(crate) map_made_now: AtomicBool,
    /// The claims read again once shards have fenced: a failover since the start's read.
    pub(crate) failover_recheck: Arc<FailoverRecheck>,
}
