//! Kafka's topic IDs (KIP-516): a deleted and recreated topic keeps its name but gets a new ID,
//! which is how a saved position is told apart from one that now points into another topic.
//!
//! rust-rdkafka wraps no DescribeTopics; librdkafka has it (2.3+), and any client handle may
//! send admin requests, so it is called here through the C API on the caller's client.
use std::collections::HashMap;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

use crate::kafka::ffi::{c_string, text, AdminRequest, Guard};

/// The ID of each named topic the cluster knows, as Kafka prints it (base64). Topics the cluster
/// does not know, and brokers that give no IDs (an all-zero ID), are left out.
pub(crate) fn topic_ids<C: ClientContext>(
    client: &Client<C>,
    topics: &[&str],
    timeout: Duration,
) -> Result<HashMap<String, String>, String> {
    if topics.is_empty() {
        return Ok(HashMap::new());
    }
    let names = topics.iter().map(|t| c_string(t)).collect::<Result<Vec<_>, String>>()?;
    let mut name_ptrs: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let mut ids = HashMap::new();
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
        let event = request.answer("DescribeTopics")?;
        let result = rd::rd_kafka_event_DescribeTopics_result(event.ptr);
        if result.is_null() {
            return Err("unexpected answer to DescribeTopics".into());
        }
        let mut count = 0usize;
        let described = rd::rd_kafka_DescribeTopics_result_topics(result, &mut count);
        for i in 0..count {
            let topic = *described.add(i);
            let error = rd::rd_kafka_TopicDescription_error(topic);
            if !error.is_null()
                && rd::rd_kafka_error_code(error) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                continue;
            }
            let id = rd::rd_kafka_TopicDescription_topic_id(topic);
            if id.is_null()
                || (rd::rd_kafka_Uuid_most_significant_bits(id) == 0
                    && rd::rd_kafka_Uuid_least_significant_bits(id) == 0)
            {
                continue;
            }
            ids.insert(
                text(rd::rd_kafka_TopicDescription_name(topic)),
                text(rd::rd_kafka_Uuid_base64str(id)),
            );
        }
    }
    Ok(ids)
}
