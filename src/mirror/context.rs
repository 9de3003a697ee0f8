//! What every worker of one mirror run shares.
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use kmirror_state::TopicPartition;

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
    /// A batch's ends: where the source's committed records ended, as the run's start read
    /// them, with the topic's ID then (see [`BatchEnds`]).
    pub(crate) batch_ends: OnceLock<BatchEnds>,
}

/// Source partition -> its committed end at the run's start and its topic's ID then (None:
/// the source gave none).
pub(crate) type BatchEnds = HashMap<TopicPartition, (i64, Option<String>)>;
