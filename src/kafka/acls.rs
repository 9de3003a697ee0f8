//! DescribeAcls and CreateAcls, which rust-rdkafka does not wrap: librdkafka has them, so they
//! are called here through its C API, with every allocation released by a guard.
use std::ffi::CString;
use std::fmt;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;

use crate::kafka::ffi::{c_string, text, AdminRequest, Guard};

/// What an ACL is about; only the kinds kmirror copies are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum AclResource {
    Topic,
    Group,
    /// The cluster, transactional ids: never copied.
    Other,
}

/// How the resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum AclPattern {
    Literal,
    Prefixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum AclPermission {
    Allow,
    Deny,
}

/// One access rule: `principal` from `host` is allowed or denied `operation` on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Acl {
    pub(crate) resource: AclResource,
    pub(crate) name: String,
    pub(crate) pattern: AclPattern,
    pub(crate) principal: String,
    pub(crate) host: String,
    pub(crate) operation: AclOperation,
    pub(crate) permission: AclPermission,
}

impl fmt::Display for Acl {
    /// As Kafka's `kafka-acls --list` says it: `ALLOW READ on topic orders for User:alice from *`
    /// (a prefixed name ends in `*`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let permission = match self.permission {
            AclPermission::Allow => "ALLOW",
            AclPermission::Deny => "DENY",
        };
        let resource = match self.resource {
            AclResource::Topic => "topic",
            AclResource::Group => "group",
            AclResource::Other => "resource",
        };
        let prefixed = if self.pattern == AclPattern::Prefixed { "*" } else { "" };
        write!(
            f,
            "{permission} {} on {resource} {}{prefixed} for {} from {}",
            operation_name(self.operation),
            self.name,
            self.principal,
            self.host
        )
    }
}

pub(crate) fn operation_name(operation: AclOperation) -> &'static str {
    match operation {
        AclOperation::All => "ALL",
        AclOperation::Read => "READ",
        AclOperation::Write => "WRITE",
        AclOperation::Create => "CREATE",
        AclOperation::Delete => "DELETE",
        AclOperation::Alter => "ALTER",
        AclOperation::Describe => "DESCRIBE",
        AclOperation::ClusterAction => "CLUSTER_ACTION",
        AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
        AclOperation::AlterConfigs => "ALTER_CONFIGS",
        AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
    }
}

const OPERATIONS: [(AclOperation, rd::rd_kafka_AclOperation_t); 11] = {
    use rd::rd_kafka_AclOperation_t as O;
    [
        (AclOperation::All, O::RD_KAFKA_ACL_OPERATION_ALL),
        (AclOperation::Read, O::RD_KAFKA_ACL_OPERATION_READ),
        (AclOperation::Write, O::RD_KAFKA_ACL_OPERATION_WRITE),
        (AclOperation::Create, O::RD_KAFKA_ACL_OPERATION_CREATE),
        (AclOperation::Delete, O::RD_KAFKA_ACL_OPERATION_DELETE),
        (AclOperation::Alter, O::RD_KAFKA_ACL_OPERATION_ALTER),
        (AclOperation::Describe, O::RD_KAFKA_ACL_OPERATION_DESCRIBE),
        (AclOperation::ClusterAction, O::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION),
        (AclOperation::DescribeConfigs, O::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS),
        (AclOperation::AlterConfigs, O::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS),
        (AclOperation::IdempotentWrite, O::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE),
    ]
};

fn to_rd_operation(operation: AclOperation) -> rd::rd_kafka_AclOperation_t {
    OPERATIONS
        .iter()
        .find(|(o, _)| *o == operation)
        .map(|(_, r)| *r)
        .unwrap_or(rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_UNKNOWN)
}

pub(crate) fn from_rd_operation(operation: rd::rd_kafka_AclOperation_t) -> Option<AclOperation> {
    OPERATIONS.iter().find(|(_, r)| *r == operation).map(|(o, _)| *o)
}

