//! How many members a consumer group has, whichever group protocol they joined with.
//!
//! rust-rdkafka's group list asks the classic DescribeGroups, which does not describe a group of
//! Kafka 4's consumer protocol (KIP-848, `group.protocol=consumer`): such a group, however busy,
//! read as having no members. librdkafka's DescribeConsumerGroups asks ConsumerGroupDescribe
//! first and the classic API where the group is not of the new kind; rust-rdkafka does not wrap
//! it, so it is called here through librdkafka's C API.
use std::collections::HashMap;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::ffi::{c_strings, text, AdminRequest};

/// The members of each of `groups` (0 for a group that does not exist, or is empty), or the
/// error the cluster answered with (a refusal carries its code: `KafkaError::AdminOp`), in the
/// order given, all asked in one call on `client` (librdkafka sends a describe per group, side
/// by side, where a client per group took a connection and a coordinator lookup each). The outer
/// error is the call's own.
pub(crate) fn member_counts<C: ClientContext>(
    client: &Client<C>,
    groups: &[&str],
    timeout: Duration,
) -> Result<Vec<Result<usize, KafkaError>>, KafkaError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let names = c_strings(groups).map_err(KafkaError::AdminOpCreation)?;
    // SAFETY: the request's options, queue and answer are librdkafka's, released by guards after
    // their last use (the event last: the descriptions read belong to it); `names` outlive the
    // call, which copies the group ids it is handed.
    unsafe {
        let request = AdminRequest::new(
            client.native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
            timeout,
        );
        let mut ids: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
        rd::rd_kafka_DescribeConsumerGroups(
            request.rk,
            ids.as_mut_ptr(),
            ids.len(),
            request.options.ptr,
            request.queue.ptr,
        );
        let event =
            request.answer_coded("DescribeConsumerGroups").map_err(|(code, _)| KafkaError::AdminOp(code))?;
        let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.ptr);
        if result.is_null() {
            return Err(KafkaError::AdminOpCreation("unexpected answer to DescribeConsumerGroups".into()));
        }
        let mut count = 0usize;
        let described = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
        let mut answers: HashMap<String, Result<usize, KafkaError>> = HashMap::with_capacity(count);
        for i in 0..count {
            let description = *described.add(i);
            let group = text(rd::rd_kafka_ConsumerGroupDescription_group_id(description));
            let error = rd::rd_kafka_ConsumerGroupDescription_error(description);
            let answer = if error.is_null() {
                Ok(rd::rd_kafka_ConsumerGroupDescription_member_count(description))
            } else {
                match RDKafkaErrorCode::from(rd::rd_kafka_error_code(error)) {
                    // A group id nobody has used: nobody is in it.
                    RDKafkaErrorCode::GroupIdNotFound => Ok(0),
                    code => Err(KafkaError::AdminOp(code)),
                }
            };
            answers.insert(group, answer);
        }
        Ok(groups
            .iter()
            .map(|g| {
                answers.remove(*g).unwrap_or_else(|| {
                    Err(KafkaError::AdminOpCreation(format!("no description of group {g} in the answer")))
                })
            })
            .collect())
    }
}
