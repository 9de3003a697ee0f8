//! ACLs of an Apache Kafka cluster with an authorizer, created and listed with the harness's
//! own CreateAcls and DescribeAcls requests over a plain listener (whose anonymous principal
//! the harness makes a super user): what a test sets up on a source, and what it reads back on
//! a target, owes nothing to librdkafka or to kmirror.
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::Result;
use crate::raw_request::{protocol_error, RawConnection};
use crate::KafkaCluster;

const ACL_VERSION: i16 = 3;
const ANY: i8 = 1;

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclOn {
    Topic,
    Group,
    /// The cluster itself; its one resource is named `kafka-cluster`.
    Cluster,
    TransactionalId,
}

/// The operations the tests grant or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclOp {
    All,
    Read,
    Write,
    Create,
    Alter,
    Describe,
    DescribeConfigs,
    AlterConfigs,
}

/// One rule, for any host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclRule {
    pub on: AclOn,
    pub name: String,
    pub prefixed: bool,
    pub principal: String,
    pub op: AclOp,
    pub allow: bool,
}

impl AclRule {
    /// ALLOW `op` on the literal `name` for `User:user`.
    pub fn allow(on: AclOn, name: &str, user: &str, op: AclOp) -> Self {
        Self { on, name: name.into(), prefixed: false, principal: format!("User:{user}"), op, allow: true }
    }

    /// DENY `op` on the literal `name` for `User:user`.
    pub fn deny(on: AclOn, name: &str, user: &str, op: AclOp) -> Self {
        Self { allow: false, ..Self::allow(on, name, user, op) }
    }
}

/// Kafka's resource type codes.
const ONS: [(AclOn, i8); 4] =
    [(AclOn::Topic, 2), (AclOn::Group, 3), (AclOn::Cluster, 4), (AclOn::TransactionalId, 5)];

fn on_code(on: AclOn) -> i8 {
    ONS.iter().find(|(o, _)| *o == on).map_or(0, |(_, c)| *c)
}

fn op_code(op: AclOp) -> i8 {
    OPS.iter().find(|(o, _)| *o == op).map_or(0, |(_, c)| *c)
}

/// Kafka's operation codes.
const OPS: [(AclOp, i8); 8] = [
    (AclOp::All, 2),
    (AclOp::Read, 3),
    (AclOp::Write, 4),
    (AclOp::Create, 5),
    (AclOp::Alter, 7),
    (AclOp::Describe, 8),
    (AclOp::DescribeConfigs, 10),
    (AclOp::AlterConfigs, 11),
];

/// Kafka's pattern type codes: PREFIXED, LITERAL.
fn pattern_code(rule: &AclRule) -> i8 {
    if rule.prefixed {
        4
    } else {
        3
    }
}

/// Kafka's permission codes: ALLOW, DENY.
fn permission_code(rule: &AclRule) -> i8 {
    if rule.allow {
        3
    } else {
        2
    }
}

impl KafkaCluster {
    fn acl_connection(&self) -> Result<RawConnection> {
        let bootstrap =
            self.internal_bootstrap.as_deref().or(self.plain_address.as_deref()).unwrap_or(self.bootstrap());
        RawConnection::open(bootstrap.split(',').next().unwrap_or(bootstrap))
    }

    /// Creates `rules`; fails naming the first one the broker refused.
    pub fn create_acls(&self, rules: &[AclRule]) -> Result<()> {
        let mut connection = self.acl_connection()?;
        let creations = rules
            .iter()
            .map(|r| {
                AclCreation::default()
                    .with_resource_type(on_code(r.on))
                    .with_resource_name(StrBytes::from_string(r.name.clone()))
                    .with_resource_pattern_type(pattern_code(r))
                    .with_principal(StrBytes::from_string(r.principal.clone()))
                    .with_host(StrBytes::from_static_str("*"))
                    .with_operation(op_code(r.op))
                    .with_permission_type(permission_code(r))
            })
            .collect();
        let request = CreateAclsRequest::default().with_creations(creations);
        let response: CreateAclsResponse = connection.call(ApiKey::CreateAcls, ACL_VERSION, &request)?;
        for (rule, result) in rules.iter().zip(&response.results) {
            if result.error_code != 0 {
                return Err(protocol_error(
                    &connection.broker,
                    format!("CreateAcls {rule:?}: error {} {:?}", result.error_code, result.error_message),
                ));
            }
        }
        Ok(())
    }

    /// Deletes `rules` (each exactly as created); fails naming the first one the broker did not
    /// delete.
    pub fn delete_acls(&self, rules: &[AclRule]) -> Result<()> {
        let mut connection = self.acl_connection()?;
        let filters = rules
            .iter()
            .map(|r| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(on_code(r.on))
                    .with_resource_name_filter(Some(StrBytes::from_string(r.name.clone())))
                    .with_pattern_type_filter(pattern_code(r))
                    .with_principal_filter(Some(StrBytes::from_string(r.principal.clone())))
                    .with_host_filter(Some(StrBytes::from_static_str("*")))
                    .with_operation(op_code(r.op))
                    .with_permission_type(permission_code(r))
            })
            .collect();
        let request = DeleteAclsRequest::default().with_filters(filters);
        let response: DeleteAclsResponse = connection.call(ApiKey::DeleteAcls, ACL_VERSION, &request)?;
        for (rule, result) in rules.iter().zip(&response.filter_results) {
            if result.error_code != 0 || result.matching_acls.is_empty() {
                return Err(protocol_error(
                    &connection.broker,
                    format!(
                        "DeleteAcls {rule:?}: error {} {:?}, {} deleted",
                        result.error_code,
                        result.error_message,
                        result.matching_acls.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every topic and group rule of the cluster, for any host, of the operations [`AclOp`]
    /// names (others are returned as nothing: the tests never create them).
    pub fn acls(&self) -> Result<Vec<AclRule>> {
        let mut connection = self.acl_connection()?;
        // The defaults are empty strings, which match only an empty name: null matches all.
        let request = DescribeAclsRequest::default()
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_resource_type_filter(ANY)
            .with_pattern_type_filter(ANY)
            .with_operation(ANY)
            .with_permission_type(ANY);
        let response: DescribeAclsResponse = connection.call(ApiKey::DescribeAcls, ACL_VERSION, &request)?;
        if response.error_code != 0 {
            return Err(protocol_error(
                &connection.broker,
                format!("DescribeAcls: error {} {:?}", response.error_code, response.error_message),
            ));
        }
        let mut rules = Vec::new();
        for resource in response.resources {
            let Some(on) = ONS.iter().find(|(_, c)| *c == resource.resource_type).map(|(o, _)| *o) else {
                continue;
            };
            for acl in resource.acls {
                let Some(op) = OPS.iter().find(|(_, c)| *c == acl.operation).map(|(o, _)| *o) else {
                    continue;
                };
                rules.push(AclRule {
                    on,
                    name: resource.resource_name.to_string(),
                    prefixed: resource.pattern_type == 4,
                    principal: acl.principal.to_string(),
                    op,
                    allow: acl.permission_type == 3,
                });
            }
        }
        rules.sort();
        Ok(rules)
    }
}
