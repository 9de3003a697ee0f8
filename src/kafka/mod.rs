//! kmirror's adapters over rdkafka: connecting and naming why a connection failed, where a
//! partition ends, reading kmirror's own topics, consumer groups, topic configs, and the filter
//! that brings librdkafka's log into tracing.
pub mod connect;
pub mod errors;
mod ffi;
pub mod groups;
pub mod incremental_alter;
pub mod log_filter;
pub mod topic_ids;
pub mod topic_reader;
pub mod watermarks;
