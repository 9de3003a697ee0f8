//! The RocksDB map against a brute-force model: exact answers forward and reverse, aborted
//! transactions superseded, pending runs ignored, and a store that survives reopening.
use kmirror_state::{MapRecord, MapStore, Opened, Run, Skipped, StateError, TopicPartition};
use proptest::prelude::*;

fn source() -> TopicPartition {
    TopicPartition::new("orders", 2)
}

fn target() -> TopicPartition {
    TopicPartition::new("dr.orders", 2)
}

/// Runs with gaps on both sides, in order, as one mirror would write them.
fn runs_strategy() -> impl Strategy<Value = Vec<Run>> {
    prop::collection::vec((0i64..5, 0i64..5, 1u32..6), 1..25).prop_map(|parts| {
        let (mut s, mut t) = (0i64, 0i64);
        parts
            .into_iter()
            .map(|(source_gap, target_gap, len)| {
                s += source_gap;
                t += target_gap;
                let run = Run { source_start: s, target_start: t, len };
                s += i64::from(len);
                t += i64::from(len);
                run
            })
            .collect()
    })
}

/// The model: every mirrored (source, target) pair.
fn pairs(runs: &[Run]) -> Vec<(i64, i64)> {
    runs.iter()
        .flat_map(|r| (0..i64::from(r.len)).map(move |i| (r.source_start + i, r.target_start + i)))
        .collect()
}

fn brute_forward(runs: &[Run], g: i64) -> Option<i64> {
    let p = pairs(runs);
    p.iter().find(|(s, _)| *s >= g).map(|(_, t)| *t).or_else(|| p.last().map(|(_, t)| t + 1))
}

fn brute_reverse(runs: &[Run], t: i64) -> Option<i64> {
    let p = pairs(runs);
    p.iter().find(|(_, tt)| *tt >= t).map(|(s, _)| *s).or_else(|| p.last().map(|(s, _)| s + 1))
}

fn store_with(runs: &[Run], per_record: usize) -> (tempfile::TempDir, MapStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, opened) = MapStore::open(&dir.path().join("map"), "dr").expect("open");
    assert_eq!(opened, Opened::Created);
    for (i, chunk) in runs.chunks(per_record.max(1)).enumerate() {
        let record = MapRecord::new(source(), target(), chunk.to_vec());
        store.apply(0, i as i64, &record).expect("apply");
    }
    (dir, store)
}

proptest! {
    #[test]
    fn translation_equals_brute_force_both_ways(runs in runs_strategy(), per_record in 1usize..4) {
        let (_dir, store) = store_with(&runs, per_record);
        let max_source = runs.last().map(|r| r.source_end()).unwrap_or(0) + 3;
        let max_target = runs.last().map(|r| r.target_end()).unwrap_or(0) + 3;
        for g in 0..max_source {
            let got = store.translate(&source(), g, None).expect("translate").map(|a| a.offset);
            prop_assert_eq!(got, brute_forward(&runs, g), "forward g={}", g);
        }
        for t in 0..max_target {
            let got = store.translate_reverse(&target(), t, None).expect("translate").map(|a| a.offset);
            prop_assert_eq!(got, brute_reverse(&runs, t), "reverse t={}", t);
        }
        let exact: std::collections::HashMap<i64, i64> = pairs(&runs).into_iter().collect();
        for g in 0..max_source {
            let got = store.copy_of(&source(), g, None).expect("copy_of");
            prop_assert_eq!(got, exact.get(&g).copied(), "copy_of g={}", g);
        }
    }

    #[test]
    fn aborted_then_remirrored_ranges_answer_as_the_committed_ones(
        runs in runs_strategy(),
        cut in 0usize..25,
        shift in 1i64..50,
    ) {
        // A transaction covering runs[cut..] aborted (its records sit at higher target offsets
        // on the target); the same source range was then mirrored again and committed, past
        // every aborted record: a partition's log never gives one offset to two records.
        let cut = cut.min(runs.len() - 1);
        let committed_before: Vec<Run> = runs[..cut].to_vec();
        let aborted: Vec<Run> = runs[cut..]
            .iter()
            .map(|r| Run { source_start: r.source_start, target_start: r.target_start + 1000, len: r.len + 1 })
            .collect();
        let after_aborted = aborted.last().map(|r| r.target_end()).unwrap_or(1000);
        let remirrored: Vec<Run> = runs[cut..]
            .iter()
            .map(|r| Run {
                source_start: r.source_start,
                target_start: r.target_start + after_aborted + 100 * shift,
                len: r.len,
            })
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = MapStore::open(&dir.path().join("map"), "dr").expect("open");
        let mut offset = 0;
        for runs in [&committed_before, &aborted, &remirrored] {
            if !runs.is_empty() {
                store.apply(0, offset, &MapRecord::new(source(), target(), runs.to_vec())).expect("apply");
                offset += 1;
            }
        }
        let mut truth = committed_before.clone();
        truth.extend(remirrored.iter().copied());
        let max_source = truth.last().map(|r| r.source_end()).unwrap_or(0) + 3;
        for g in 0..max_source {
            let got = store.translate(&source(), g, None).expect("translate").map(|a| a.offset);
            prop_assert_eq!(got, brute_forward(&truth, g), "forward g={}", g);
        }
        let max_target = truth.last().map(|r| r.target_end()).unwrap_or(0) + 3;
        for t in 0..max_target {
            let got = store.translate_reverse(&target(), t, None).expect("translate").map(|a| a.offset);
            prop_assert_eq!(got, brute_reverse(&truth, t), "reverse t={}", t);
        }
    }
}

