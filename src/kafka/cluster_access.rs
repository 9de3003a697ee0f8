//! What a cluster says of its own access control: whether it has an authorizer, and what the
//! principal kmirror logs in as may do on the cluster resource.
//!
//! Both matter before ACLs are read or written: librdkafka 2.12.1 drops the top-level error of a
//! DescribeAcls answer, so a cluster without an authorizer (SECURITY_DISABLED) and a principal
//! without DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED) both read as "no rules", and a
//! copy of the source's rules would then copy nothing and say nothing.
use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;

use crate::kafka::acls::{from_rd_operation, AclOperation};
use crate::kafka::ffi::{broker_resource, c_string, describe_configs_of, text, AdminRequest, Guard};

/// What a broker says of its `authorizer.class.name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Authorizer {
    Set(String),
    /// Empty: the cluster checks no request.
    Unset,
    /// The broker would not show its configs to the principal (no DESCRIBE_CONFIGS on the
    /// cluster), which only a cluster with an authorizer refuses.
    NotShown,
}

/// The first broker's authorizer setting.
pub(crate) fn authorizer_of(
    admin: &AdminClient<DefaultClientContext>,
    timeout: Duration,
) -> Result<Authorizer, String> {
    let metadata = admin.inner().fetch_metadata(None, timeout).map_err(|e| e.to_string())?;
    let broker = metadata.brokers().first().map(|b| b.id()).ok_or("the cluster named no broker")?;
    let name = c_string(&broker.to_string())?;
    // SAFETY: the resource and the answer are librdkafka's, released by guards after their last
    // use (the event last: the entries read belong to it); `name` outlives the constructor call.
    unsafe {
        let request = AdminRequest::new(
            admin.inner().native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
            timeout,
        );
        let event = describe_configs_of(&request, &[&broker_resource(&name)]).map_err(|(_, why)| why)?;
        let result = rd::rd_kafka_event_DescribeConfigs_result(event.ptr);
        if result.is_null() {
            return Err("unexpected answer to DescribeConfigs".into());
        }
        let mut count = 0usize;
        let answered = rd::rd_kafka_DescribeConfigs_result_resources(result, &mut count);
        if count == 0 {
            return Err("no answer for the broker's configs".into());
        }
        let r = *answered;
        if rd::rd_kafka_ConfigResource_error(r) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            // rust-rdkafka's describe_configs drops this error and answers "no configs", which
            // read as "no authorizer" for any principal the broker will not show its configs.
            tracing::debug!(error = %text(rd::rd_kafka_ConfigResource_error_string(r)), "broker configs refused");
            return Ok(Authorizer::NotShown);
        }
        let mut entries = 0usize;
        let configs = rd::rd_kafka_ConfigResource_configs(r, &mut entries);
        for j in 0..entries {
            let entry = *configs.add(j);
            if text(rd::rd_kafka_ConfigEntry_name(entry)) == "authorizer.class.name" {
                let value = rd::rd_kafka_ConfigEntry_value(entry);
                let class = (!value.is_null()).then(|| text(value)).filter(|c| !c.trim().is_empty());
                return Ok(class.map_or(Authorizer::Unset, Authorizer::Set));
            }
        }
        Ok(Authorizer::Unset)
    }
}

/// What the principal may do on the cluster resource (KIP-430's authorized operations, the
/// implied ones counted: ALTER brings DESCRIBE), or None where the broker did not say (one older
/// than DescribeCluster, Kafka 2.8). A cluster without an authorizer names every operation.
pub(crate) fn cluster_operations(
    admin: &AdminClient<DefaultClientContext>,
    timeout: Duration,
) -> Result<Option<BTreeSet<AclOperation>>, String> {
    // SAFETY: the options' error and the answer are librdkafka's, released by guards after their
    // last use; the operations read belong to the answer's event, which outlives the reads.
    unsafe {
        let request = AdminRequest::new(
            admin.inner().native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
            timeout,
        );
        let refused = Guard {
            ptr: rd::rd_kafka_AdminOptions_set_include_authorized_operations(request.options.ptr, 1),
            release: rd::rd_kafka_error_destroy,
        };
        if !refused.ptr.is_null() {
            return Err(text(rd::rd_kafka_error_string(refused.ptr)));
        }
        rd::rd_kafka_DescribeCluster(request.rk, request.options.ptr, request.queue.ptr);
        let event = request.answer("DescribeCluster")?;
        let result = rd::rd_kafka_event_DescribeCluster_result(event.ptr);
        if result.is_null() {
            return Err("unexpected answer to DescribeCluster".into());
        }
        let mut count = 0usize;
        let operations = rd::rd_kafka_DescribeCluster_result_authorized_operations(result, &mut count);
        if operations.is_null() {
            return Ok(None);
        }
        Ok(Some((0..count).filter_map(|i| from_rd_operation(*operations.add(i))).collect()))
    }
}
