//! What every worker of one mirror run shares.
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::MirrorSettings;
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
}
