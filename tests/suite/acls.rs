//! `--sync-acls` end to end on Apache Kafka with `StandardAuthorizer` on both sides: the rules
//! are set on the source and read back on the target with the harness's own ACL requests, and
//! what they mean is tried with real clients logged in as the principals they name. And a mirror
//! logged in as a principal holding only the rules the README lists.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::{
    assert_success, commit_group, group_offsets, keyed, run, status_output_with, stderr, terminate, topic,
    Setup,
};
use kmirror_testcontainers::scram::Mechanism;
use kmirror_testcontainers::scram_broker::ScramBroker;
use kmirror_testcontainers::{audit_mirror, AclOn, AclOp, AclRule, Backend, KafkaCluster};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const PASSWORD: &str = "acl-test-password";
const USERS: [&str; 5] = ["admin", "alice", "bob", "carol", "mirror"];

fn secured() -> KafkaCluster {
    let users: Vec<(String, String)> = USERS.iter().map(|u| (u.to_string(), PASSWORD.to_string())).collect();
    KafkaCluster::start_scram(ScramBroker {
        mechanisms: &[Mechanism::ScramSha256],
        users: &users,
        tls: None,
        authorizer: true,
    })
    .expect("SCRAM brokers with an authorizer start")
}

fn login(cluster: &KafkaCluster, user: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", cluster.bootstrap())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-256")
        .set("sasl.username", user)
        .set("sasl.password", PASSWORD);
    config
}

/// kmirror's arguments logging both sides in as `user`.
fn logged_in_as(user: &str) -> Vec<String> {
    let mut args = vec![];
    for side in ["source", "target"] {
        for (key, value) in [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", user),
            ("sasl.password", PASSWORD),
        ] {
            args.extend(["--set".to_string(), format!("{side}.{key}={value}")]);
        }
    }
    args
}

