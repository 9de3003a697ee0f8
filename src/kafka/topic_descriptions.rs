//! DescribeTopics: whether each named topic exists, its partition count and its topic ID
//! (KIP-516: a deleted and recreated topic keeps its name but gets a new ID, which is how a saved
//! position is told apart from one that now points into another topic), for many topics in one
//! request.
//!
//! rust-rdkafka wraps no DescribeTopics; librdkafka has it (2.3+), and any client handle may
//! send admin requests, so it is called here through the C API on the caller's client.
use std::collections::HashMap;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::ffi::{c_strings, text, AdminRequest, Guard};

/// What the cluster answered about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Described {
    /// The topic, its partitions (none while it is being made), its first partition's replica
    /// count (its replication factor) and its ID (`None` from brokers that give none: an all-zero
    /// ID).
    Exists { partitions: usize, replicas: usize, id: Option<String> },
    /// "Unknown topic": the cluster has no such topic.
    Missing,
    /// Any other error (authorization, a bad name, no leader yet): says nothing of whether the
    /// topic exists.
    Unanswered(RDKafkaErrorCode),
}

/// One DescribeTopics answer: each topic's, or the request's failure with librdkafka's code and
/// message.
pub(crate) type DescribedAnswer = Result<HashMap<String, Described>, (RDKafkaErrorCode, String)>;

/// What the cluster says of each named topic, in one request. A failed request is its
/// librdkafka code (`OperationTimedOut` when no answer came) and message.
pub(crate) fn describe_topics<C: ClientContext>(
    client: &Client<C>,
    topics: &[&str],
    timeout: Duration,
) -> DescribedAnswer {
    if topics.is_empty() {
        return Ok(HashMap::new());
    }
    let names = c_strings(topics).map_err(|why| (RDKafkaErrorCode::InvalidArgument, why))?;
    let mut name_ptrs: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let mut found = HashMap::new();
    // SAFETY: every pointer handed to librdkafka is either its own (released by a Guard after
    // its last use; the result's descriptions belong to the event, which outlives their reads)
    // or a CString kept alive in `names` until the call returns; librdkafka copies the names.
    unsafe {
        let request = AdminRequest::new(
            client.native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            timeout,
        );
        let collection = Guard {
            ptr: rd::rd_kafka_TopicCollection_of_topic_names(name_ptrs.as_mut_ptr(), name_ptrs.len()),
            release: rd::rd_kafka_TopicCollection_destroy,
        };
        rd::rd_kafka_DescribeTopics(request.rk, collection.ptr, request.options.ptr, request.queue.ptr);
        let event = request.answer_coded("DescribeTopics")?;
        let result = rd::rd_kafka_event_DescribeTopics_result(event.ptr);
        if result.is_null() {
            return Err((RDKafkaErrorCode::Fail, "unexpected answer to DescribeTopics".into()));
        }
        let mut count = 0usize;
        let described = rd::rd_kafka_DescribeTopics_result_topics(result, &mut count);
        for i in 0..count {
            let topic = *described.add(i);
            let error = rd::rd_kafka_TopicDescription_error(topic);
            let code = if error.is_null() {
                rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            } else {
                rd::rd_kafka_error_code(error)
            };
            let name = text(rd::rd_kafka_TopicDescription_name(topic));
            let answer = match says_of(code) {
                Said::Missing => Described::Missing,
                Said::Nothing => Described::Unanswered(code.into()),
                Said::Exists => {
                    let mut partitions = 0usize;
                    let listed = rd::rd_kafka_TopicDescription_partitions(topic, &mut partitions);
                    let mut replicas = 0usize;
                    if partitions > 0 && !listed.is_null() {
                        rd::rd_kafka_TopicPartitionInfo_replicas(*listed, &mut replicas);
                    }
                    let id = rd::rd_kafka_TopicDescription_topic_id(topic);
                    let id = (!id.is_null()
                        && (rd::rd_kafka_Uuid_most_significant_bits(id) != 0
                            || rd::rd_kafka_Uuid_least_significant_bits(id) != 0))
                        .then(|| text(rd::rd_kafka_Uuid_base64str(id)));
                    Described::Exists { partitions, replicas, id }
                }
            };
            found.insert(name, answer);
        }
    }
    Ok(found)
}

/// The ID of each named topic the cluster knows, as Kafka prints it (base64). Topics the cluster
/// does not know, and brokers that give no IDs (an all-zero ID), are left out.
pub(crate) fn topic_ids<C: ClientContext>(
    client: &Client<C>,
    topics: &[&str],
    timeout: Duration,
) -> Result<HashMap<String, String>, String> {
    let described = describe_topic_ids(client, topics, timeout)?;
    Ok(described.into_iter().filter_map(|(topic, id)| Some((topic, id?))).collect())
}

/// What the cluster says of each named topic: `Some(id)`, or `None` where it answers that it
/// has no such topic. A topic it gave another error for (authorization, a bad name) or no ID
/// for is left out: the answer says nothing about it, least of all that it is gone.
pub(crate) fn describe_topic_ids<C: ClientContext>(
    client: &Client<C>,
    topics: &[&str],
    timeout: Duration,
) -> Result<HashMap<String, Option<String>>, String> {
    let described = describe_topics(client, topics, timeout).map_err(|(_, why)| why)?;
    Ok(described
        .into_iter()
        .filter_map(|(topic, answer)| match answer {
            Described::Exists { id: Some(id), .. } => Some((topic, Some(id))),
            Described::Missing => Some((topic, None)),
            Described::Exists { id: None, .. } | Described::Unanswered(_) => None,
        })
        .collect())
}

#[derive(Debug, PartialEq, Eq)]
enum Said {
    Exists,
    Missing,
    Nothing,
}

/// Only "unknown topic" means the cluster has none; any other error leaves it open.
fn says_of(code: rd::rd_kafka_resp_err_t) -> Said {
    match code {
        rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => Said::Exists,
        rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART => Said::Missing,
        _ => Said::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rd::rd_kafka_resp_err_t as E;

    #[test]
    fn only_an_unknown_topic_answer_says_the_topic_is_gone() {
        assert_eq!(says_of(E::RD_KAFKA_RESP_ERR_NO_ERROR), Said::Exists);
        assert_eq!(says_of(E::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), Said::Missing);
        for code in [
            E::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            E::RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,
            E::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            E::RD_KAFKA_RESP_ERR__TIMED_OUT,
        ] {
            assert_eq!(says_of(code), Said::Nothing, "{code:?}");
        }
    }
}
