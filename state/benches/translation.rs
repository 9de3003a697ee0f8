//! Translation throughput on a large map, and the map's size per million mirrored records.
//!
//! `cargo bench -p kmirror-state --bench translation` (KMIRROR_BENCH_RUNS sets the map size,
//! default 10 000 000 runs). Writes `bench-results/translation.json` at the workspace root.
//! The baseline, measured in the same run, is the same lookup in an in-memory BTreeMap: the
//! ratio says what RocksDB costs, independent of how busy the machine is.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use kmirror_state::{MapRecord, MapStore, Run, TopicPartition};

/// Records per run, like one transaction's worth of one partition.
const RUN_LEN: u32 = 500;
const LOOKUPS: usize = 1_000_000;

struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) % n
    }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

fn main() {
    let runs: usize =
        std::env::var("KMIRROR_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("map");
    let (store, _) = MapStore::open(&path, "bench").expect("open");
    let source = TopicPartition::new("orders", 0);
    let target = TopicPartition::new("orders", 0);

    // Each run is followed by one commit marker on both sides, as a steady mirror writes.
    let run_at = |i: usize| Run {
        source_start: i as i64 * (i64::from(RUN_LEN) + 1),
        target_start: i as i64 * (i64::from(RUN_LEN) + 2),
        len: RUN_LEN,
    };
    let started = Instant::now();
    let per_record = 1_000;
    let mut map_topic_bytes = 0u64;
    for (n, chunk_start) in (0..runs).step_by(per_record).enumerate() {
        let chunk: Vec<Run> = (chunk_start..(chunk_start + per_record).min(runs)).map(run_at).collect();
        let record = MapRecord::new(source.clone(), target.clone(), chunk);
        store.apply(0, n as i64, &record).expect("apply");
        if n == 0 {
            // A real mirror writes one run per partition per transaction.
            let one = MapRecord::new(source.clone(), target.clone(), vec![run_at(0)]);
            map_topic_bytes = kmirror_state::codec::encode(&one).map(|b| b.len() as u64).unwrap_or(0);
        }
    }
    let load_seconds = started.elapsed().as_secs_f64();
    drop(store);
    let (store, _) = MapStore::open(&path, "bench").expect("reopen");
    let disk = dir_size(&path);
    let records = runs as f64 * f64::from(RUN_LEN);

    let max_source = run_at(runs - 1).source_end();
    let mut rng = Lcg(42);
    let probes: Vec<i64> = (0..LOOKUPS).map(|_| rng.below(max_source as u64) as i64).collect();
    let started = Instant::now();
    let mut answers = Vec::with_capacity(LOOKUPS);
    for &g in &probes {
        answers.push(store.translate(&source, g, None).expect("translate").map(|a| a.offset).unwrap_or(-1));
    }
    let forward_per_s = LOOKUPS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut reverse_answered = 0usize;
    for &g in &probes {
        reverse_answered +=
            usize::from(store.translate_reverse(&target, g, None).expect("translate").is_some());
    }
    assert_eq!(reverse_answered, LOOKUPS, "every reverse lookup has an answer");
    let reverse_per_s = LOOKUPS as f64 / started.elapsed().as_secs_f64();

    // Baseline: the same forward lookup in memory.
    let memory: BTreeMap<i64, Run> = (0..runs).map(|i| (run_at(i).source_start, run_at(i))).collect();
    let started = Instant::now();
    let mut baseline = Vec::with_capacity(LOOKUPS);
    for &g in &probes {
        baseline.push(match memory.range(..=g).next_back() {
            Some((_, r)) if g < r.source_end() => r.target_start + (g - r.source_start),
            _ => memory.range(g..).next().map(|(_, r)| r.target_start).unwrap_or(-1),
        });
    }
    let baseline_per_s = LOOKUPS as f64 / started.elapsed().as_secs_f64();
    let wrong = answers.iter().zip(&baseline).filter(|(a, b)| a != b).count();
    assert_eq!(wrong, 0, "the store and the in-memory baseline must give the same answers");

    let result = serde_json::json!({
        "runs": runs,
        "records_per_run": RUN_LEN,
        "mirrored_records": records,
        "load_seconds": load_seconds,
        "forward_lookups_per_s": forward_per_s,
        "reverse_lookups_per_s": reverse_per_s,
        "in_memory_baseline_lookups_per_s": baseline_per_s,
        "forward_vs_baseline": forward_per_s / baseline_per_s,
        "store_bytes_on_disk": disk,
        "store_bytes_per_million_records": disk as f64 / records * 1e6,
        "map_topic_bytes_per_run": map_topic_bytes,
        "map_topic_bytes_per_million_records": map_topic_bytes as f64 / f64::from(RUN_LEN) * 1e6,
        "answers_checked_against_baseline": LOOKUPS,
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results");
    let _ = std::fs::create_dir_all(&out);
    std::fs::write(
        out.join("translation.json"),
        serde_json::to_string_pretty(&result).unwrap_or_default() + "\n",
    )
    .expect("write results");
}