/// What `user` reads of `topic` partition 0 from its start, read_committed: the records, or
/// the error the broker answered with.
fn read_as(cluster: &KafkaCluster, user: &str, topic: &str, group: &str) -> Result<usize, KafkaError> {
    let consumer: BaseConsumer = login(cluster, user)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let (mut read, mut last) = (0usize, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && read < 50 {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                read += 1;
                last = Some(m.offset());
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if let Some(offset) = last {
        let mut at = TopicPartitionList::new();
        at.add_partition_offset(topic, 0, Offset::Offset(offset + 1)).expect("tpl");
        consumer.commit(&at, CommitMode::Sync)?;
    }
    Ok(read)
}

/// Whether `user` may write to `topic`: the broker's answer to one record's delivery.
fn write_as(cluster: &KafkaCluster, user: &str, topic: &str) -> Result<(), KafkaError> {
    let producer: FutureProducer =
        login(cluster, user).set("message.timeout.ms", "15000").create().expect("producer");
    let record = FutureRecord::to(topic).partition(0).payload("x").key("k");
    futures_executor::block_on(producer.send(record, Duration::from_secs(20))).map(|_| ()).map_err(|(e, _)| e)
}

fn topic_denied(result: Result<impl std::fmt::Debug, KafkaError>) -> bool {
    matches!(
        result.as_ref().map_err(KafkaError::rdkafka_error_code),
        Err(Some(RDKafkaErrorCode::TopicAuthorizationFailed))
    )
}

#[test]
fn read_rules_follow_the_copy_under_its_target_name_and_writes_stay_with_the_source() {
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: ACLs need Apache Kafka's authorizer");
        return;
    }
    let (source, target) = (secured(), secured());
    let t = topic("acl");
    let (group, copy) = (format!("{t}-readers"), format!("dr.{t}"));
    source.create_topic(&t, 1, &[]).expect("topic");
    source.produce(&t, 0, &keyed("r", 0..40)).expect("produce");
    source
        .create_acls(&[
            AclRule::allow(AclOn::Topic, &t, "alice", AclOp::Read),
            AclRule::allow(AclOn::Topic, &t, "alice", AclOp::Describe),
            AclRule::allow(AclOn::Topic, &t, "alice", AclOp::Write),
            AclRule::allow(AclOn::Group, &group, "alice", AclOp::Read),
            // bob may do everything but read: ALL becomes the reads, the DENY is copied.
            AclRule::allow(AclOn::Topic, &t, "bob", AclOp::All),
            AclRule::deny(AclOn::Topic, &t, "bob", AclOp::Read),
            AclRule::allow(AclOn::Group, &format!("{group}-bob"), "bob", AclOp::Read),
            // Not a mirrored topic, and a prefixed rule: neither reaches the target.
            AclRule::allow(AclOn::Topic, "unrelated", "alice", AclOp::Read),
            AclRule { prefixed: true, ..AclRule::allow(AclOn::Topic, &t[..4], "bob", AclOp::Read) },
            // carol may read the topic by name but a prefixed DENY keeps her out: the DENY
            // reaches the copy, under its name.
            AclRule::allow(AclOn::Topic, &t, "carol", AclOp::Read),
            AclRule::allow(AclOn::Topic, &t, "carol", AclOp::Describe),
            AclRule::allow(AclOn::Group, &format!("{group}-carol"), "carol", AclOp::Read),
            AclRule { prefixed: true, ..AclRule::deny(AclOn::Topic, &t[..4], "carol", AclOp::Read) },
            // The principal the mirror logs in as denied writing (as a guard against a copy
            // back): copied, it would deny the mirror's own writes on the target (this test's
            // admin is a super user, whom no rule denies: the plan is what is checked).
            AclRule::deny(AclOn::Topic, &t, "admin", AclOp::Write),
        ])
        .expect("source ACLs");
    // The source's rules mean what the test says before anything is copied.
    assert_eq!(read_as(&source, "alice", &t, &group).expect("alice reads the source"), 40);
    assert!(
        topic_denied(read_as(&source, "bob", &t, &format!("{group}-bob"))),
        "bob is denied READ on the source"
    );
    assert!(
        topic_denied(read_as(&source, "carol", &t, &format!("{group}-carol"))),
        "carol is denied READ on the source"
    );
    let before = read_as(&target, "alice", &t, &group);
    assert!(before.is_err(), "nothing on the target grants alice anything yet: {before:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut args: Vec<String> = [
        "mirror",
        "--source",
        source.bootstrap(),
        "--target",
        target.bootstrap(),
        "--name",
        "acls",
        "--topics",
        &t,
        "--rename",
        "regex:(.*)=>dr.$1",
        "--groups",
        &format!("{t}-.*"),
        "--until-caught-up",
        "--sync-acls",
        "--transaction-max-ms",
        "100",
        "--state-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.path().display().to_string());
    args.extend(logged_in_as("admin"));
    let out = run(&args, Duration::from_secs(90));
    assert_success(&out);
    let audit = audit_mirror(&source, &t, &target, &copy, 1).expect("audit");
    assert!(audit[0].identical && audit[0].duplicates == 0 && audit[0].missing == 0, "{audit:?}");

    let on_target = target.acls().expect("target ACLs");
    let mut expected = vec![
        AclRule::allow(AclOn::Topic, &copy, "alice", AclOp::Read),
        AclRule::allow(AclOn::Topic, &copy, "alice", AclOp::Describe),
        AclRule::allow(AclOn::Group, &group, "alice", AclOp::Read),
        AclRule::allow(AclOn::Topic, &copy, "bob", AclOp::Read),
        AclRule::allow(AclOn::Topic, &copy, "bob", AclOp::Describe),
        AclRule::allow(AclOn::Topic, &copy, "bob", AclOp::DescribeConfigs),
        AclRule::deny(AclOn::Topic, &copy, "bob", AclOp::Read),
        AclRule::allow(AclOn::Group, &format!("{group}-bob"), "bob", AclOp::Read),
        AclRule::allow(AclOn::Topic, &copy, "carol", AclOp::Read),
        AclRule::allow(AclOn::Topic, &copy, "carol", AclOp::Describe),
        AclRule::deny(AclOn::Topic, &copy, "carol", AclOp::Read),
        AclRule::allow(AclOn::Group, &format!("{group}-carol"), "carol", AclOp::Read),
    ];
    expected.sort();
    assert_eq!(
        on_target,
        expected,
        "the target's rules: the reads and the denial, under the copy's name; kmirror said:\n{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("ACL not copied"), "the left-out rules are said: {}", stderr(&out));

    // What the rules mean on the target, for clients logged in as their principals.
    assert_eq!(
        read_as(&target, "alice", &copy, &group).expect("alice reads the copy, commits in her group"),
        40
    );
    assert!(
        topic_denied(read_as(&target, "bob", &copy, &format!("{group}-bob"))),
        "bob's DENY followed the copy"
    );
    assert!(
        topic_denied(read_as(&target, "carol", &copy, &format!("{group}-carol"))),
        "carol's prefixed DENY followed the copy"
    );
    assert!(stderr(&out).contains("it would keep the mirror itself from writing"), "{}", stderr(&out));
    let alice_writes = write_as(&target, "alice", &copy);
    assert!(topic_denied(alice_writes.clone()), "WRITE is not copied to the DR copy: {alice_writes:?}");
    let bob_writes = write_as(&target, "bob", &copy);
    assert!(topic_denied(bob_writes.clone()), "nor is the write half of ALL: {bob_writes:?}");
    write_as(&source, "alice", &t).expect("alice still writes on the source");

    // A second run adds nothing and finds every rule in place.
    let out = run(&args, Duration::from_secs(90));
    assert_success(&out);
    assert_eq!(target.acls().expect("target ACLs"), expected);
}

#[test]
fn sync_acls_against_a_cluster_without_an_authorizer_is_refused_before_anything_is_written() {
    let setup = Setup::new();
    let t = topic("acl-off");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("r", 0..5)).expect("produce");
    let out = setup.mirror_until_caught_up(&t, &["--sync-acls"]);
    assert!(!out.status.success(), "must fail: {}", stderr(&out));
    let line =
        stderr(&out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from).unwrap_or_default();
    assert!(
        line.contains("--sync-acls: source ACLs") && line.contains("authorizer"),
        "one line naming the side and the fix: {}",
        stderr(&out)
    );
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), None, "no target topic made");
}

