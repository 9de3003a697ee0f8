//! What a run shows about itself: telemetry written by the shards, and its readers (Prometheus
//! metrics, the HTTP endpoint, progress bars and lines, the closing summary).
pub mod http;
pub mod metrics;
pub mod progress;
pub mod summary;
pub mod table;
pub mod telemetry;
pub mod terminal;