/// Every ACL the cluster holds on topics and groups, literal or prefixed.
pub(crate) fn describe_acls(
    admin: &AdminClient<DefaultClientContext>,
    timeout: Duration,
) -> Result<Vec<Acl>, String> {
    // SAFETY: the filter and the answer are librdkafka's objects, released by guards after
    // their last use; the bindings read out of the answer live as long as the answer's event.
    unsafe {
        let request = AdminRequest::new(
            admin.inner().native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
            timeout,
        );
        let mut errbuf = [0 as std::ffi::c_char; 256];
        let filter = Guard {
            ptr: rd::rd_kafka_AclBindingFilter_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_ANY,
                std::ptr::null(),
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY,
                std::ptr::null(),
                std::ptr::null(),
                rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY,
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                errbuf.as_mut_ptr(),
                errbuf.len(),
            ),
            release: rd::rd_kafka_AclBinding_destroy,
        };
        if filter.ptr.is_null() {
            return Err(text(errbuf.as_ptr()));
        }
        rd::rd_kafka_DescribeAcls(request.rk, filter.ptr, request.options.ptr, request.queue.ptr);
        let event = request.answer("DescribeAcls")?;
        let result = rd::rd_kafka_event_DescribeAcls_result(event.ptr);
        if result.is_null() {
            return Err("unexpected answer to DescribeAcls".into());
        }
        let mut count = 0usize;
        let bindings = rd::rd_kafka_DescribeAcls_result_acls(result, &mut count);
        let mut acls = Vec::with_capacity(count);
        for i in 0..count {
            let b = *bindings.add(i);
            let resource = match rd::rd_kafka_AclBinding_restype(b) {
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC => AclResource::Topic,
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_GROUP => AclResource::Group,
                _ => AclResource::Other,
            };
            let pattern = match rd::rd_kafka_AclBinding_resource_pattern_type(b) {
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL => AclPattern::Literal,
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED => {
                    AclPattern::Prefixed
                }
                _ => continue,
            };
            let permission = match rd::rd_kafka_AclBinding_permission_type(b) {
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW => AclPermission::Allow,
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY => AclPermission::Deny,
                _ => continue,
            };
            let Some(operation) = from_rd_operation(rd::rd_kafka_AclBinding_operation(b)) else { continue };
            acls.push(Acl {
                resource,
                name: text(rd::rd_kafka_AclBinding_name(b)),
                pattern,
                principal: text(rd::rd_kafka_AclBinding_principal(b)),
                host: text(rd::rd_kafka_AclBinding_host(b)),
                operation,
                permission,
            });
        }
        Ok(acls)
    }
}

/// Creates `acls` (a rule the cluster holds already is left as it is).
pub(crate) fn create_acls(
    admin: &AdminClient<DefaultClientContext>,
    acls: &[Acl],
    timeout: Duration,
) -> Result<(), String> {
    if acls.is_empty() {
        return Ok(());
    }
    let strings: Vec<[CString; 3]> = acls
        .iter()
        .map(|a| Ok([c_string(&a.name)?, c_string(&a.principal)?, c_string(&a.host)?]))
        .collect::<Result<_, String>>()?;
    // SAFETY: each binding is librdkafka's, released by its guard after the call returns
    // (librdkafka copies what it is handed); the C strings outlive the constructor calls.
    unsafe {
        let request = AdminRequest::new(
            admin.inner().native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
            timeout,
        );
        let mut bindings = Vec::with_capacity(acls.len());
        for (acl, [name, principal, host]) in acls.iter().zip(&strings) {
            let mut errbuf = [0 as std::ffi::c_char; 256];
            let binding = Guard {
                ptr: rd::rd_kafka_AclBinding_new(
                    match acl.resource {
                        AclResource::Topic => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                        AclResource::Group => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_GROUP,
                        AclResource::Other => return Err(format!("not a topic or group ACL: {acl}")),
                    },
                    name.as_ptr(),
                    match acl.pattern {
                        AclPattern::Literal => {
                            rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL
                        }
                        AclPattern::Prefixed => {
                            rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED
                        }
                    },
                    principal.as_ptr(),
                    host.as_ptr(),
                    to_rd_operation(acl.operation),
                    match acl.permission {
                        AclPermission::Allow => {
                            rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW
                        }
                        AclPermission::Deny => {
                            rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY
                        }
                    },
                    errbuf.as_mut_ptr(),
                    errbuf.len(),
                ),
                release: rd::rd_kafka_AclBinding_destroy,
            };
            if binding.ptr.is_null() {
                return Err(format!("{acl}: {}", text(errbuf.as_ptr())));
            }
            bindings.push(binding);
        }
        let mut pointers: Vec<*mut rd::rd_kafka_AclBinding_t> = bindings.iter().map(|b| b.ptr).collect();
        rd::rd_kafka_CreateAcls(
            request.rk,
            pointers.as_mut_ptr(),
            pointers.len(),
            request.options.ptr,
            request.queue.ptr,
        );
        let event = request.answer("CreateAcls")?;
        let result = rd::rd_kafka_event_CreateAcls_result(event.ptr);
        if result.is_null() {
            return Err("unexpected answer to CreateAcls".into());
        }
        let mut count = 0usize;
        let answers = rd::rd_kafka_CreateAcls_result_acls(result, &mut count);
        let mut failures = Vec::new();
        for (i, acl) in acls.iter().enumerate().take(count) {
            let error = rd::rd_kafka_acl_result_error(*answers.add(i));
            if !error.is_null() {
                failures.push(format!("{acl}: {}", text(rd::rd_kafka_error_string(error))));
            }
        }
        match failures.is_empty() {
            true => Ok(()),
            false => Err(failures.join("; ")),
        }
    }
}