/// A source and a target that check every request against their ACLs, for a mirror whose name
/// starts with `prefix`; None (saying why) where the brokers are not Apache Kafka.
fn secured_setup(prefix: &str) -> Option<Setup> {
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: ACLs need Apache Kafka's authorizer");
        return None;
    }
    Some(Setup {
        source: secured(),
        target: secured(),
        name: format!("{prefix}{}", kmirror_testcontainers::unique_suffix()).replace('-', ""),
        state_dir: tempfile::tempdir().expect("tempdir"),
    })
}

/// The rules a mirror named `name` of `topic`, copied as `copy` (its name after `--rename`) and
/// syncing group `group`, needs on each side: what the README's "Access a mirror needs" lists,
/// nothing more.
fn least_privilege(name: &str, topic: &str, copy: &str, group: &str) -> (Vec<AclRule>, Vec<AclRule>) {
    let allow = |on, resource: &str, op| AclRule::allow(on, resource, "mirror", op);
    let prefixed = |on, resource: &str, op| AclRule { prefixed: true, ..allow(on, resource, op) };
    let mut source = vec![];
    for op in [AclOp::Read, AclOp::Describe, AclOp::DescribeConfigs] {
        source.push(allow(AclOn::Topic, topic, op));
    }
    source.push(allow(AclOn::Group, group, AclOp::Describe));
    let own_prefix = format!("kmirror.{name}.");
    // The source readers' group is only ever looked up (never joined nor committed to).
    source.push(prefixed(AclOn::Group, &own_prefix, AclOp::Describe));
    let mut target = vec![];
    for op in [AclOp::Create, AclOp::Write, AclOp::Describe, AclOp::DescribeConfigs, AclOp::AlterConfigs] {
        target.push(allow(AclOn::Topic, copy, op));
    }
    // The shadow groups hold positions under the target topic's name: committing them in a
    // transaction takes READ on it.
    target.push(allow(AclOn::Topic, copy, AclOp::Read));
    for own in ["offset-map", "checkpoints", "shards"] {
        for op in [AclOp::Create, AclOp::Write, AclOp::Read, AclOp::Describe] {
            target.push(allow(AclOn::Topic, &format!("kmirror.{own}.{name}"), op));
        }
    }
    for op in [AclOp::Write, AclOp::Describe] {
        target.push(prefixed(AclOn::TransactionalId, &own_prefix, op));
    }
    for op in [AclOp::Read, AclOp::Describe] {
        target.push(prefixed(AclOn::Group, &own_prefix, op));
        target.push(allow(AclOn::Group, group, op));
    }
    (source, target)
}

/// A run as the mirror's principal holding what the README lists: it succeeds, and no call of
/// it was refused (librdkafka logs a refused group coordinator lookup and goes on).
fn granted(out: &Output) {
    assert_success(out);
    let said = stderr(out);
    assert!(!said.contains("uthorization failed"), "a call was refused:\n{said}");
}

/// Takes the literal rule granting `op` on `on` `name` out of `rules`.
fn take_rule(rules: &mut Vec<AclRule>, on: AclOn, name: &str, op: AclOp) -> AclRule {
    let at = rules.iter().position(|r| r.on == on && r.name == name && r.op == op && !r.prefixed);
    rules.remove(at.unwrap_or_else(|| panic!("{op:?} on {name} is in the list")))
}

/// The first record a read_committed reader of `topic`/`partition` gets from `offset` on: its key.
fn key_at(cluster: &KafkaCluster, topic: &str, partition: i32, offset: i64) -> Option<Vec<u8>> {
    let consumer: BaseConsumer = cluster
        .client_config()
        .set("group.id", format!("key-reader-{}", kmirror_testcontainers::unique_suffix()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            return message.expect("read").key().map(<[u8]>::to_vec);
        }
    }
    None
}

