//! DescribeConfigs for many topics in one request, with the broker's answer for each topic
//! checked.
//!
//! rust-rdkafka's `describe_configs` drops the error a broker gives for each resource: a topic
//! the principal may not DESCRIBE_CONFIGS (or one that does not exist) comes back as a topic
//! with no configs, and a mirror would then make or keep its copy without the source's configs,
//! saying nothing. librdkafka has the per-resource error; it is read here through its C API.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::ffi::{c_strings, describe_configs_of, text, topic_resource, AdminRequest};

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

/// One DescribeConfigs answer for many topics: each topic's configs or the broker's error for
/// it, or the request's own failure.
pub(crate) type ConfigsAnswer = Result<HashMap<String, Result<TopicConfigs, KafkaError>>, KafkaError>;

/// Each named topic's configs ([`TopicConfigs`]), asked in one request. A topic the broker
/// refused or failed to describe is an error with the broker's code (`KafkaError::AdminOp`) in
/// its own entry; a request that failed as a whole is the outer error.
pub(crate) fn topics_configs(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[&str],
    timeout: Duration,
) -> ConfigsAnswer {
    if topics.is_empty() {
        return Ok(HashMap::new());
    }
    let names = c_strings(topics).map_err(KafkaError::AdminOpCreation)?;
    let mut found = HashMap::with_capacity(topics.len());
    // SAFETY: every pointer passed below is either from librdkafka (and released by a Guard
    // after its last use, the event last: the configs read belong to it) or a CString kept
    // alive until the call returns. librdkafka copies the resources and options it is handed.
    unsafe {
        let request = AdminRequest::new(
            admin.inner().native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
            timeout,
        );
        let resources: Vec<_> = names.iter().map(|n| topic_resource(n)).collect();
        let asked: Vec<_> = resources.iter().collect();
        let event = describe_configs_of(&request, &asked).map_err(|(code, _)| KafkaError::AdminOp(code))?;
        let result = rd::rd_kafka_event_DescribeConfigs_result(event.ptr);
        if result.is_null() {
            return Err(KafkaError::AdminOpCreation("unexpected answer to DescribeConfigs".into()));
        }
        let mut count = 0usize;
        let answered = rd::rd_kafka_DescribeConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let r = *answered.add(i);
            let topic = text(rd::rd_kafka_ConfigResource_name(r));
            let code = rd::rd_kafka_ConfigResource_error(r);
            if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                found.insert(topic, Err(KafkaError::AdminOp(RDKafkaErrorCode::from(code))));
                continue;
            }
            let mut configs = TopicConfigs::default();
            let mut entries = 0usize;
            let listed = rd::rd_kafka_ConfigResource_configs(r, &mut entries);
            for j in 0..entries {
                let entry = *listed.add(j);
                let set_on_topic = rd::rd_kafka_ConfigEntry_source(entry)
                    == rd::rd_kafka_ConfigSource_t::RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG;
                let value = rd::rd_kafka_ConfigEntry_value(entry);
                if value.is_null() {
                    continue;
                }
                let name = text(rd::rd_kafka_ConfigEntry_name(entry));
                if name == TIMESTAMP_TYPE {
                    configs.timestamp_type = Some(text(value));
                }
                if set_on_topic && rd::rd_kafka_ConfigEntry_is_read_only(entry) == 0 {
                    configs.overrides.insert(name, text(value));
                }
            }
            found.insert(topic, Ok(configs));
        }
    }
    Ok(found)
}
