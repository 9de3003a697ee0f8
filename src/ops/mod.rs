//! What a run shows about itself: telemetry written by the shards, and its readers (Prometheus
//! metrics, the HTTP endpoint, progress bars and lines, the closing summary).
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod progress;
pub(crate) mod summary;
pub(crate) mod table;
pub(crate) mod telemetry;
pub(crate) mod terminal;
