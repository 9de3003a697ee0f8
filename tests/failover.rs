//! `kmirror failover`: a disaster-recovery drill end to end on real brokers. Consumers that
//! committed known positions on the source read, on the target after the failover, exactly the
//! records they had not read; the mirror is fenced so nothing lands behind those positions; a
//! group with members on the target is refused by name before anything changes.
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

const PARTITIONS: i32 = 2;
const PER_PARTITION: usize = 100;

fn failover(setup: &Setup, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = ["failover", "--target", setup.target.bootstrap(), "--name", &setup.name]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--state-dir".to_string(), setup.state_dir.path().join("failover").display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    run(&args, Duration::from_secs(120))
}

/// The group's committed positions on the target, and the keys a consumer resuming there reads
/// to the end of each partition (an independent read_committed client).
fn resume_on_target(setup: &Setup, group: &str, topic: &str) -> BTreeMap<i32, (i64, Vec<Vec<u8>>)> {
    let consumer: BaseConsumer = setup
        .target
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    let mut out = BTreeMap::new();
    for element in committed.elements() {
        let rdkafka::Offset::Offset(position) = element.offset() else {
            panic!(
                "group {group} has no position on {topic}/{}: {:?}",
                element.partition(),
                element.offset()
            );
        };
        let reader: BaseConsumer = setup
            .target
            .client_config()
            .set("group.id", format!("reader-{group}"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("reader");
        let mut one = rdkafka::TopicPartitionList::new();
        one.add_partition_offset(topic, element.partition(), rdkafka::Offset::Offset(position)).expect("tpl");
        reader.assign(&one).expect("assign");
        let expected = PER_PARTITION - position as usize;
        let mut keys = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut quiet_until = None;
        while Instant::now() < deadline && quiet_until.is_none_or(|t| Instant::now() < t) {
            if keys.len() >= expected && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + Duration::from_secs(1));
            }
            if let Some(m) = reader.poll(Duration::from_millis(100)) {
                keys.push(m.expect("read").key().map(<[u8]>::to_vec).unwrap_or_default());
            }
        }
        out.insert(element.partition(), (position, keys));
    }
    out
}

#[test]
fn a_failover_drill_moves_every_checkpointed_group_to_its_exact_position() {
    let setup = Setup::new();
    let t = topic("drill");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("p{p}"), 0..PER_PARTITION)).expect("produce");
    }
    let (billing, shipping) = (format!("billing-{}", setup.name), format!("shipping-{}", setup.name));
    let positions: BTreeMap<&str, BTreeMap<i32, i64>> = [
        (billing.as_str(), BTreeMap::from([(0, 40), (1, 70)])),
        (shipping.as_str(), BTreeMap::from([(0, 100), (1, 3)])),
    ]
    .into();
    for (group, offsets) in &positions {
        commit_group(&setup.source, group, &t, offsets);
    }
    let groups = format!("(billing|shipping)-{}", setup.name);
    let mut mirror = setup.spawn_mirror(&t, &["--groups", &groups, "--checkpoint-interval", "1"]);
    // Running, caught up and checkpointed: both groups' checkpoints are on the target.
    let started = Instant::now();
    loop {
        let copied: usize = (0..PARTITIONS)
            .map(|p| setup.target.audit_partition(&t, p).map(|a| a.visible.len()).unwrap_or(0))
            .sum();
        let status = status_json(&setup, false);
        let checkpointed = status["groups"].as_array().map_or(0, Vec::len);
        if copied == PARTITIONS as usize * PER_PARTITION && checkpointed == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "copied {copied}, checkpointed {checkpointed}: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    setup.assert_exactly_once(&t, PARTITIONS, Some(PER_PARTITION));

    // Dry run, from the checkpoints alone (the source is "gone"): the plan, nothing changed.
    let dry = failover(&setup, &["--format", "json"]);
    assert_success(&dry);
    let record: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("json record");
    assert_eq!(record["executed"], false, "{record:#}");
    for row in record["positions"].as_array().expect("positions") {
        let group = row["group"].as_str().expect("group");
        let p = row["source_partition"].as_i64().expect("partition") as i32;
        let expected = positions[group][&p];
        assert_eq!(
            (row["source_offset"].as_i64(), row["target_offset"].as_i64()),
            (Some(expected), Some(expected)),
            "{row}"
        );
    }

    // A consumer of billing still on the target: refused by name, nothing changed.
    let member: BaseConsumer = setup
        .target
        .client_config()
        .set("group.id", &billing)
        .set("enable.auto.commit", "false")
        .create()
        .expect("member");
    member.subscribe(&[&t]).expect("subscribe");
    let joined = Instant::now();
    while member.assignment().map_or(0, |a| a.count()) == 0 {
        member.poll(Duration::from_millis(100));
        assert!(joined.elapsed() < Duration::from_secs(30), "the member never joined");
    }
    let refused = failover(&setup, &["--execute"]);
    assert!(!refused.status.success(), "must be refused: {}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&billing) && stderr(&refused).contains("active member"),
        "{}",
        stderr(&refused)
    );
    drop(member);

    // The drill: fence, commit, and consumers on the target read exactly what they had not read.
    let done = failover(&setup, &["--execute"]);
    assert_success(&done);
    let table = String::from_utf8_lossy(&done.stdout);
    assert!(table.contains("fenced (4 shards)") && table.contains("positions committed"), "{table}");
    for (group, offsets) in &positions {
        for (p, (position, keys)) in resume_on_target(&setup, group, &t) {
            assert_eq!(position, offsets[&p], "{group} partition {p}");
            let expected: Vec<Vec<u8>> =
                (offsets[&p] as usize..PER_PARTITION).map(|i| format!("p{p}-{i}").into_bytes()).collect();
            assert_eq!(keys, expected, "{group} partition {p} reads exactly what it had not read");
        }
    }

    // The fenced mirror writes nothing more: its next transaction fails, and it stops (exit 3).
    setup.source.produce(&t, 0, &keyed("after-", 0..5)).expect("produce");
    let status = wait_exit(&mut mirror, Duration::from_secs(60)).expect("the fenced mirror stops");
    assert_eq!(status.code(), Some(3), "fenced");
    let audit = setup.target.audit_partition(&t, 0).expect("audit");
    assert_eq!(audit.visible.len(), PER_PARTITION, "nothing landed behind the translated positions");
}
