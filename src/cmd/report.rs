//! How translated positions are printed: an aligned table, JSON (stable, for scripts) or CSV.
use std::fmt::Write;

use serde::Serialize;

/// One translated position. Field names are part of the JSON output and stay stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    pub(crate) group: String,
    /// "forward" (source -> target) or "reverse" (target -> source).
    pub(crate) direction: &'static str,
    pub(crate) source_topic: String,
    pub(crate) source_partition: i32,
    pub(crate) source_offset: Option<i64>,
    pub(crate) target_topic: String,
    pub(crate) target_partition: i32,
    pub(crate) target_offset: Option<i64>,
    /// End offset of the partition the group moves to (target when forward, source when reverse).
    pub(crate) end_offset: Option<i64>,
    /// Records the group has left to read there after the move.
    pub(crate) lag: Option<i64>,
    /// Why the position is what it is, where that needs saying (records skipped by policy).
    pub(crate) note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Csv,
}

pub(crate) fn render(rows: &[Row], format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into()) + "\n",
        Format::Csv => csv(rows),
        Format::Table => table(rows),
    }
}

fn cells(row: &Row) -> [String; 11] {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    [
        row.group.clone(),
        row.direction.to_string(),
        row.source_topic.clone(),
        row.source_partition.to_string(),
        opt(row.source_offset),
        row.target_topic.clone(),
        row.target_partition.to_string(),
        opt(row.target_offset),
        opt(row.end_offset),
        opt(row.lag),
        row.note.clone().unwrap_or_else(|| "-".into()),
    ]
}

const HEADER: [&str; 11] = [
    "group",
    "direction",
    "source_topic",
    "source_partition",
    "source_offset",
    "target_topic",
    "target_partition",
    "target_offset",
    "end_offset",
    "lag",
    "note",
];

fn table(rows: &[Row]) -> String {
    let all: Vec<Vec<String>> = std::iter::once(crate::ops::table::header(&HEADER))
        .chain(rows.iter().map(|r| cells(r).to_vec()))
        .collect();
    crate::ops::table::aligned(&all)
}

fn csv(rows: &[Row]) -> String {
    let quote = |c: &str| {
        if c.contains([',', '"', '\n']) {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.to_string()
        }
    };
    let mut out = HEADER.join(",") + "\n";
    for row in rows {
        let line: Vec<String> = cells(row).iter().map(|c| quote(if c == "-" { "" } else { c })).collect();
        let _ = writeln!(out, "{}", line.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            group: "billing,eu".into(),
            direction: "forward",
            source_topic: "orders".into(),
            source_partition: 1,
            source_offset: Some(42),
            target_topic: "orders".into(),
            target_partition: 1,
            target_offset: Some(40),
            end_offset: Some(50),
            lag: Some(10),
            note: None,
        }
    }

    #[test]
    fn json_names_are_stable() {
        let json: serde_json::Value = serde_json::from_str(&render(&[row()], Format::Json)).expect("json");
        assert_eq!(json[0]["source_offset"], 42);
        assert_eq!(json[0]["target_offset"], 40);
        assert_eq!(json[0]["lag"], 10);
        assert_eq!(json[0]["direction"], "forward");
    }

    #[test]
    fn csv_quotes_and_table_aligns() {
        let csv = render(&[row()], Format::Csv);
        assert_eq!(csv.lines().nth(1), Some("\"billing,eu\",forward,orders,1,42,orders,1,40,50,10,"));
        let table = render(&[row()], Format::Table);
        assert!(table.lines().next().is_some_and(|l| l.starts_with("group ")), "{table}");
    }
}
