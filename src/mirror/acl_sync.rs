//! `--sync-acls`: the source's access rules on the mirrored topics (and the checkpointed
//! groups) copied to the target under the mirror's names, so that consumers moved to the target
//! are let in, and kept out, as on the source.
//!
//! Only rules that name one mirrored topic or one checkpointed group are copied: a prefixed or
//! wildcard ALLOW would grant on the target what the source never granted (topics there that
//! are not copies), so it is left out and said once. A prefixed or wildcard DENY on topics is
//! copied as a DENY on each mirrored topic it covers, under its target name (left out, it let
//! in on the copies whoever it kept out of the originals). Under the default `read-only` policy
//! a DR copy is written by the mirror alone: DENY rules are copied as they are, ALLOW rules only
//! for reading (ALL becomes the reading operations), as MirrorMaker 2 leaves WRITE out. A DENY
//! that would keep the mirror itself from what it does there (for everyone, `User:*`, or its
//! own login) is left out and said. Rules are added, never removed: one taken away on the source
//! stays on the target until removed there.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use tracing::{debug, info, warn};

use crate::config::groups::GroupSelector;
use crate::config::AclPolicy;
use crate::error::{Error, Result, Side};
use crate::kafka::acls::{
    create_acls, describe_acls, operation_name, Acl, AclOperation, AclPattern, AclPermission, AclResource,
};
use crate::kafka::client::CreateForRole;
use crate::kafka::cluster_access::{authorizer_of, cluster_operations, Authorizer};
use crate::mirror::plan::SourceTopic;

/// What reading a topic takes: fetching, its metadata, its configs.
const TOPIC_READS: [AclOperation; 3] =
    [AclOperation::Read, AclOperation::Describe, AclOperation::DescribeConfigs];
/// What a consumer group takes: joining and committing (READ), describing it.
const GROUP_READS: [AclOperation; 2] = [AclOperation::Read, AclOperation::Describe];
/// What the mirror does on a target topic: makes it, writes it, reads and syncs its configs.
const MIRROR_ON_TOPICS: [AclOperation; 7] = [
    AclOperation::All,
    AclOperation::Write,
    AclOperation::Describe,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::Create,
    AclOperation::Alter,
];
/// What the mirror does on a target group: commits its translated offsets, describes it.
const MIRROR_ON_GROUPS: [AclOperation; 3] = [AclOperation::All, AclOperation::Read, AclOperation::Describe];

/// The source's rules as the target gets them, and those left out with the reason.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct AclPlan {
    pub(crate) copies: BTreeSet<Acl>,
    pub(crate) left_out: BTreeMap<Acl, &'static str>,
}