#[test]
fn runs_beyond_the_committed_position_are_pending_not_answers() {
    let runs = vec![
        Run { source_start: 0, target_start: 0, len: 10 },
        Run { source_start: 11, target_start: 11, len: 5 },
    ];
    let (_dir, store) = store_with(&runs, 1);
    // The shadow group says only source offsets below 11 are committed.
    assert_eq!(store.translate(&source(), 12, Some(11)).expect("t").map(|a| a.offset), Some(10));
    assert_eq!(store.translate(&source(), 12, Some(16)).expect("t").map(|a| a.offset), Some(12));
    assert_eq!(store.translate_reverse(&target(), 13, Some(11)).expect("t").map(|a| a.offset), Some(10));
    let answer = store.translate(&source(), 3, Some(11)).expect("t").expect("answer");
    assert_eq!((answer.partition, answer.offset), (target(), 3));
}

#[test]
fn position_and_answers_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("map");
    {
        let (store, _) = MapStore::open(&path, "dr").expect("open");
        assert_eq!(store.position(0).expect("position"), 0);
        let record = MapRecord {
            source: source(),
            target: target(),
            runs: vec![Run { source_start: 5, target_start: 7, len: 3 }],
            skipped: Vec::new(),
        };
        store.apply(0, 41, &record).expect("apply");
    }
    let (store, opened) = MapStore::open(&path, "dr").expect("reopen");
    assert_eq!(opened, Opened::Existing);
    assert_eq!(store.position(0).expect("position"), 42);
    assert_eq!(store.translate(&source(), 6, None).expect("t").map(|a| a.offset), Some(8));
    assert_eq!(store.source_partitions().expect("list"), vec![source()]);
}

