//! How many members a consumer group has, whichever group protocol they joined with.
//!
//! rust-rdkafka's group list asks the classic DescribeGroups, which does not describe a group of
//! Kafka 4's consumer protocol (KIP-848, `group.protocol=consumer`): such a group, however busy,
//! read as having no members. librdkafka's DescribeConsumerGroups asks ConsumerGroupDescribe
//! first and the classic API where the group is not of the new kind; rust-rdkafka does not wrap
//! it, so it is called here through librdkafka's C API.
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::ffi::{c_string, AdminRequest};

/// The members of `group` (0 for a group that does not exist, or is empty), or the error the
/// cluster answered with (a refusal carries its code: `KafkaError::AdminOp`).
pub(crate) fn member_count<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    timeout: Duration,
) -> Result<usize, KafkaError> {
    let name = c_string(group).map_err(KafkaError::AdminOpCreation)?;
    // SAFETY: the request's options, queue and answer are librdkafka's, released by guards after
    // their last use (the event last: the descriptions read belong to it); `name` outlives the
    // call, which copies the group ids it is handed.
    unsafe {
        let request = AdminRequest::new(
            client.native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
            timeout,
        );
        let mut groups = [name.as_ptr()];
        rd::rd_kafka_DescribeConsumerGroups(
            request.rk,
            groups.as_mut_ptr(),
            1,
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
        let mut members = 0usize;
        for i in 0..count {
            let description = *described.add(i);
            let error = rd::rd_kafka_ConsumerGroupDescription_error(description);
            if !error.is_null() {
                let code = RDKafkaErrorCode::from(rd::rd_kafka_error_code(error));
                // A group id nobody has used: nobody is in it.
                if code == RDKafkaErrorCode::GroupIdNotFound {
                    continue;
                }
                return Err(KafkaError::AdminOp(code));
            }
            members += rd::rd_kafka_ConsumerGroupDescription_member_count(description);
        }
        Ok(members)
    }
}