/// Turns the source's rules into the target's. `topics` maps each mirrored source topic to its
/// target name; `groups` picks the checkpointed groups (none without `--groups`); `mirror` is
/// the principal the mirror logs in to the target as, where known (`User:NAME`).
pub(crate) fn plan(
    source: &[Acl],
    topics: &BTreeMap<String, String>,
    groups: Option<&GroupSelector>,
    policy: AclPolicy,
    mirror: Option<&str>,
) -> AclPlan {
    let mut plan = AclPlan::default();
    let mut rules = Vec::with_capacity(source.len());
    for acl in source {
        let (needs, spared): (&[AclOperation], &[AclOperation]) = match acl.resource {
            AclResource::Topic => (&MIRROR_ON_TOPICS, &[AclOperation::Read, AclOperation::Delete]),
            _ => (&MIRROR_ON_GROUPS, &[AclOperation::Delete]),
        };
        let denies_the_mirror = acl.permission == AclPermission::Deny
            && (acl.principal == "User:*" || Some(acl.principal.as_str()) == mirror)
            && needs.contains(&acl.operation);
        if !denies_the_mirror {
            rules.push(acl.clone());
            continue;
        }
        // ALL still denies what the mirror does not do there (reading the copies, deleting
        // them): dropped whole, it would let in whom the source kept out.
        let why = match (acl.operation, acl.resource) {
            (AclOperation::All, _) => "ALL would keep the mirror itself from its work: copied as a DENY of the rest (reading, deleting)",
            (_, AclResource::Topic) => "it would keep the mirror itself from writing and making the copies",
            _ => "it would keep the mirror itself from committing the groups' translated offsets",
        };
        plan.left_out.insert(acl.clone(), why);
        if acl.operation == AclOperation::All {
            rules.extend(spared.iter().map(|&operation| Acl { operation, ..acl.clone() }));
        }
    }
    for acl in &rules {
        // A DENY on many topics denies each copy of one.
        if acl.permission == AclPermission::Deny
            && acl.resource == AclResource::Topic
            && (acl.pattern == AclPattern::Prefixed || acl.name == "*")
        {
            for (source_name, target_name) in topics {
                if acl.name == "*" || source_name.starts_with(&acl.name) {
                    plan.copies.insert(Acl {
                        name: target_name.clone(),
                        pattern: AclPattern::Literal,
                        ..acl.clone()
                    });
                }
            }
            continue;
        }
        let reads: &[AclOperation] = match acl.resource {
            AclResource::Topic => &TOPIC_READS,
            AclResource::Group => &GROUP_READS,
            AclResource::Other => continue,
        };
        let covers_mirrored = match acl.resource {
            AclResource::Topic => {
                acl.name == "*"
                    || match acl.pattern {
                        AclPattern::Literal => topics.contains_key(&acl.name),
                        AclPattern::Prefixed => topics.keys().any(|t| t.starts_with(&acl.name)),
                    }
            }
            _ => groups.is_some_and(|g| {
                acl.name == "*" || acl.pattern == AclPattern::Prefixed || g.is_match(&acl.name)
            }),
        };
        if !covers_mirrored {
            continue;
        }
        if acl.pattern == AclPattern::Prefixed || acl.name == "*" {
            plan.left_out.insert(
                acl.clone(),
                "a prefixed or wildcard rule would also grant on target names that are not copies",
            );
            continue;
        }
        let name = match acl.resource {
            AclResource::Topic => topics.get(&acl.name).cloned().unwrap_or_else(|| acl.name.clone()),
            _ => acl.name.clone(),
        };
        let copy = |operation| Acl { name: name.clone(), operation, ..acl.clone() };
        match (policy, acl.permission, acl.operation) {
            (AclPolicy::All, _, operation) | (AclPolicy::ReadOnly, AclPermission::Deny, operation) => {
                plan.copies.insert(copy(operation));
            }
            (AclPolicy::ReadOnly, AclPermission::Allow, AclOperation::All) => {
                plan.copies.extend(reads.iter().map(|&o| copy(o)));
            }
            (AclPolicy::ReadOnly, AclPermission::Allow, operation) if reads.contains(&operation) => {
                plan.copies.insert(copy(operation));
            }
            (AclPolicy::ReadOnly, AclPermission::Allow, _) => {
                plan.left_out.insert(
                    acl.clone(),
                    "the read-only policy copies no writing rule to a DR copy (--sync-acls all copies it)",
                );
            }
        }
    }
    plan
}

/// What one sync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AclSyncReport {
    pub(crate) created: usize,
    pub(crate) in_place: usize,
}

/// Copies rules each time it is asked, for the topics the mirror has made ready so far.
pub(crate) struct AclSync {
    source: AdminClient<DefaultClientContext>,
    target: AdminClient<DefaultClientContext>,
    policy: AclPolicy,
    groups: Option<GroupSelector>,
    timeout: Duration,
    topics: BTreeMap<String, String>,
    told: BTreeSet<Acl>,
    authorizers_checked: bool,
    /// The mirror's login on the target (`User:NAME`, SASL), where it has one.
    principal: Option<String>,
}

impl AclSync {
    pub(crate) fn new(
        source: &rdkafka::ClientConfig,
        target: &rdkafka::ClientConfig,
        policy: AclPolicy,
        groups: Option<GroupSelector>,
        timeout: Duration,
    ) -> Result<Self> {
        Ok(Self {
            source: source.create_for_role().map_err(Error::kafka(Side::Source, "creating admin client"))?,
            target: target.create_for_role().map_err(Error::kafka(Side::Target, "creating admin client"))?,
            policy,
            groups,
            timeout,
            topics: BTreeMap::new(),
            told: BTreeSet::new(),
            authorizers_checked: false,
            principal: target.get("sasl.username").map(|name| format!("User:{name}")),
        })
    }

    /// Adds `ready` to the mirrored topics and copies the rules the target lacks.
    pub(crate) fn sync(&mut self, ready: &[SourceTopic]) -> Result<AclSyncReport> {
        self.topics.extend(ready.iter().map(|t| (t.name.clone(), t.target.clone())));
        if !self.authorizers_checked {
            self.check_authorizers()?;
            self.authorizers_checked = true;
        }
        // Asked at every sync: a rule taken away while the mirror runs reads as "no rules" too.
        self.check_cluster_access()?;
        let source = describe_acls(&self.source, self.timeout).map_err(|message| Error::AclSync {
            side: Side::Source,
            message,
            fix: SOURCE_FIX,
        })?;
        let plan = plan(&source, &self.topics, self.groups.as_ref(), self.policy, self.principal.as_deref());
        for (acl, why) in &plan.left_out {
            if self.told.insert(acl.clone()) {
                warn!(acl = %acl, "ACL not copied: {why}");
            }
        }
        let fix = TARGET_FIX;
        let on_target: BTreeSet<Acl> = describe_acls(&self.target, self.timeout)
            .map_err(|message| Error::AclSync { side: Side::Target, message, fix })?
            .into_iter()
            .collect();
        let missing: Vec<Acl> = plan.copies.difference(&on_target).cloned().collect();
        create_acls(&self.target, &missing, self.timeout).map_err(|message| Error::AclSync {
            side: Side::Target,
            message,
            fix,
        })?;
        for acl in &missing {
            info!(acl = %acl, "ACL copied to the target");
        }
        Ok(AclSyncReport { created: missing.len(), in_place: plan.copies.len() - missing.len() })
    }

