//! IncrementalAlterConfigs for one topic.
//!
//! rust-rdkafka only wraps the legacy AlterConfigs, which replaces a topic's whole set of
//! overrides (so a config kmirror does not name would be wiped) and which newer brokers and
//! managed services refuse. IncrementalAlterConfigs (Kafka 2.3+) changes only the named keys;
//! librdkafka has it, so it is called here through its C API, with every allocation released
//! by a guard.
use std::ffi::CString;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::ffi::{c_string, text, topic_resource, AdminRequest};

/// Why configs could not be set: the broker's code where it gave one, and its words.
#[derive(Debug)]
pub(crate) struct NotSet {
    pub(crate) code: Option<RDKafkaErrorCode>,
    pub(crate) message: String,
}

impl From<String> for NotSet {
    fn from(message: String) -> Self {
        Self { code: None, message }
    }
}

/// Sets `configs` on `topic`, leaving its other overrides alone.
pub(crate) fn set_topic_configs(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    configs: &[(String, String)],
    timeout: Duration,
) -> Result<(), NotSet> {
    let name = c_string(topic)?;
    let entries: Vec<(CString, CString)> =
        configs.iter().map(|(k, v)| Ok((c_string(k)?, c_string(v)?))).collect::<Result<_, String>>()?;
    // SAFETY: every pointer passed below is either from librdkafka (and released by a Guard
    // after its last use) or a CString kept alive until the call returns. librdkafka copies
    // the resources and options it is handed.
    unsafe {
        let request = AdminRequest::new(
            admin.inner().native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
            timeout,
        );
        let resource = topic_resource(&name);
        for (key, value) in &entries {
            let error = rd::rd_kafka_ConfigResource_add_incremental_config(
                resource.ptr,
                key.as_ptr(),
                rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                value.as_ptr(),
            );
            if !error.is_null() {
                let message = text(rd::rd_kafka_error_string(error));
                rd::rd_kafka_error_destroy(error);
                return Err(message.into());
            }
        }
        let mut resources = [resource.ptr];
        rd::rd_kafka_IncrementalAlterConfigs(
            request.rk,
            resources.as_mut_ptr(),
            1,
            request.options.ptr,
            request.queue.ptr,
        );
        let event = request
            .answer_coded("IncrementalAlterConfigs")
            .map_err(|(code, message)| NotSet { code: Some(code), message })?;
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.ptr);
        if result.is_null() {
            return Err("unexpected answer to IncrementalAlterConfigs".to_string().into());
        }
        let mut count = 0usize;
        let answered = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let r = *answered.add(i);
            let code = rd::rd_kafka_ConfigResource_error(r);
            if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                let message = text(rd::rd_kafka_ConfigResource_error_string(r));
                return Err(NotSet { code: Some(code.into()), message });
            }
        }
        Ok(())
    }
}
