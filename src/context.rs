//! What every worker of one mirror run shares.
use std::sync::atomic::AtomicBool;

use crate::config::MirrorSettings;
use crate::telemetry::Telemetry;

pub struct MirrorContext {
    pub settings: MirrorSettings,
    /// Set on SIGINT/SIGTERM: finish the open transaction and stop.
    pub stop: AtomicBool,
    pub telemetry: Telemetry,
}
