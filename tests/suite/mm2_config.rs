//! `--mm2-config`: a MirrorMaker 2 file gives the same mirror as the equivalent flags, compared
//! through `--print-config` (the effective settings, as the mirror would run them).

use std::time::Duration;

use crate::common::*;

/// A dedicated-mode file as MM2 users write it: SASL to the source, a flow with topics and
/// excludes, identity naming, checkpoints and group offset sync.
const MM2_FILE: &str = "\
clusters = prod, dr
prod.bootstrap.servers = prod-1:9092, prod-2:9092
dr.bootstrap.servers = dr-1:9092
prod.security.protocol = SASL_SSL
prod.sasl.mechanism = SCRAM-SHA-512
prod.consumer.fetch.min.bytes = 65536
dr.producer.compression.type = zstd
prod->dr.enabled = true
prod->dr.topics = orders.*, payments
prod->dr.topics.exclude = .*-scratch
dr->prod.enabled = false
groups = billing.*
replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy
sync.group.offsets.enabled = true
emit.checkpoints.interval.seconds = 30
emit.heartbeats.enabled = false
replication.factor = 3
config.properties.exclude = retention.ms, segment.bytes
checkpoints.topic.replication.factor = 3
offset-syncs.topic.replication.factor = 3
exactly.once.source.support = enabled
dedicated.mode.enable.internal.rest = true
";

fn print_config(args: &[&str]) -> String {
    let mut all = vec!["mirror".to_string(), "--print-config".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = run(&all, Duration::from_secs(30));
    assert_success(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_mm2_file_gives_the_same_mirror_as_the_equivalent_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mm2.properties");
    std::fs::write(&path, MM2_FILE).expect("write");
    let state = dir.path().join("state").display().to_string();
    let from_file = print_config(&["--mm2-config", &path.display().to_string(), "--state-dir", &state]);
    let from_flags = print_config(&[
        "--source",
        "prod-1:9092, prod-2:9092",
        "--target",
        "dr-1:9092",
        "--name",
        "prod-to-dr",
        "--topics",
        "(?:orders.*)|(?:payments)",
        "--exclude",
        ".*-scratch",
        "--rename",
        "identity",
        "--groups",
        "billing.*",
        "--sync-group-offsets",
        "--checkpoint-interval",
        "30",
        "--replication-factor",
        "3",
        "--exclude-configs",
        "(?:retention.ms)|(?:segment.bytes)",
        "--set",
        "source.security.protocol=SASL_SSL",
        "--set",
        "source.sasl.mechanism=SCRAM-SHA-512",
        "--set",
        "source.fetch.min.bytes=65536",
        "--set",
        "target.compression.type=zstd",
        "--state-dir",
        &state,
    ]);
    assert_eq!(from_file, from_flags);
    assert!(from_file.contains("name = \"prod-to-dr\""), "{from_file}");
}

#[test]
fn what_mm2_can_do_and_kmirror_cannot_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mm2.properties");
    std::fs::write(&path, format!("{MM2_FILE}groups.exclude = test-.*\n")).expect("write");
    let out = run(
        &["mirror".into(), "--print-config".into(), "--mm2-config".into(), path.display().to_string()],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2), "a configuration error: {}", stderr(&out));
    assert!(stderr(&out).contains("groups.exclude"), "{}", stderr(&out));
}

#[test]
fn mm2_topic_acl_sync_becomes_the_read_only_acl_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mm2.properties");
    let print = |text: String| {
        std::fs::write(&path, text).expect("write");
        let out = run(
            &["mirror".into(), "--print-config".into(), "--mm2-config".into(), path.display().to_string()],
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let on = print(format!("{MM2_FILE}sync.topic.acls.enabled = true\n"));
    assert!(on.contains("sync_acls = \"read-only\""), "{on}");
    let off = print(format!("{MM2_FILE}sync.topic.acls.enabled = false\n"));
    assert!(!off.contains("sync_acls"), "{off}");
}
