//! kmirror's adapters over rdkafka: creating clients with the settings of their kind,
//! connecting and naming why a connection failed, where a partition ends, reading kmirror's own
//! topics, consumer groups, topic configs, and the filter that brings librdkafka's log into
//! tracing. The only unsafe code of the crate is here: calls into librdkafka's C API for what
//! rust-rdkafka does not wrap (DescribeTopics, ListConsumerGroupOffsets,
//! AlterConsumerGroupOffsets, DescribeConsumerGroups, IncrementalAlterConfigs, DescribeAcls and
//! CreateAcls, DescribeCluster's authorized operations, cached watermarks, librdkafka's table of
//! settings, a flush that waits) or wraps without its errors (a topic's or a broker's
//! DescribeConfigs answer).
#[allow(unsafe_code)]
pub(crate) mod acls;
pub(crate) mod classify;
pub(crate) mod client;
#[allow(unsafe_code)]
pub(crate) mod cluster_access;
pub(crate) mod commit_parts;
/// Whole partitions read record by record (`verify`).
pub(crate) mod committed_records;
pub(crate) mod connect;
pub(crate) mod consumer_close;
pub(crate) mod errors;
#[allow(unsafe_code)]
mod ffi;
#[allow(unsafe_code)]
pub(crate) mod group_commit;
#[allow(unsafe_code)]
pub(crate) mod group_members;
#[allow(unsafe_code)]
pub(crate) mod group_offsets;
pub(crate) mod groups;
#[allow(unsafe_code)]
pub(crate) mod incremental_alter;
#[allow(unsafe_code)]
pub(crate) mod linger_skip;
pub(crate) mod log_filter;
pub(crate) mod record_size;
#[allow(unsafe_code)]
pub(crate) mod topic_configs;
#[allow(unsafe_code)]
pub(crate) mod topic_descriptions;
pub(crate) mod topic_reader;
#[allow(unsafe_code)]
pub(crate) mod watermarks;