#[test]
fn a_foreign_store_is_refused_and_a_locked_one_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("map");
    let (held, _) = MapStore::open(&path, "dr").expect("open");
    let err = MapStore::open(&path, "dr").err().expect("locked");
    assert!(matches!(err, StateError::Locked { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    drop(held);
    let err = MapStore::open(&path, "other").err().expect("foreign");
    assert!(matches!(err, StateError::Foreign { .. }), "{err}");
}

#[test]
fn a_corrupt_store_is_rebuilt_empty_never_answering_wrongly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("map");
    {
        let (store, _) = MapStore::open(&path, "dr").expect("open");
        let record = MapRecord {
            source: source(),
            target: target(),
            runs: vec![Run { source_start: 0, target_start: 0, len: 3 }],
            skipped: Vec::new(),
        };
        store.apply(0, 0, &record).expect("apply");
    }
    // Garble every file RocksDB keeps.
    for entry in std::fs::read_dir(&path).expect("list") {
        let file = entry.expect("entry").path();
        if file.file_name().is_some_and(|n| n.to_string_lossy().starts_with("MANIFEST") || n == "CURRENT") {
            std::fs::write(&file, b"garbage").expect("garble");
        }
    }
    assert!(matches!(MapStore::open(&path, "dr"), Err(StateError::Corrupt { .. })));
    let (store, opened) = MapStore::open_or_rebuild(&path, "dr").expect("rebuilt");
    assert_eq!(opened, Opened::Rebuilt);
    assert_eq!(store.position(0).expect("position"), 0, "refilled from the map topic's start");
    assert_eq!(store.translate(&source(), 1, None).expect("t"), None);
}

#[test]
fn ranges_skipped_by_policy_are_found_by_overlap_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("map");
    {
        let (store, _) = MapStore::open(&path, "dr").expect("open");
        let copied =
            MapRecord::new(source(), target(), vec![Run { source_start: 0, target_start: 0, len: 10 }]);
        store.apply(0, 0, &copied).expect("apply");
        let gaps = [Skipped { from: 10, to: 25 }, Skipped { from: 40, to: 41 }];
        for (i, gap) in gaps.iter().enumerate() {
            let record = MapRecord { skipped: vec![*gap], ..MapRecord::new(source(), target(), Vec::new()) };
            store.apply(0, 1 + i as i64, &record).expect("apply");
        }
    }
    let (store, opened) = MapStore::open(&path, "dr").expect("reopen");
    assert_eq!(opened, Opened::Existing);
    let within = |from, to| store.skipped_within(&source(), from, to).expect("skipped");
    assert_eq!(within(0, 100), vec![Skipped { from: 10, to: 25 }, Skipped { from: 40, to: 41 }]);
    assert_eq!(within(24, 40), vec![Skipped { from: 10, to: 25 }], "the end is exclusive");
    assert_eq!(within(25, 40), vec![]);
    assert_eq!(within(0, 10), vec![]);
    assert_eq!(store.skipped_at(&source(), 12).expect("at"), Some(Skipped { from: 10, to: 25 }));
    assert_eq!(store.skipped_at(&source(), 9).expect("at"), None);
    assert_eq!(store.skipped_at(&TopicPartition::new("other", 2), 12).expect("at"), None);
    // Translation inside the gap goes to the first copy after it, past the copies before it.
    let answer = store.translate(&source(), 12, None).expect("translate").expect("answer");
    assert_eq!(answer.offset, 10);
}

/// An empty range marks where a partition never copied before starts: it is read (the store's
/// position passes it) but skips nothing, and does not replace a range skipped from there.
#[test]
fn a_start_mark_is_no_skipped_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = MapStore::open(&dir.path().join("map"), "dr").expect("open");
    let with =
        |gap: Skipped| MapRecord { skipped: vec![gap], ..MapRecord::new(source(), target(), Vec::new()) };
    store.apply(0, 0, &with(Skipped { from: 10, to: 25 })).expect("apply");
    store.apply(0, 1, &with(Skipped { from: 10, to: 10 })).expect("apply");
    store.apply(0, 2, &with(Skipped { from: 30, to: 30 })).expect("apply");
    assert_eq!(store.position(0).expect("position"), 3);
    let within = store.skipped_within(&source(), 0, 100).expect("skipped");
    assert_eq!(within, vec![Skipped { from: 10, to: 25 }]);
    assert_eq!(store.skipped_at(&source(), 30).expect("at"), None);
}

#[test]
fn a_cleared_store_keeps_only_its_mirror_and_answers_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("map");
    let (store, _) = MapStore::open(&path, "dr").expect("open");
    let record = MapRecord {
        source: source(),
        target: target(),
        runs: vec![Run { source_start: 5, target_start: 7, len: 3 }],
        skipped: vec![Skipped { from: 0, to: 5 }],
    };
    store.apply(1, 9, &record).expect("apply");
    store.set_map_topic_id("AAAAAAAAAAAAAAAAAAAAAA").expect("id");
    assert_eq!(store.map_topic_id().expect("id").as_deref(), Some("AAAAAAAAAAAAAAAAAAAAAA"));
    store.clear().expect("clear");
    assert_eq!(store.position(1).expect("position"), 0, "read again from the topic's start");
    assert_eq!(store.map_topic_id().expect("id"), None);
    assert_eq!(store.translate(&source(), 6, None).expect("t"), None);
    assert_eq!(store.translate_reverse(&target(), 8, None).expect("t"), None);
    assert!(store.source_partitions().expect("list").is_empty());
    assert!(store.skipped_within(&source(), 0, 10).expect("skipped").is_empty());
    drop(store);
    let (_, opened) = MapStore::open(&path, "dr").expect("the same mirror's store");
    assert_eq!(opened, Opened::Existing);
    assert!(matches!(MapStore::open(&path, "other"), Err(StateError::Foreign { .. })));
}
