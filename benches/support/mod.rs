//! What the benchmarks share: workloads, loading the source, watching records land on the
//! target, and measuring CPU and memory.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kmirror_testcontainers::{KafkaCluster, RecordData};
use nix::sys::resource::{getrusage, UsageWho};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

pub const TOPIC: &str = "bench";

pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Clone)]
pub struct Workload {
    pub name: String,
    pub records: usize,
    pub value_bytes: usize,
    pub partitions: i32,
}

impl Workload {
    /// The records loaded: the same count in every partition.
    pub fn loaded(&self) -> usize {
        self.records / self.partitions as usize * self.partitions as usize
    }
}

#[derive(Debug)]
pub struct Measure {
    pub seconds: f64,
    /// The time every record needs at the steady rate (see [`steady`]).
    pub steady_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: Option<u64>,
    pub target_records: usize,
}

/// Reads the target's partitions as a read_committed consumer would and notes when the first
/// records become readable and when `expected` have: for a transactional copy, a record lands
/// when its transaction commits.
pub struct Landing {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Landed>,
}

/// What a [`Landing`] watcher saw.
#[derive(Debug, Clone, Copy)]
pub struct Landed {
    /// When every partition had records readable, and how many had landed by then.
    pub first: Option<(Instant, usize)>,
    /// When every expected record had been read.
    pub last: Option<Instant>,
    pub expected: usize,
}

impl Landing {
    /// Watches a topic the copy writes from the start (it may not exist yet).
    pub fn watch(target: &KafkaCluster, partitions: i32, expected: usize) -> Self {
        Self::watch_from(target, &vec![Offset::Beginning; partitions as usize], expected)
    }

    /// Watches from `from[p]` in each partition p: `expected` records more are waited for.
    pub fn watch_from(target: &KafkaCluster, from: &[Offset], expected: usize) -> Self {
        let consumer: BaseConsumer = target
            .client_config()
            .set("group.id", "bench-landing")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "20")
            .set("topic.metadata.refresh.interval.ms", "200")
            .create()
            .expect("landing consumer");
        let partitions = from.len();
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in from.iter().enumerate() {
            tpl.add_partition_offset(TOPIC, p as i32, *offset).expect("tpl");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut assigned = false;
            let (mut first, mut last) = (None, None::<Instant>);
            let mut landed = 0usize;
            let mut started = vec![false; partitions];
            while !stopping.load(Ordering::Relaxed) && last.is_none() {
                if !assigned {
                    // The topic may not exist yet (kmirror creates it).
                    assigned = consumer.assign(&tpl).is_ok();
                }
                // Everything queued is read before the count is looked at (bounded, so that
                // a stop is seen): looking after each record let the watcher fall behind.
                let draining = Instant::now();
                let mut wait = Duration::from_millis(10);
                while let Some(read) = consumer.poll(wait) {
                    if let Ok(record) = read {
                        landed += 1;
                        if let Some(seen) = started.get_mut(record.partition() as usize) {
                            *seen = true;
                        }
                    }
                    wait = Duration::ZERO;
                    if draining.elapsed() > Duration::from_millis(50) {
                        break;
                    }
                }
                if first.is_none() && started.iter().all(|&s| s) {
                    first = Some((Instant::now(), landed));
                }
                if landed >= expected {
                    last = Some(Instant::now());
                }
            }
            Landed { first, last, expected }
        });
        Self { stop, handle }
    }

    /// True once the watcher has seen every record land (it then stops by itself).
    pub fn done(&self) -> bool {
        self.handle.is_finished()
    }

    /// [`Self::finish`] once the watcher has seen every record land, or `limit` has passed: a
    /// copier may exit before the watcher's next fetch tells it of the last records, and
    /// stopping it then would leave the steady rate unmeasured.
    pub fn finish_within(self, limit: Duration) -> Landed {
        let started = Instant::now();
        while !self.done() && started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.finish()
    }

    /// What the watcher saw until now.
    pub fn finish(self) -> Landed {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("landing thread")
    }
}

impl Landed {
    /// When the first records landed.
    pub fn first_at(&self) -> Option<Instant> {
        self.first.map(|(at, _)| at)
    }
}

/// The time the whole copy needs at the rate records landed from the moment every partition had
/// records readable to the last record: `fallback` (the wall time) if either was not seen. The
/// records already there then are left out of that rate: they took time before it (a
/// transactional copy shows each shard's first transaction at once), and counting them, or
/// starting at the first partition's first records, flattered kmirror by up to a transaction per
/// shard.
pub fn steady(landed: &Landed, fallback: f64) -> f64 {
    match (landed.first, landed.last) {
        (Some((a, at_first)), Some(b)) if b > a && at_first < landed.expected => {
            let rate = (landed.expected - at_first) as f64 / (b - a).as_secs_f64();
            landed.expected as f64 / rate
        }
        _ => fallback,
    }
}

pub fn load(source: &KafkaCluster, w: &Workload) {
    source.create_topic(TOPIC, w.partitions, &[]).expect("source topic");
    load_more(source, w);
}

/// The workload's records appended to the bench topic (made by [`load`]).
pub fn load_more(source: &KafkaCluster, w: &Workload) {
    load_into(source, TOPIC, w);
}

