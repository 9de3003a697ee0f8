//! DescribeConfigs for one topic, with the broker's answer for that topic checked.
//!
//! rust-rdkafka's `describe_configs` drops the error a broker gives for each resource: a topic
//! the principal may not DESCRIBE_CONFIGS (or one that does not exist) comes back as a topic
//! with no configs, and a mirror would then make or keep its copy without the source's configs,
//! saying nothing. librdkafka has the per-resource error; it is read here through its C API.
use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::ffi::{c_string, describe_configs_of, text, topic_resource, AdminRequest};

/// The topic config that says whose timestamps a topic's records carry.
pub(crate) const TIMESTAMP_TYPE: &str = "message.timestamp.type";

/// What a topic's DescribeConfigs answer says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TopicConfigs {
    /// The configs set on the topic itself and writable (neither the brokers' defaults nor
    /// read-only ones): what a copy of the topic carries.
    pub(crate) overrides: BTreeMap<String, String>,
    /// `message.timestamp.type` in effect, wherever it is set (the topic or the brokers'
    /// `log.message.timestamp.type`): whether the topic keeps its writers' timestamps.
    pub(crate) timestamp_type: Option<String>,
}

/// `topic`'s configs ([`TopicConfigs`]). A refused or failed answer is an error with the
/// broker's code (`KafkaError::AdminOp`).
pub(crate) fn topic_configs(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
) -> Result<TopicConfigs, KafkaError> {
    let name = c_string(topic).map_err(KafkaError::AdminOpCreation)?;
    // SAFETY: every pointer passed below is either from librdkafka (and released by a Guard
    // after its last use, the event last: the configs read belong to it) or a CString kept
    // alive until the call returns. librdkafka copies the resources and options it is handed.
    unsafe {
        let request = AdminRequest::new(
            admin.inner().native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
            timeout,
        );
        let event = describe_configs_of(&request, &topic_resource(&name))
            .map_err(|(code, _)| KafkaError::AdminOp(code))?;
        let result = rd::rd_kafka_event_DescribeConfigs_result(event.ptr);
        if result.is_null() {
            return Err(KafkaError::AdminOpCreation("unexpected answer to DescribeConfigs".into()));
        }
        let mut count = 0usize;
        let answered = rd::rd_kafka_DescribeConfigs_result_resources(result, &mut count);
        let mut found = TopicConfigs::default();
        for i in 0..count {
            let r = *answered.add(i);
            let code = rd::rd_kafka_ConfigResource_error(r);
            if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                return Err(KafkaError::AdminOp(RDKafkaErrorCode::from(code)));
            }
            let mut entries = 0usize;
            let configs = rd::rd_kafka_ConfigResource_configs(r, &mut entries);
            for j in 0..entries {
                let entry = *configs.add(j);
                let set_on_topic = rd::rd_kafka_ConfigEntry_source(entry)
                    == rd::rd_kafka_ConfigSource_t::RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG;
                let value = rd::rd_kafka_ConfigEntry_value(entry);
                if value.is_null() {
                    continue;
                }
                let name = text(rd::rd_kafka_ConfigEntry_name(entry));
                if name == TIMESTAMP_TYPE {
                    found.timestamp_type = Some(text(value));
                }
                if set_on_topic && rd::rd_kafka_ConfigEntry_is_read_only(entry) == 0 {
                    found.overrides.insert(name, text(value));
                }
            }
        }
        Ok(found)
    }
}
