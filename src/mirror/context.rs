//! What every worker of one mirror run shares.
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::MirrorSettings;
use crate::ops::telemetry::Telemetry;

pub struct MirrorContext {
    pub settings: MirrorSettings,
    /// Set on SIGINT/SIGTERM: finish the open transaction and stop.
    pub stop: AtomicBool,
    /// Shared with the HTTP endpoint, which outlives no run but lives on its own thread.
    pub telemetry: Arc<Telemetry>,
}