/// The workload's records appended to `topic` (which exists).
pub fn load_into(source: &KafkaCluster, topic: &str, w: &Workload) {
    let per_partition = w.records / w.partitions as usize;
    let value = vec![b'x'; w.value_bytes];
    for p in 0..w.partitions {
        let mut batch = Vec::with_capacity(10_000);
        for i in 0..per_partition {
            batch.push(RecordData {
                key: Some(format!("key-{p}-{i}").into_bytes()),
                value: Some(value.clone()),
                headers: vec![
                    ("trace".into(), Some(b"0123456789abcdef".to_vec())),
                    ("source".into(), Some(b"bench".to_vec())),
                ],
                timestamp: None,
            });
            if batch.len() == 10_000 {
                source.produce(topic, p, &batch).expect("load");
                batch.clear();
            }
        }
        source.produce(topic, p, &batch).expect("load");
    }
}

pub fn cpu_seconds(who: UsageWho) -> f64 {
    getrusage(who)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

pub fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// End-to-end latency through a copier that is already running: records produced to `topic` at
/// `rate` per second for `seconds`; a read_committed consumer on the target, reading from
/// `from(partition)` (an offset resolved before the first record is produced: `Offset::End`
/// would be resolved at the first fetch, after some records), compares each record's source
/// timestamp with the time it reads it. Returns the latencies in ms, one per record read.
pub fn latencies_from(
    source: &KafkaCluster,
    target: &KafkaCluster,
    topic: &str,
    partitions: i32,
    rate: usize,
    seconds: u64,
    from: impl Fn(i32) -> Offset,
) -> Vec<f64> {
    latencies_on_both_sides(source, target, topic, partitions, rate, seconds, from, false).0
}

/// [`latencies_from`], and with `on_source` also the copier's own share: a read_committed
/// consumer on the source (reading from the same offsets: for a copy that keeps offsets) notes
/// when each record became readable there, and the second list holds, per record, the time from
/// then to its copy being read on the target. A pause of the source broker or of the producer
/// then shows in the first list only.
#[allow(clippy::too_many_arguments)]
pub fn latencies_on_both_sides(
    source: &KafkaCluster,
    target: &KafkaCluster,
    topic: &str,
    partitions: i32,
    rate: usize,
    seconds: u64,
    from: impl Fn(i32) -> Offset,
    on_source: bool,
) -> (Vec<f64>, Vec<f64>) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let total = rate * seconds as usize;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, from(p)).expect("tpl");
    }
    let read_on = |cluster: &KafkaCluster| {
        let consumer: BaseConsumer = cluster
            .client_config()
            .set("group.id", "bench-latency")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            .create()
            .expect("latency consumer");
        consumer.assign(&tpl).expect("assign");
        std::thread::spawn(move || read_times(&consumer, total, seconds))
    };
    let reader = read_on(target);
    let source_reader = on_source.then(|| read_on(source));
    let producer: ThreadedProducer<DefaultProducerContext> =
        source.client_config().set("linger.ms", "5").create().expect("producer");
    let per_tick = (rate / 100).max(1);
    let ticks = seconds * 100;
    let value = vec![b'x'; 100];
    let begin = Instant::now();
    for tick in 0..ticks {
        for i in 0..per_tick {
            let key = format!("k{tick}-{i}");
            let partition = (i % partitions as usize) as i32;
            let mut record =
                BaseRecord::<str, [u8]>::to(topic).partition(partition).key(&key).payload(&value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        let next = begin + Duration::from_millis(10 * (tick + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    let on_target = reader.join().expect("reader");
    let end_to_end = on_target.iter().map(|(_, read, ts)| (read - ts) as f64).collect();
    let Some(source_reader) = source_reader else { return (end_to_end, Vec::new()) };
    let on_source: std::collections::HashMap<Vec<u8>, i64> =
        source_reader.join().expect("source reader").into_iter().map(|(key, read, _)| (key, read)).collect();
    let added = on_target
        .iter()
        .filter_map(|(key, read, _)| on_source.get(key).map(|on_source| (read - on_source) as f64))
        .collect();
    (end_to_end, added)
}

/// (key, when read in ms since the epoch, source timestamp) of each record read, until `total`.
fn read_times(consumer: &BaseConsumer, total: usize, seconds: u64) -> Vec<(Vec<u8>, i64, i64)> {
    use std::time::{SystemTime, UNIX_EPOCH};
    let mut read = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    while read.len() < total && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
            if let Some(ts) = m.timestamp().to_millis() {
                read.push((m.key().unwrap_or_default().to_vec(), now, ts));
            }
        }
    }
    read
}

/// (p50, p99) of `latencies`.
pub fn percentiles(mut latencies: Vec<f64>) -> (f64, f64) {
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    (pick(0.50), pick(0.99))
}

/// `bench-results/` of the workspace, made if missing.
pub fn results_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Writes `results` to `bench-results/FILE`.
pub fn write_json(file: &str, results: &[serde_json::Value]) {
    std::fs::write(
        results_dir().join(file),
        serde_json::to_string_pretty(results).unwrap_or_default() + "\n",
    )
    .expect("write json");
}

/// Puts `table` between `<!-- MARKER:start -->` and `<!-- MARKER:end -->` in BENCHMARKS.md.
pub fn write_table(marker: &str, table: &str) {
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let Ok(text) = std::fs::read_to_string(&doc) else { return };
    let (start, end) = (format!("<!-- {marker}:start -->"), format!("<!-- {marker}:end -->"));
    if let (Some(a), Some(b)) = (text.find(&start), text.find(&end)) {
        std::fs::write(&doc, format!("{}{start}\n{table}{}", &text[..a], &text[b..]))
            .expect("write BENCHMARKS.md");
    }
}

impl Measure {
    /// Records per second, (wall, steady).
    pub fn rates(&self) -> (f64, f64) {
        (self.target_records as f64 / self.seconds, self.target_records as f64 / self.steady_seconds)
    }
}
