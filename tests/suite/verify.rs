//! `kmirror verify` proves a clean copy and names the partition and offset of what is wrong.

use crate::common::*;
use kmirror_testcontainers::RecordData;

fn checks(out: &std::process::Output) -> Vec<serde_json::Value> {
    serde_json::from_slice(&out.stdout).expect("json report")
}

#[test]
fn verify_passes_a_clean_copy_and_names_what_went_wrong() {
    let setup = Setup::new();
    let t = topic("verify");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    setup.source.produce_transaction(&t, 0, &keyed("txn", 0..20), true).expect("txn");
    setup.source.produce(&t, 0, &keyed("a", 0..30)).expect("produce");
    setup.source.produce(&t, 1, &keyed("b", 0..25)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let state = tempfile::tempdir().expect("tempdir");

    let out = setup.verify(state.path(), &[]);
    assert_success(&out);
    let report = checks(&out);
    assert_eq!(report.len(), 2, "{report:?}");
    let checked: Vec<i64> = report.iter().map(|c| c["checked"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(checked, vec![50, 25]);
    assert!(report.iter().all(|c| c["source_digest"] == c["target_digest"]), "{report:?}");
    // About 10 of partition 0's 50 records (its 51 offsets hold a commit marker too).
    let sampled = setup.verify(state.path(), &["--sample", "10"]);
    assert_success(&sampled);
    let p0 = checks(&sampled).into_iter().find(|c| c["partition"] == 0).expect("partition 0");
    let checked = p0["checked"].as_i64().unwrap_or(-1);
    assert!((9..=11).contains(&checked), "{p0}");
    assert_eq!((p0["missing"].as_i64(), p0["extra"].as_i64()), (Some(0), Some(0)), "{p0}");

    // A record written to the target behind kmirror's back.
    setup.target.produce(&t, 1, &[RecordData::keyed("intruder", "x")]).expect("produce");
    let out = setup.verify(state.path(), &[]);
    assert!(!out.status.success(), "an extra record must fail verify");
    let report = checks(&out);
    let p1 = report.iter().find(|c| c["partition"] == 1).expect("partition 1");
    assert_eq!(p1["extra"], 1, "{p1}");
    let intruder = setup.target.read_committed_audited(&t, 1).expect("read").last().expect("record").offset;
    assert_eq!(
        p1["first_problem"],
        format!("target offset {intruder}: not a copy of any mirrored source record")
    );
    assert!(stderr(&out).contains("verify failed"), "{}", stderr(&out));

    // The target topic deleted and recreated: every copy is gone.
    setup.target.delete_topic(&t).expect("delete");
    setup.target.create_topic(&t, 2, &[]).expect("recreate");
    let out = setup.verify(state.path(), &[]);
    assert!(!out.status.success());
    let report = checks(&out);
    let p0 = report.iter().find(|c| c["partition"] == 0).expect("partition 0");
    assert_eq!(p0["missing"], 50, "{p0}");
    assert_eq!(p0["first_problem"], "source offset 0: no copy on the target");
}

/// A mirrored partition with nothing in it is verified too: its copy must hold nothing (verify
/// looked only at partitions with copies in the map, and passed a record written into an empty
/// partition's copy).
#[test]
fn verify_checks_the_copies_of_empty_partitions() {
    let setup = Setup::new();
    let t = topic("verifyempty");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..10)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let state = tempfile::tempdir().expect("tempdir");
    let out = setup.verify(state.path(), &[]);
    assert_success(&out);
    let report = checks(&out);
    let checked: Vec<(i64, i64)> = report
        .iter()
        .map(|c| (c["partition"].as_i64().unwrap_or(-1), c["checked"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(checked, vec![(0, 10), (1, 0)], "{report:?}");
    // A record written into the empty partition's copy behind kmirror's back.
    setup.target.produce(&t, 1, &[RecordData::keyed("intruder", "x")]).expect("produce");
    let out = setup.verify(state.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let p1 = checks(&out).into_iter().find(|c| c["partition"] == 1).expect("partition 1");
    assert_eq!(p1["extra"], 1, "{p1}");

    // A mirror whose every topic is empty: its first run keeps its positions, so verify checks
    // the copies (it said "copied nothing yet", exit 2, for good), and only a later run has
    // nothing to do.
    let quiet = Setup::new();
    let q = topic("verifyallempty");
    quiet.source.create_topic(&q, 2, &[]).expect("topic");
    assert_success(&quiet.mirror_until_caught_up(&regex::escape(&q), &[]));
    quiet.target.produce(&q, 0, &[RecordData::keyed("intruder", "x")]).expect("produce");
    let state = tempfile::tempdir().expect("tempdir");
    let out = quiet.verify(state.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let extra: Vec<(i64, i64)> = checks(&out)
        .iter()
        .map(|c| (c["partition"].as_i64().unwrap_or(-1), c["extra"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(extra, vec![(0, 1), (1, 0)]);
    let again = quiet.mirror_until_caught_up(&regex::escape(&q), &[]);
    assert_success(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"), "{}", stderr(&again));
}

/// `--sample N` spreads its checks over the partition's offsets, not its records: a source
/// written one record per transaction has a commit marker at every other offset.
#[test]
fn a_sample_is_spread_over_the_offsets_of_a_sparse_partition() {
    let setup = Setup::new();
    let t = topic("sparse");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    for i in 0..20 {
        setup.source.produce_transaction(&t, 0, &keyed(&format!("one{i}"), 0..1), true).expect("txn");
    }
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let state = tempfile::tempdir().expect("tempdir");
    let out = setup.verify(state.path(), &["--sample", "5"]);
    assert_success(&out);
    let report = checks(&out);
    // 40 offsets, a mark every 8: the records at 0, 8, 16, 24 and 32.
    assert_eq!(report[0]["checked"], 5, "{report:?}");
    assert_eq!((report[0]["missing"].as_i64(), report[0]["extra"].as_i64()), (Some(0), Some(0)));
}

/// `verify` beside a running mirror whose source keeps being written: it reads the mirror's
/// committed position first, then the map and the copies up to it, so every check is of one cut
/// of the copy: nothing missing, nothing extra, whatever commits while it reads. (It read the
/// copies first: those committed before it then read the position counted as missing.)
#[test]
fn verify_beside_a_running_mirror_checks_one_committed_cut() {
    const PARTITIONS: i32 = 2;
    let setup = Setup::new();
    let t = topic("verifylive");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("start{p}"), 0..3_000)).expect("produce");
    }
    let mirror = setup.spawn_mirror(&regex::escape(&t), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while setup.target.partition_count(&t).expect("metadata") != Some(PARTITIONS)
        || setup.audit(&t, PARTITIONS).iter().any(|a| a.target_records < 3_000)
    {
        assert!(std::time::Instant::now() < deadline, "the mirror did not copy the first records");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let writing = std::sync::atomic::AtomicBool::new(true);
    let state = tempfile::tempdir().expect("tempdir");
    let reports: Vec<(bool, Vec<serde_json::Value>, String)> = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut batch = 0;
            while writing.load(std::sync::atomic::Ordering::Relaxed) && batch < 2_000 {
                for p in 0..PARTITIONS {
                    setup.source.produce(&t, p, &keyed(&format!("live{p}-{batch}"), 0..50)).expect("produce");
                }
                batch += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        let reports = (0..3)
            .map(|_| {
                let out = setup.verify(state.path(), &[]);
                (out.status.success(), checks(&out), stderr(&out))
            })
            .collect();
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        reports
    });
    terminate(&mirror);
    assert_success(&mirror.wait_with_output().expect("the mirror's output"));
    for (passed, report, said) in &reports {
        let problems: Vec<(i64, i64, i64, i64)> = report
            .iter()
            .map(|c| {
                let n = |k: &str| c[k].as_i64().unwrap_or(-1);
                (n("partition"), n("missing"), n("extra"), n("differing"))
            })
            .collect();
        assert_eq!(problems, vec![(0, 0, 0, 0), (1, 0, 0, 0)], "{report:#?}\n{said}");
        assert!(passed, "{said}");
        assert!(report.iter().all(|c| c["checked"].as_i64().unwrap_or(0) >= 3_000), "{report:#?}");
    }
    setup.assert_exactly_once(&t, PARTITIONS, None);
}

/// A --topics pattern that selects nothing proves nothing: verify fails naming it (it exited 0,
/// having checked no partition).
#[test]
fn verify_of_no_partition_fails_naming_the_pattern() {
    let setup = Setup::new();
    let t = topic("verifynone");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("k", 0..5)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let state = tempfile::tempdir().expect("tempdir");
    let out = setup.verify(state.path(), &["--topics", "no-such-topic"]);
    let line = stderr(&out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
    assert!(
        out.status.code() == Some(2)
            && line.as_ref().is_some_and(|l| l.contains("matches --topics 'no-such-topic'")),
        "{}",
        stderr(&out)
    );
    assert_success(&setup.verify(state.path(), &["--topics", &regex::escape(&t)]));
}