/// kmirror logged in as a principal holding only the rules the README lists (no super user,
/// no cluster-wide rule): each rule held back stops a run in one line naming it;
/// granted, the mirror makes the target topic with the source's configs, copies every record
/// once, syncs a group's position, a second run resumes where the first committed and copies a
/// config change, a coordinated run goes on from there, and verify, status, translate-offsets
/// and failover work as the same principal.
#[test]
fn a_mirror_holding_only_the_documented_acls_copies_exactly_once_and_resumes() {
    let Some(setup) = secured_setup("least") else { return };
    const PARTITIONS: i32 = 2;
    let t = topic("least");
    let group = format!("{t}-app");
    setup.source.create_topic(&t, PARTITIONS, &[("retention.ms", "86400000")]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("a{p}"), 0..40)).expect("produce");
    }
    commit_group(&setup.source, &group, &t, &[(0, 30), (1, 25)].into_iter().collect());
    let (mut on_source, mut on_target) = least_privilege(&setup.name, &t, &t, &group);
    let checkpoints = format!("kmirror.checkpoints.{}", setup.name);
    // Rules held back at first, in the order a run needs them, and what the run's last line
    // must then say: each run stops in one line naming the side, the call, the resource and the
    // fix (never retrying forever), and the next run is granted the rule.
    let held_back: Vec<(AclRule, &str)> = [
        (true, AclOn::Topic, &t, AclOp::DescribeConfigs, "source cluster refused describing configs of"),
        (false, AclOn::Topic, &t, AclOp::Create, "target cluster refused creating topic"),
        (true, AclOn::Topic, &t, AclOp::Read, "source cluster refused shard"),
        // The copy exists from here on: a run compares its configs with the source's.
        (false, AclOn::Topic, &t, AclOp::DescribeConfigs, "target cluster refused describing configs of"),
        (false, AclOn::Topic, &t, AclOp::Read, "target cluster refused shard"),
        // The records are copied; the batch's last checkpoint cannot move the group.
        (false, AclOn::Group, &group, AclOp::Read, "target cluster refused committing offsets of group"),
        // The group moved; its checkpoint is not stored (it was lost without a word, exit 0).
        (
            false,
            AclOn::Topic,
            &checkpoints,
            AclOp::Write,
            "target cluster refused writing the checkpoint of group",
        ),
    ]
    .into_iter()
    .map(|(on_source_side, on, name, op, says)| {
        (take_rule(if on_source_side { &mut on_source } else { &mut on_target }, on, name, op), says)
    })
    .collect();
    // ALTER_CONFIGS implies DESCRIBE_CONFIGS: held back until the source's configs change.
    let alter = take_rule(&mut on_target, AclOn::Topic, &t, AclOp::AlterConfigs);
    setup.source.create_acls(&on_source).expect("source ACLs");
    setup.target.create_acls(&on_target).expect("target ACLs");
    let login = logged_in_as("mirror");
    let as_mirror: Vec<&str> = login.iter().map(String::as_str).collect();
    let mut extra: Vec<&str> = vec!["--groups", &group, "--sync-group-offsets"];
    extra.extend(&as_mirror);
    let refused = |rule: &AclRule, says: &str| {
        let denied = setup.mirror_until_caught_up(&t, &extra);
        let line = stderr(&denied).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
        let fix = format!(
            "lacks an ACL; grant what README's \"Access a mirror needs\" lists for the {}",
            if says.starts_with("source") { "source" } else { "target" }
        );
        assert!(
            !denied.status.success()
                && line
                    .as_ref()
                    .is_some_and(|l| l.contains(says) && l.contains(&rule.name) && l.ends_with(&fix)),
            "without {:?} on {}: one line saying \"{says}\", naming it and ending with the fix ({}): {}",
            rule.op,
            rule.name,
            denied.status,
            stderr(&denied)
        );
        // The clients the stop destroys mid-login are no authentication problem to report.
        assert!(
            !stderr(&denied).contains("SASL authentication error"),
            "without {:?} on {}: no login error beside the refusal:\n{}",
            rule.op,
            rule.name,
            stderr(&denied)
        );
    };
    for (rule, says) in held_back {
        let on_source_side = says.starts_with("source");
        refused(&rule, says);
        if rule.op == AclOp::Create || on_source_side && rule.op == AclOp::DescribeConfigs {
            // Refused before the target topic is made (READ and WRITE imply DESCRIBE: there is
            // no DESCRIBE to hold back).
            assert_eq!(setup.target.partition_count(&t).expect("metadata"), None, "no target topic made");
        }
        let cluster = if on_source_side { &setup.source } else { &setup.target };
        cluster.create_acls(&[rule]).expect("the held-back rule");
    }

    let copied = setup.mirror_until_caught_up(&t, &extra);
    granted(&copied);
    setup.assert_exactly_once(&t, PARTITIONS, Some(40));
    // The group's position on the target points at the record the source's pointed at.
    let points_at = |expected: [(i32, &str, usize); 2], said: &Output| {
        let positions = group_offsets(&setup.target, &group, &t, PARTITIONS);
        for (p, prefix, index) in expected {
            let at = positions[&p].unwrap_or_else(|| {
                panic!("group {group} has no position on the target in {p}; kmirror said:\n{}", stderr(said))
            });
            let record = keyed(prefix, index..index + 1).remove(0);
            assert_eq!(key_at(&setup.target, &t, p, at), record.key, "partition {p}: target offset {at}");
        }
    };
    points_at([(0, "a0", 30), (1, "a1", 25)], &copied);

    let retention =
        |cluster: &KafkaCluster| cluster.topic_configs(&t).expect("configs").get("retention.ms").cloned();
    assert_eq!(
        retention(&setup.target).as_deref(),
        Some("86400000"),
        "the copy made with the source's configs"
    );

    // The source's configs changed meanwhile: the next run carries the change over.
    setup.source.set_topic_configs(&t, &[("retention.ms", "172800000")]).expect("alter");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("b{p}"), 0..25)).expect("produce");
    }
    refused(&alter, "target cluster refused setting configs of");
    let held: Vec<(usize, usize)> =
        setup.audit(&t, PARTITIONS).iter().map(|a| (a.target_records, a.duplicates)).collect();
    assert_eq!(held, vec![(40, 0); PARTITIONS as usize], "nothing copied by the refused run");
    setup.target.create_acls(&[alter]).expect("ALTER_CONFIGS");
    granted(&setup.mirror_until_caught_up(&t, &extra));
    setup.assert_exactly_once(&t, PARTITIONS, Some(65));
    assert_eq!(retention(&setup.target).as_deref(), Some("172800000"), "the config change copied");

    // The same mirror scaled out (--coordinate) by the same principal: its group and owners log
    // are under the documented prefix and topics.
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("c{p}"), 0..10)).expect("produce");
    }
    let mut coordinated = extra.clone();
    coordinated.push("--coordinate");
    let child = setup.spawn_mirror(&t, &coordinated);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && setup.audit(&t, PARTITIONS).iter().any(|a| a.target_records < 75) {
        std::thread::sleep(Duration::from_millis(300));
    }
    terminate(&child);
    granted(&child.wait_with_output().expect("the coordinated mirror's output"));
    setup.assert_exactly_once(&t, PARTITIONS, Some(75));

    // A drill's checks by the same principal: verify compares every record, status sees the
    // mirror caught up.
    let verify_state = tempfile::tempdir().expect("tempdir");
    let verified = setup.verify(verify_state.path(), &as_mirror);
    granted(&verified);
    let report: Vec<serde_json::Value> = serde_json::from_slice(&verified.stdout).expect("verify's JSON");
    let checked: Vec<(i64, i64)> = report
        .iter()
        .filter(|c| c["source_digest"] == c["target_digest"])
        .map(|c| (c["partition"].as_i64().unwrap_or(-1), c["checked"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(checked, vec![(0, 75), (1, 75)], "{report:?}");
    let status = status_output_with(&setup, true, &as_mirror);
    granted(&status);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let rows: Vec<(i64, i64, i64)> = status["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_i64().unwrap_or(-1);
            (n("partition"), n("committed"), n("source_end"))
        })
        .collect();
    assert_eq!(rows, vec![(0, 75, 75), (1, 75, 75)], "{status:#}");

    // A failover drill's translation by the same principal: the group moved on at the source,
    // and translate-offsets --execute commits where it now stands onto the target.
    commit_group(&setup.source, &group, &t, &[(0, 50), (1, 60)].into_iter().collect());
    let translation_state = tempfile::tempdir().expect("tempdir");
    let mut translate: Vec<&str> = vec!["--group", &group, "--execute"];
    translate.extend(&as_mirror);
    let translated = setup.translate_offsets(translation_state.path(), &translate);
    granted(&translated);
    points_at([(0, "b0", 10), (1, "b1", 20)], &translated);

    // The drill's failover by the same principal: the mirror fenced, a last checkpoint taken at
    // the source, the group moved to where it stands there (read on meanwhile).
    commit_group(&setup.source, &group, &t, &[(0, 55), (1, 65)].into_iter().collect());
    let mut failover: Vec<&str> = vec!["--source", setup.source.bootstrap(), "--execute"];
    failover.extend(&as_mirror);
    let failed_over = setup.failover(&failover);
    granted(&failed_over);
    points_at([(0, "b0", 15), (1, "c1", 0)], &failed_over);

    // The drill is over, but the principal may not READ the shards' claims just now: the start
    // that is to end the failover stops in one line and copies nothing (it warned and copied,
    // and left the failover in force to refuse the next start without the flag).
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("d{p}"), 0..5)).expect("produce");
    }
    let unreadable =
        AclRule::deny(AclOn::Topic, &format!("kmirror.shards.{}", setup.name), "mirror", AclOp::Read);
    setup.target.create_acls(std::slice::from_ref(&unreadable)).expect("DENY READ on the shards topic");
    let mut resume = extra.clone();
    resume.push("--after-failover");
    let unread = setup.mirror_until_caught_up(&t, &resume);
    let line = stderr(&unread).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
    assert!(
        !unread.status.success()
            && line.as_ref().is_some_and(|l| {
                l.contains(
                    "--after-failover ends the failover its shards' claims record, but reading them failed",
                ) && l.contains("target cluster refused")
                    && l.contains(&format!("kmirror.shards.{}", setup.name))
            }),
        "--after-failover without READ on the claims: {}",
        stderr(&unread)
    );
    let held: Vec<(usize, usize)> =
        setup.audit(&t, PARTITIONS).iter().map(|a| (a.target_records, a.duplicates)).collect();
    assert_eq!(held, vec![(75, 0); PARTITIONS as usize], "nothing copied by the run that could not resume");
    setup.target.delete_acls(&[unreadable]).expect("the DENY taken back");
    granted(&setup.mirror_until_caught_up(&t, &resume));
    setup.assert_exactly_once(&t, PARTITIONS, Some(80));
    // The failover ended: the next start needs no flag.
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("e{p}"), 0..3)).expect("produce");
    }
    granted(&setup.mirror_until_caught_up(&t, &extra));
    setup.assert_exactly_once(&t, PARTITIONS, Some(83));
}

