//! Topic naming policies end to end: the renamed target holds an exact copy, and translation,
//! `status` and `verify` follow the mapping; two topics mapped to one target are refused.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use kmirror_testcontainers::{audit_mirror, unique_suffix};

const PARTITIONS: i32 = 3;

fn json_of(args: &[String]) -> serde_json::Value {
    let out = run(args, Duration::from_secs(60));
    assert_success(&out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Mirrors `source_topic` under `policy` with a checkpointed group, then checks the copy under
/// `expected_target`, the group's translation, status and verify.
fn mirror_renamed(setup: &Setup, name: &str, source_topic: &str, policy: &str, expected_target: &str) {
    setup.source.create_topic(source_topic, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup
            .source
            .produce(source_topic, p, &keyed(&format!("{source_topic}-{p}"), 0..400))
            .expect("produce");
    }
    let group = format!("readers-{}", unique_suffix());
    commit_group(&setup.source, &group, source_topic, &BTreeMap::from([(0, 120), (1, 399), (2, 0)]));
    let state = setup.state_dir.path().join(name);
    let mut args = setup.args_with_state(
        source_topic,
        &["--rename", policy, "--groups", &group, "--until-caught-up"],
        state,
    );
    let i = args.iter().position(|a| a == "--name").expect("--name") + 1;
    args[i] = name.to_string();
    assert_success(&run(&args, Duration::from_secs(90)));

    for audit in
        audit_mirror(&setup.source, source_topic, &setup.target, expected_target, PARTITIONS).expect("audit")
    {
        assert_eq!((audit.duplicates, audit.missing, audit.source_records), (0, 0, 400), "{audit:?}");
        assert!(audit.identical, "{audit:?}");
    }
    assert_eq!(
        setup.target.partition_count(source_topic).expect("metadata"),
        None,
        "nothing under the old name"
    );

    let common = |command: &str| -> Vec<String> {
        vec![
            command.into(),
            "--target".into(),
            setup.target.bootstrap().into(),
            "--source".into(),
            setup.source.bootstrap().into(),
            "--name".into(),
            name.into(),
            "--format".into(),
            "json".into(),
        ]
    };
    let mut translate = common("translate-offsets");
    translate.extend(["--group".into(), group.clone(), "--state-dir".into()]);
    translate.push(setup.state_dir.path().join(format!("{name}.translate")).display().to_string());
    let rows = json_of(&translate);
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in rows {
        assert_eq!(row["source_topic"], source_topic);
        assert_eq!(row["target_topic"], expected_target, "{row}");
        // Plain records, no gaps: the copy sits at the same offsets.
        assert_eq!(row["target_offset"], row["source_offset"], "{row}");
    }

    let status = json_of(&common("status"));
    let parts = status["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), PARTITIONS as usize, "{status:#}");
    for p in parts {
        assert_eq!(
            (p["topic"].as_str(), p["target_topic"].as_str()),
            (Some(source_topic), Some(expected_target))
        );
        assert_eq!((p["committed"].as_i64(), p["lag_records"].as_i64()), (Some(400), Some(0)), "{p}");
    }

    let mut verify = common("verify");
    verify.retain(|a| a != "--format" && a != "json");
    verify.extend([
        "--state-dir".into(),
        setup.state_dir.path().join(format!("{name}.verify")).display().to_string(),
    ]);
    let out = run(&verify, Duration::from_secs(90));
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(expected_target),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn prefix_and_regex_policies_mirror_translate_and_report_under_the_new_names() {
    let setup = Setup::new();
    let suffix = unique_suffix();
    let t = format!("orders-{suffix}");
    mirror_renamed(&setup, &format!("p{suffix}"), &t, "prefix:src", &format!("src.{t}"));
    let u = format!("payments-{suffix}");
    mirror_renamed(
        &setup,
        &format!("r{suffix}"),
        &u,
        "regex:payments-(.*)=>mirrored.$1",
        &format!("mirrored.{suffix}"),
    );
}

#[test]
fn two_topics_mapped_to_one_target_are_refused_by_name() {
    let setup = Setup::new();
    let suffix = unique_suffix();
    let (a, b) = (format!("a-{suffix}"), format!("b-{suffix}"));
    for t in [&a, &b] {
        setup.source.create_topic(t, 1, &[]).expect("topic");
    }
    let out = setup
        .mirror_until_caught_up(&format!("(a|b)-{suffix}"), &["--rename", "regex:(?:a|b)-(.*)=>merged-$1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains(&a) && text.contains(&b) && text.contains(&format!("merged-{suffix}")), "{text}");
    assert_eq!(setup.target.partition_count(&format!("merged-{suffix}")).expect("metadata"), None);
}