    /// Refuses a cluster without an authorizer: its rules could be neither read nor kept. A
    /// principal not allowed to read broker configs cannot tell (a cluster without an authorizer
    /// refuses nothing); then the cluster's authorized operations decide.
    fn check_authorizers(&self) -> Result<()> {
        for (side, admin) in [(Side::Source, &self.source), (Side::Target, &self.target)] {
            match authorizer_of(admin, self.timeout) {
                Ok(Authorizer::Set(_) | Authorizer::NotShown) => {}
                Ok(Authorizer::Unset) => {
                    return Err(Error::AclSync {
                        side,
                        message:
                            "the cluster has no authorizer (its brokers' authorizer.class.name is empty)"
                                .into(),
                        fix: "enable one, e.g. org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    })
                }
                Err(e) => debug!(%side, error = %e, "could not read the brokers' authorizer setting"),
            }
        }
        Ok(())
    }

    /// Refuses a principal that may not read the source's rules or write the target's: a
    /// DescribeAcls they refuse comes back from librdkafka as an answer with no rules, and the
    /// copy would be empty without a word.
    fn check_cluster_access(&self) -> Result<()> {
        let needs = [
            (Side::Source, &self.source, AclOperation::Describe, SOURCE_FIX),
            (Side::Target, &self.target, AclOperation::Alter, TARGET_FIX),
        ];
        for (side, admin, operation, fix) in needs {
            match cluster_operations(admin, self.timeout) {
                Ok(Some(granted)) if !granted.contains(&operation) => {
                    let (may_not, rules) =
                        (operation_name(operation), if side == Side::Source { "read" } else { "written" });
                    return Err(Error::AclSync {
                        side,
                        message: format!(
                            "the principal kmirror logs in as may not {may_not} the cluster, so its rules cannot be {rules}"
                        ),
                        fix,
                    });
                }
                Ok(_) => {}
                // A broker older than DescribeCluster: the ACL requests decide.
                Err(e) => debug!(%side, error = %e, "could not read the cluster's authorized operations"),
            }
        }
        Ok(())
    }
}

const SOURCE_FIX: &str =
    "the source needs an authorizer, and kmirror's source principal DESCRIBE on its CLUSTER";
const TARGET_FIX: &str =
    "the target needs an authorizer, and kmirror's target principal ALTER on its CLUSTER";

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(resource: AclResource, name: &str, permission: AclPermission, operation: AclOperation) -> Acl {
        Acl {
            resource,
            name: name.into(),
            pattern: AclPattern::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    fn names() -> BTreeMap<String, String> {
        [("orders".to_string(), "src.orders".to_string())].into_iter().collect()
    }

    #[test]
    fn read_only_copies_reads_and_denials_under_the_target_name_and_leaves_writes_out() {
        use AclOperation::*;
        use AclPermission::*;
        use AclResource::*;
        let source = vec![
            acl(Topic, "orders", Allow, Read),
            acl(Topic, "orders", Allow, Write),
            acl(Topic, "orders", Allow, All),
            acl(Topic, "orders", Deny, Write),
            acl(Topic, "not-mirrored", Allow, Read),
            acl(Group, "billing", Allow, Read),
            acl(Group, "other", Allow, Read),
            acl(Other, "kafka-cluster", Allow, Alter),
        ];
        let groups = GroupSelector::new("billing").expect("pattern");
        let plan = plan(&source, &names(), Some(&groups), AclPolicy::ReadOnly, None);
        let copies: Vec<(AclResource, &str, AclPermission, AclOperation)> =
            plan.copies.iter().map(|a| (a.resource, a.name.as_str(), a.permission, a.operation)).collect();
        assert_eq!(
            copies,
            vec![
                (Topic, "src.orders", Allow, Read),
                (Topic, "src.orders", Deny, Write),
                (Topic, "src.orders", Allow, Describe),
                (Topic, "src.orders", Allow, DescribeConfigs),
                (Group, "billing", Allow, Read),
            ]
        );
        assert_eq!(
            plan.left_out.keys().cloned().collect::<Vec<_>>(),
            vec![acl(Topic, "orders", Allow, Write)]
        );
    }

    #[test]
    fn the_all_policy_copies_every_rule_of_a_mirrored_topic_as_it_is() {
        let source = vec![
            acl(AclResource::Topic, "orders", AclPermission::Allow, AclOperation::Write),
            acl(AclResource::Topic, "orders", AclPermission::Allow, AclOperation::All),
        ];
        let plan = plan(&source, &names(), None, AclPolicy::All, None);
        assert_eq!(plan.copies.len(), 2);
        assert!(plan.copies.iter().all(|a| a.name == "src.orders"));
        assert!(plan.left_out.is_empty());
    }

    #[test]
    fn prefixed_and_wildcard_rules_that_cover_a_mirrored_name_are_left_out_and_others_ignored() {
        let mut prefixed = acl(AclResource::Topic, "ord", AclPermission::Allow, AclOperation::Read);
        prefixed.pattern = AclPattern::Prefixed;
        let mut unrelated = prefixed.clone();
        unrelated.name = "pay".into();
        let wildcard = acl(AclResource::Topic, "*", AclPermission::Allow, AclOperation::Read);
        let group = acl(AclResource::Group, "billing", AclPermission::Allow, AclOperation::Read);
        let plan = plan(
            &[prefixed.clone(), unrelated, wildcard.clone(), group],
            &names(),
            None,
            AclPolicy::All,
            None,
        );
        assert!(plan.copies.is_empty(), "without --groups no group rule is copied: {:?}", plan.copies);
        assert_eq!(plan.left_out.keys().cloned().collect::<BTreeSet<_>>(), [prefixed, wildcard].into());
    }

    #[test]
    fn a_deny_on_many_topics_denies_each_copy_and_one_on_the_mirror_itself_is_left_out() {
        use AclOperation::*;
        use AclPermission::*;
        use AclResource::*;
        let topics: BTreeMap<String, String> =
            [("orders", "dr.orders"), ("ordinals", "dr.ordinals"), ("pay", "dr.pay")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        let mut prefixed = acl(Topic, "ord", Deny, Read);
        prefixed.pattern = AclPattern::Prefixed;
        prefixed.principal = "User:contractor".into();
        let mut everyone = acl(Topic, "*", Deny, Read);
        everyone.principal = "User:intern".into();
        let mut writes_for_all = acl(Topic, "orders", Deny, Write);
        writes_for_all.principal = "User:*".into();
        let mut mirror = acl(Group, "billing", Deny, Read);
        mirror.principal = "User:kmirror".into();
        let reads_for_all = Acl { principal: "User:*".into(), ..acl(Topic, "pay", Deny, Read) };
        let groups = GroupSelector::new("billing").expect("pattern");
        let source = [prefixed, everyone, writes_for_all.clone(), mirror.clone(), reads_for_all];
        let plan = plan(&source, &topics, Some(&groups), AclPolicy::ReadOnly, Some("User:kmirror"));
        let copies: Vec<(&str, &str, AclPattern, AclOperation)> = plan
            .copies
            .iter()
            .map(|a| (a.principal.as_str(), a.name.as_str(), a.pattern, a.operation))
            .collect();
        assert_eq!(
            copies,
            vec![
                ("User:contractor", "dr.orders", AclPattern::Literal, Read),
                ("User:intern", "dr.orders", AclPattern::Literal, Read),
                ("User:contractor", "dr.ordinals", AclPattern::Literal, Read),
                ("User:intern", "dr.ordinals", AclPattern::Literal, Read),
                ("User:*", "dr.pay", AclPattern::Literal, Read),
                ("User:intern", "dr.pay", AclPattern::Literal, Read),
            ]
        );
        assert_eq!(plan.left_out.keys().cloned().collect::<BTreeSet<_>>(), [writes_for_all, mirror].into());
    }

    #[test]
    fn a_deny_of_all_for_everyone_still_denies_reading_and_deleting_the_copy() {
        use AclOperation::*;
        let all =
            Acl { principal: "User:*".into(), ..acl(AclResource::Topic, "orders", AclPermission::Deny, All) };
        let group_all = Acl {
            principal: "User:*".into(),
            ..acl(AclResource::Group, "billing", AclPermission::Deny, All)
        };
        let groups = GroupSelector::new("billing").expect("pattern");
        let plan =
            plan(&[all.clone(), group_all.clone()], &names(), Some(&groups), AclPolicy::ReadOnly, None);
        let copies: Vec<(AclResource, &str, AclOperation)> =
            plan.copies.iter().map(|a| (a.resource, a.name.as_str(), a.operation)).collect();
        assert_eq!(
            copies,
            vec![
                (AclResource::Topic, "src.orders", Read),
                (AclResource::Topic, "src.orders", Delete),
                (AclResource::Group, "billing", Delete),
            ]
        );
        assert!(plan.copies.iter().all(|a| a.permission == AclPermission::Deny && a.principal == "User:*"));
        assert_eq!(plan.left_out.keys().cloned().collect::<BTreeSet<_>>(), [all, group_all].into());
    }
}