/// The same documented rules for a copy under another name (`--rename prefix:dr`): every
/// target-side rule names the copy, none the source topic's name, and a run copies exactly once,
/// moves the group to the copy, resumes, and `translate-offsets --execute` cuts the group over,
/// with no call refused.
#[test]
fn a_renamed_mirror_holding_only_the_documented_acls_copies_exactly_once_and_resumes() {
    let Some(setup) = secured_setup("leastrn") else { return };
    const PARTITIONS: i32 = 2;
    let t = topic("leastrn");
    let copy = format!("dr.{t}");
    let group = format!("{t}-app");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("a{p}"), 0..30)).expect("produce");
    }
    commit_group(&setup.source, &group, &t, &[(0, 20), (1, 12)].into_iter().collect());
    let (on_source, on_target) = least_privilege(&setup.name, &t, &copy, &group);
    assert!(on_target.iter().all(|r| r.name != t), "no target rule names the source topic");
    setup.source.create_acls(&on_source).expect("source ACLs");
    setup.target.create_acls(&on_target).expect("target ACLs");
    let login = logged_in_as("mirror");
    let as_mirror: Vec<&str> = login.iter().map(String::as_str).collect();
    let mut extra: Vec<&str> = vec!["--rename", "prefix:dr", "--groups", &group, "--sync-group-offsets"];
    extra.extend(&as_mirror);
    let exactly_once = |per_partition: usize| {
        for audit in audit_mirror(&setup.source, &t, &setup.target, &copy, PARTITIONS).expect("audit") {
            assert_eq!(
                (audit.source_records, audit.target_records, audit.duplicates, audit.missing),
                (per_partition, per_partition, 0, 0),
                "{audit:?}"
            );
            assert!(audit.identical, "{audit:?}");
        }
    };
    let points_at = |expected: [(i32, &str, usize); 2], said: &Output| {
        let positions = group_offsets(&setup.target, &group, &copy, PARTITIONS);
        for (p, prefix, index) in expected {
            let at = positions[&p].unwrap_or_else(|| {
                panic!("group {group} has no position on {copy} in {p}; kmirror said:\n{}", stderr(said))
            });
            let record = keyed(prefix, index..index + 1).remove(0);
            assert_eq!(key_at(&setup.target, &copy, p, at), record.key, "partition {p}: target offset {at}");
        }
    };

    let copied = setup.mirror_until_caught_up(&t, &extra);
    granted(&copied);
    exactly_once(30);
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), None, "nothing under the source's name");
    points_at([(0, "a0", 20), (1, "a1", 12)], &copied);

    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("b{p}"), 0..15)).expect("produce");
    }
    granted(&setup.mirror_until_caught_up(&t, &extra));
    exactly_once(45);

    // The group moved on at the source; the cutover commits where it now stands onto the copy.
    commit_group(&setup.source, &group, &t, &[(0, 40), (1, 31)].into_iter().collect());
    let translation_state = tempfile::tempdir().expect("tempdir");
    let mut translate: Vec<&str> = vec!["--group", &group, "--execute"];
    translate.extend(&as_mirror);
    let translated = setup.translate_offsets(translation_state.path(), &translate);
    granted(&translated);
    points_at([(0, "b0", 10), (1, "b1", 1)], &translated);
}

