//! Live progress of a run. A batch (--until-caught-up) on a terminal gets bars: one for the
//! whole batch and, with --progress partitions, one per topic. Anywhere else progress is a plain
//! log line every few seconds, so cron mail and CI logs stay readable.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use tracing::info;

use crate::config::ProgressMode;
use crate::ops::telemetry::{PartitionProgress, Telemetry};
use crate::ops::terminal::{bars, stderr_is_terminal};

/// How often the bars and lines are brought up to date.
const DRAW_EVERY: Duration = Duration::from_millis(100);
const BAR_TEMPLATE: &str =
    "{prefix:>12} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} records {msg} ({per_sec}, ETA {eta})";

pub(crate) struct ProgressView {
    mode: ProgressMode,
    bars: Option<Bars>,
    line_every: Duration,
    next_line: Instant,
    next_draw: Instant,
}

struct Bars {
    overall: ProgressBar,
    topics: BTreeMap<String, ProgressBar>,
}

#[derive(Default)]
struct Totals {
    records: u64,
    bytes: u64,
    backlog: u64,
    lag: Option<i64>,
}

fn totals<'a>(parts: impl Iterator<Item = &'a PartitionProgress>) -> Totals {
    let mut t = Totals { lag: Some(0), ..Totals::default() };
    for p in parts {
        t.records += p.records;
        t.bytes += p.bytes;
        t.backlog += p.backlog_at_start().unwrap_or(0) as u64;
        t.lag = match (t.lag, p.lag()) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    t
}

impl ProgressView {
    /// Bars only for a batch on a terminal; a long-running mirror logs a line every 30 s.
    pub(crate) fn new(mode: ProgressMode, batch: bool) -> Self {
        let use_bars = batch && mode != ProgressMode::Off && stderr_is_terminal();
        let line_every = if batch { Duration::from_secs(3) } else { Duration::from_secs(30) };
        let bars = use_bars.then(|| Bars { overall: add_bar("all topics"), topics: BTreeMap::new() });
        Self { mode, bars, line_every, next_line: Instant::now(), next_draw: Instant::now() }
    }

    pub(crate) fn tick(&mut self, telemetry: &Telemetry) {
        // The caller ticks more often than anything is worth drawing.
        if self.mode == ProgressMode::Off || Instant::now() < self.next_draw {
            return;
        }
        self.next_draw = Instant::now() + DRAW_EVERY;
        let snapshot = telemetry.snapshot();
        let mut by_topic: BTreeMap<&str, Vec<&PartitionProgress>> = BTreeMap::new();
        for (tp, p) in &snapshot {
            by_topic.entry(tp.topic.as_str()).or_default().push(p);
        }
        let all = totals(snapshot.values());
        if let Some(bars) = &mut self.bars {
            update(&bars.overall, &all);
            if self.mode == ProgressMode::Partitions {
                for (topic, parts) in &by_topic {
                    let bar = bars.topics.entry(topic.to_string()).or_insert_with(|| add_bar(topic));
                    update(bar, &totals(parts.iter().copied()));
                }
            }
            return;
        }
        if Instant::now() < self.next_line {
            return;
        }
        self.next_line = Instant::now() + self.line_every;
        let elapsed = telemetry.elapsed();
        log_line("all topics", &all, elapsed);
        if self.mode == ProgressMode::Partitions {
            for (topic, parts) in &by_topic {
                log_line(topic, &totals(parts.iter().copied()), elapsed);
            }
        }
    }

    /// Takes the bars off the screen (or logs a last line) before the summary is printed.
    pub(crate) fn finish(&mut self, telemetry: &Telemetry) {
        if self.bars.is_none() {
            self.next_line = Instant::now();
            self.next_draw = Instant::now();
            self.tick(telemetry);
        }
        if let Some(bars) = self.bars.take() {
            for bar in bars.topics.values().chain(std::iter::once(&bars.overall)) {
                bar.finish();
            }
            let _ = crate::ops::terminal::bars().clear();
        }
    }
}

fn add_bar(prefix: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(BAR_TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = bars().add(ProgressBar::new(0).with_style(style).with_prefix(prefix.to_string()));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn update(bar: &ProgressBar, t: &Totals) {
    bar.set_length(t.backlog.max(t.records));
    bar.set_position(t.records);
    bar.set_message(HumanBytes(t.bytes).to_string());
}

fn log_line(what: &str, t: &Totals, elapsed: Duration) {
    let rate = t.records as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = match t.lag {
        Some(lag) if rate > 0.0 => HumanDuration(Duration::from_secs_f64(lag as f64 / rate)).to_string(),
        Some(0) => "0 seconds".to_string(),
        _ => "unknown".to_string(),
    };
    let lag = t.lag.map_or_else(|| "unknown".to_string(), |l| l.to_string());
    info!(
        scope = what,
        records = t.records,
        of = t.backlog,
        bytes = %HumanBytes(t.bytes),
        rate = format!("{rate:.0} rec/s"),
        lag = %lag,
        eta = %eta,
        "progress"
    );
}
