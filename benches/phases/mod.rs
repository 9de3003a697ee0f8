//! Where a batch run's wall time goes, phase by phase, read off kmirror's own log (its
//! timestamps are UTC, microseconds) and the bench's watch of the target.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch of a log line's leading RFC 3339 timestamp
/// (`2026-12-02T18:12:21.925946Z ...`), if it has one.
fn line_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (hours, minutes) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let seconds: f64 = t.next()?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hours * 3_600 + minutes * 60) as f64 + seconds)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

/// The first and the last time a line holding `marker` was logged.
fn marker_times(log: &str, marker: &str) -> Option<(f64, f64)> {
    let mut times = log.lines().filter(|l| l.contains(marker)).filter_map(line_time);
    let first = times.next()?;
    Some((first, times.next_back().unwrap_or(first)))
}

/// When a line holding `marker` was first logged (epoch seconds).
pub(crate) fn first_time_of(log: &str, marker: &str) -> Option<f64> {
    marker_times(log, marker).map(|(first, _)| first)
}

/// One phase: its name and how long it took.
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) seconds: f64,
}

/// The phases of one batch run, from the process start (`spawned`, epoch seconds) to its exit
/// (`exited`): the log's "mirror starting" (the plan is made and target topics exist), its last
/// "shard assigned" (every shard fenced, its positions read and its partitions assigned), the
/// first and the last record landed on the target (`first_landed`, `last_landed`, watched
/// there), then the final commit, checkpoint and shutdown.
pub(crate) fn phases(
    log: &str,
    spawned: f64,
    started: Instant,
    first_landed: Option<Instant>,
    last_landed: Option<Instant>,
    exited: f64,
) -> Vec<Phase> {
    let at = |i: Option<Instant>| i.map(|i| spawned + (i - started).as_secs_f64());
    let planned = first_time_of(log, "mirror starting");
    let assigned = marker_times(log, "shard assigned").map(|(_, last)| last);
    let points = [Some(spawned), planned, assigned, at(first_landed), at(last_landed), Some(exited)];
    let names = [
        "process start to plan made (connect, metadata, target topics, source ends)",
        "plan made to every shard assigned (fencing, shadow positions, assignment)",
        "every shard assigned to first record landed (first fetch, first transaction)",
        "first record landed to last (the steady copy)",
        "last record landed to exit (last commit, checkpoint, shutdown)",
    ];
    let mut out = Vec::new();
    let mut from = spawned;
    for (name, point) in names.iter().zip(points.iter().skip(1)) {
        // A point the log did not show folds its phase into the next.
        let Some(to) = *point else { continue };
        out.push(Phase { name, seconds: (to - from).max(0.0) });
        from = to;
    }
    out
}