/// The way back under the same documented rules, sides swapped for the opposite mirror
/// (`NAME-back`, DR -> source): after a failover by the mirror's principal, `failback --execute`
/// prepares the opposite mirror, which copies exactly the DR writes home, and the group goes
/// home at the first record it had not read, with no call refused.
#[test]
fn a_failback_holding_only_the_documented_acls_brings_the_dr_writes_and_the_group_home() {
    let Some(setup) = secured_setup("leastfb") else { return };
    const PARTITIONS: i32 = 2;
    let back = format!("{}-back", setup.name);
    let t = topic("leastfb");
    let group = format!("{t}-app");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("a{p}"), 0..20)).expect("produce");
    }
    commit_group(&setup.source, &group, &t, &[(0, 15), (1, 10)].into_iter().collect());
    let (on_source, on_target) = least_privilege(&setup.name, &t, &t, &group);
    // The opposite mirror reads DR and writes the source.
    let (on_dr, on_home) = least_privilege(&back, &t, &t, &group);
    // Held back at first: the opposite mirror's shadow groups at home.
    let shadow_prefix = format!("kmirror.{back}.");
    let (shadow_rules, on_home): (Vec<AclRule>, Vec<AclRule>) =
        on_home.into_iter().partition(|r| r.on == AclOn::Group && r.prefixed && r.name == shadow_prefix);
    assert_eq!(shadow_rules.len(), 2, "READ and DESCRIBE on the opposite mirror's groups are in the list");
    setup.source.create_acls(&[on_source, on_home].concat()).expect("source ACLs");
    setup.target.create_acls(&[on_target, on_dr].concat()).expect("target ACLs");
    let login = logged_in_as("mirror");
    let as_mirror: Vec<&str> = login.iter().map(String::as_str).collect();
    let mut extra: Vec<&str> = vec!["--groups", &group, "--sync-group-offsets"];
    extra.extend(&as_mirror);
    granted(&setup.mirror_until_caught_up(&t, &extra));
    setup.assert_exactly_once(&t, PARTITIONS, Some(20));
    let mut failover: Vec<&str> = vec!["--source", setup.source.bootstrap(), "--execute"];
    failover.extend(&as_mirror);
    granted(&setup.failover(&failover));

    // Life on DR: producers write there; the group reads 3 of them in partition 0 and still lags
    // in the mirrored records in partition 1.
    for p in 0..PARTITIONS {
        setup.target.produce(&t, p, &keyed(&format!("dr{p}"), 0..7)).expect("produce on DR");
    }
    let dr_records: Vec<_> =
        (0..PARTITIONS).map(|p| setup.target.read_committed_audited(&t, p).expect("read DR")).collect();
    commit_group(
        &setup.target,
        &group,
        &t,
        &[(0, dr_records[0][23].offset), (1, dr_records[1][18].offset)].into_iter().collect(),
    );

    let failback = |more: &[&str]| {
        let mut args: Vec<String> = ["failback", "--target", setup.target.bootstrap(), "--source"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend([setup.source.bootstrap().to_string(), "--name".into(), setup.name.clone()]);
        args.extend(["--state-dir".into(), setup.state_dir.path().join("failback").display().to_string()]);
        args.extend(more.iter().chain(&as_mirror).map(|s| s.to_string()));
        run(&args, Duration::from_secs(120))
    };
    // Refused at once, in one line naming the group and the fix (it waited 45 s, then blamed
    // an open transaction).
    let started = Instant::now();
    let refused = failback(&["--execute"]);
    let line = stderr(&refused).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
    assert!(
        !refused.status.success()
            && line.as_ref().is_some_and(|l| {
                l.contains("source cluster refused reading the committed offsets of group kmirror.")
                    && l.contains(&back)
                    && l.ends_with(
                        "lacks an ACL; grant what README's \"Access a mirror needs\" lists for the source",
                    )
            }),
        "without READ and DESCRIBE on {shadow_prefix}*: {}",
        stderr(&refused)
    );
    assert!(started.elapsed() < Duration::from_secs(30), "refused after {:?}", started.elapsed());
    setup.source.create_acls(&shadow_rules).expect("the held-back rules");
    granted(&failback(&["--execute"]));
    let reverse_state = tempfile::tempdir().expect("tempdir");
    let mut reverse: Vec<String> =
        ["mirror", "--source", setup.target.bootstrap(), "--target"].iter().map(|s| s.to_string()).collect();
    reverse.extend([setup.source.bootstrap().to_string(), "--name".into(), back.clone()]);
    reverse.extend(["--topics".into(), t.clone(), "--until-caught-up".into()]);
    reverse.extend(["--state-dir".into(), reverse_state.path().display().to_string()]);
    reverse.extend(login.iter().cloned());
    granted(&run(&reverse, Duration::from_secs(120)));
    for p in 0..PARTITIONS {
        let home = setup.source.read_committed_audited(&t, p).expect("read the source");
        let keys: Vec<Vec<u8>> = home.iter().map(|r| r.data.key.clone().unwrap_or_default()).collect();
        let mut expected: Vec<Vec<u8>> = (0..20).map(|i| format!("a{p}-{i}").into_bytes()).collect();
        expected.extend((0..7).map(|i| format!("dr{p}-{i}").into_bytes()));
        assert_eq!(keys, expected, "partition {p}: the DR writes home once each, nothing mirrored twice");
    }

    granted(&failback(&["--groups", &group, "--execute"]));
    let positions = group_offsets(&setup.source, &group, &t, PARTITIONS);
    for (p, key) in [(0, "dr0-3"), (1, "a1-18")] {
        let at = positions[&p].unwrap_or_else(|| panic!("group {group} has no position home in {p}"));
        assert_eq!(
            key_at(&setup.source, &t, p, at),
            Some(key.as_bytes().to_vec()),
            "partition {p}: offset {at}"
        );
    }
}

/// A mirrored topic the principal may no longer DESCRIBE on the source (a DENY added after the
/// copy): `translate-offsets` still translates the group's other topic, and names the one it left
/// out, as a consumer's own read of the group leaves it out, instead of failing the whole group.
#[test]
fn translate_offsets_leaves_out_and_names_a_topic_the_principal_may_no_longer_describe() {
    let Some(setup) = secured_setup("leastdeny") else { return };
    let (kept, denied) = (topic("leastkept"), topic("leastdenied"));
    let group = format!("{kept}-app");
    let mut on_source = vec![];
    let mut on_target = vec![];
    for t in [&kept, &denied] {
        setup.source.create_topic(t, 1, &[]).expect("topic");
        setup.source.produce(t, 0, &keyed(t, 0..10)).expect("produce");
        commit_group(&setup.source, &group, t, &[(0, 4)].into_iter().collect());
        let (source, target) = least_privilege(&setup.name, t, t, &group);
        on_source.extend(source);
        on_target.extend(target);
    }
    setup.source.create_acls(&on_source).expect("source ACLs");
    setup.target.create_acls(&on_target).expect("target ACLs");
    let login = logged_in_as("mirror");
    let as_mirror: Vec<&str> = login.iter().map(String::as_str).collect();
    let both = format!("{}|{}", regex::escape(&kept), regex::escape(&denied));
    granted(&setup.mirror_until_caught_up(&both, &as_mirror));

    setup
        .source
        .create_acls(&[AclRule::deny(AclOn::Topic, &denied, "mirror", AclOp::Describe)])
        .expect("the DENY");
    let state = tempfile::tempdir().expect("tempdir");
    let mut args: Vec<&str> = vec!["--group", &group];
    args.extend(&as_mirror);
    let translated = setup.translate_offsets(state.path(), &args);
    assert_success(&translated);
    let rows: serde_json::Value = serde_json::from_slice(&translated.stdout).expect("translate-offsets JSON");
    let topics: Vec<&str> =
        rows.as_array().expect("rows").iter().filter_map(|r| r["source_topic"].as_str()).collect();
    assert_eq!(topics, vec![kept.as_str()], "{rows:#}");
    let said = stderr(&translated);
    assert!(said.contains("left out") && said.contains(&denied), "the topic left out is named:\n{said}");
}

/// `--sync-acls` as a principal holding the documented rules, DESCRIBE on the source's CLUSTER
/// and ALTER on the target's (what README says it needs, nothing more): without either, the run
/// stops in one line naming the side and the rule before any topic is made (a DescribeAcls the
/// source refuses is answered with no rules, which must not read as "nothing to copy"); with
/// both, the source's rules on the topic and the group reach the target and the records are
/// copied once.
#[test]
fn sync_acls_holding_only_the_documented_acls_copies_the_rules_and_is_refused_in_one_line_without_them() {
    let Some(setup) = secured_setup("leastsync") else { return };
    let t = topic("leastsync");
    let group = format!("{t}-app");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("s", 0..25)).expect("produce");
    let alice = vec![
        AclRule::allow(AclOn::Topic, &t, "alice", AclOp::Read),
        AclRule::allow(AclOn::Topic, &t, "alice", AclOp::Describe),
        AclRule::allow(AclOn::Group, &group, "alice", AclOp::Read),
        AclRule::deny(AclOn::Topic, &t, "bob", AclOp::Read),
    ];
    setup.source.create_acls(&alice).expect("the rules to copy");
    let (on_source, on_target) = least_privilege(&setup.name, &t, &t, &group);
    setup.source.create_acls(&on_source).expect("source ACLs");
    setup.target.create_acls(&on_target).expect("target ACLs");
    let login = logged_in_as("mirror");
    let mut args: Vec<&str> = vec!["--groups", &group, "--sync-acls"];
    args.extend(login.iter().map(String::as_str));
    let copied_rules = || -> Vec<AclRule> {
        let mut rules = setup.target.acls().expect("target ACLs");
        rules.retain(|r| r.principal != "User:mirror");
        rules
    };

    // Granted one after the other: each run before the grant stops on the rule it lacks.
    let cluster_rules = [
        (&setup.source, AclOp::Describe, "--sync-acls: source ACLs", "DESCRIBE on its CLUSTER"),
        (&setup.target, AclOp::Alter, "--sync-acls: target ACLs", "ALTER on its CLUSTER"),
    ];
    for (cluster, op, says, fix) in cluster_rules {
        let refused = setup.mirror_until_caught_up(&t, &args);
        let line = stderr(&refused).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
        assert!(
            !refused.status.success() && line.as_ref().is_some_and(|l| l.contains(says) && l.contains(fix)),
            "without {fix}: one line saying \"{says}\" and naming it ({}):\n{}",
            refused.status,
            stderr(&refused)
        );
        assert_eq!(copied_rules(), vec![], "no rule copied by a refused run");
        assert_eq!(setup.target.partition_count(&t).expect("metadata"), None, "no target topic made");
        cluster
            .create_acls(&[AclRule::allow(AclOn::Cluster, "kafka-cluster", "mirror", op)])
            .expect("the cluster rule");
    }

    let out = setup.mirror_until_caught_up(&t, &args);
    granted(&out);
    setup.assert_exactly_once(&t, 1, Some(25));
    let mut expected = alice;
    expected.sort();
    assert_eq!(copied_rules(), expected, "the source's rules on the target; kmirror said:\n{}", stderr(&out));
}
