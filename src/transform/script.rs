//! A user script run per record (Rhai): it gets the record as a map and returns it changed, or
//! `()` to drop it. Key, value and header values are BLOBs (bytes). A script sees the headers as
//! a map, the last value of a name repeated in the record (Kafka's `lastHeader`); the record
//! keeps its headers as they were, repeated names and order, but those the script changed
//! (one header of that name, at the first one's place), removed, or added (at the end, by
//! name). The engine is bounded: a
//! script that loops forever or recurses without end fails after a fixed number of operations,
//! and never touches files or the network.
//!
//! ```text
//! fn transform(record) {
//!     // record.topic, record.partition, record.offset: where it came from (read only)
//!     record.value = record.value.as_string().to_upper().to_blob();
//!     record.headers["seen-by"] = "kmirror".to_blob();
//!     if record.offset % 3 == 0 { return (); }   // drop
//!     record
//! }
//! ```
use std::sync::Arc;

use rhai::{Blob, Dynamic, Engine, Map, Scope, AST};

use super::{OwnedRecord, SourcePosition};

/// Operations one call may take: far more than any per-record rewrite needs, few enough that a
/// runaway loop fails within a fraction of a second.
const MAX_OPERATIONS: u64 = 1_000_000;

#[derive(Clone)]
pub(crate) struct Script {
    engine: Arc<Engine>,
    ast: Arc<AST>,
    path: String,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").field("path", &self.path).finish()
    }
}

impl Script {
    pub(crate) fn load(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let mut engine = Engine::new();
        engine.set_max_operations(MAX_OPERATIONS);
        engine.set_max_call_levels(64);
        engine.set_max_expr_depths(64, 64);
        engine.set_max_string_size(64 * 1024 * 1024);
        engine.set_max_array_size(1_000_000);
        engine.set_max_map_size(100_000);
        let script = path.to_string();
        engine.on_print(move |text| tracing::info!(script = %script, "{text}"));
        let ast = engine.compile(&text).map_err(|e| format!("{path}: {e}"))?;
        if !ast.iter_functions().any(|f| f.name == "transform" && f.params.len() == 1) {
            return Err(format!("{path} defines no fn transform(record)"));
        }
        Ok(Self { engine: Arc::new(engine), ast: Arc::new(ast), path: path.to_string() })
    }

    pub(crate) fn apply(
        &self,
        at: SourcePosition<'_>,
        record: OwnedRecord,
    ) -> Result<Option<OwnedRecord>, String> {
        let original = record.headers.clone();
        let input = to_map(at, record);
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.engine.call_fn::<Dynamic>(&mut Scope::new(), &self.ast, "transform", (input,))
        }));
        let out = match call {
            Ok(Ok(out)) => out,
            // Rhai says where a call came from on lines of its own: the error is one line.
            Ok(Err(e)) => {
                let said = e.to_string().lines().map(str::trim).collect::<Vec<_>>().join("; ");
                return Err(format!("script {}: {said}", self.path));
            }
            Err(_) => return Err(format!("script {}: the engine panicked", self.path)),
        };
        if out.is_unit() {
            return Ok(None);
        }
        let map = out.try_cast::<Map>().ok_or_else(|| {
            format!("script {}: transform must return the record or () to drop it", self.path)
        })?;
        let mut out = from_map(map).map_err(|e| format!("script {}: {e}", self.path))?;
        out.headers = merged_headers(original, out.headers);
        Ok(Some(out))
    }
}

fn blob(bytes: Option<Vec<u8>>) -> Dynamic {
    bytes.map_or(Dynamic::UNIT, Dynamic::from_blob)
}

fn to_map(at: SourcePosition<'_>, record: OwnedRecord) -> Map {
    let mut headers = Map::new();
    for (name, value) in record.headers {
        headers.insert(name.into(), blob(value));
    }
    let mut map = Map::new();
    map.insert("key".into(), blob(record.key));
    map.insert("value".into(), blob(record.value));
    map.insert("headers".into(), Dynamic::from_map(headers));
    map.insert("timestamp".into(), record.timestamp.map_or(Dynamic::UNIT, Dynamic::from_int));
    map.insert("topic".into(), at.topic.into());
    map.insert("partition".into(), Dynamic::from_int(i64::from(at.partition)));
    map.insert("offset".into(), Dynamic::from_int(at.offset));
    map
}

/// The record's headers after a script returned `returned` (its map, one value per name) for
/// `original`: each original header whose name the script left with the value it saw stays
/// where it was, repeated names too; a changed name is one header at its first place; names
/// the script removed go; names it added follow, in name order.
fn merged_headers(original: Headers, returned: Headers) -> Headers {
    // What the script saw: the last value of each name.
    let seen: std::collections::HashMap<&str, &Option<Vec<u8>>> =
        original.iter().map(|(name, value)| (name.as_str(), value)).collect();
    let returned: std::collections::BTreeMap<String, Option<Vec<u8>>> = returned.into_iter().collect();
    let mut placed = std::collections::HashSet::new();
    let mut merged = Vec::with_capacity(original.len());
    for (name, value) in &original {
        let Some(now) = returned.get(name) else { continue };
        if seen.get(name.as_str()) == Some(&now) {
            merged.push((name.clone(), value.clone()));
        } else if placed.insert(name.clone()) {
            merged.push((name.clone(), now.clone()));
        }
    }
    for (name, value) in returned {
        if !seen.contains_key(name.as_str()) {
            merged.push((name, value));
        }
    }
    merged
}

type Headers = Vec<(String, Option<Vec<u8>>)>;

fn bytes_of(field: &str, value: Dynamic) -> Result<Option<Vec<u8>>, String> {
    if value.is_unit() {
        return Ok(None);
    }
    if value.is_blob() {
        return Ok(value.try_cast::<Blob>());
    }
    if value.is_string() {
        return Ok(value.into_string().ok().map(String::into_bytes));
    }
    Err(format!("{field} must be a BLOB, a string or ()"))
}

fn from_map(mut map: Map) -> Result<OwnedRecord, String> {
    let mut take = |name: &str| map.remove(name).unwrap_or(Dynamic::UNIT);
    let key = bytes_of("key", take("key"))?;
    let value = bytes_of("value", take("value"))?;
    let timestamp = match take("timestamp") {
        t if t.is_unit() => None,
        t => Some(t.as_int().map_err(|_| "timestamp must be an integer or ()".to_string())?),
    };
    let headers = match take("headers") {
        h if h.is_unit() => Vec::new(),
        h => {
            let h = h.try_cast::<Map>().ok_or("headers must be a map")?;
            let mut out = Vec::with_capacity(h.len());
            for (name, value) in h {
                out.push((name.to_string(), bytes_of(&format!("header {name}"), value)?));
            }
            out
        }
    };
    Ok(OwnedRecord { key, value, headers, timestamp })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(body: &str) -> Script {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.rhai");
        std::fs::write(&path, body).expect("write");
        let loaded = Script::load(path.to_str().expect("path")).expect("compiles");
        drop(dir);
        loaded
    }

    const AT: SourcePosition<'static> = SourcePosition { topic: "orders", partition: 1, offset: 9 };

    fn record() -> OwnedRecord {
        OwnedRecord {
            key: Some(b"k".to_vec()),
            value: Some(b"hello".to_vec()),
            headers: vec![("h".into(), Some(b"1".to_vec()))],
            timestamp: Some(5),
        }
    }

    #[test]
    fn a_script_rewrites_drops_and_sees_the_position() {
        let upper = script("fn transform(r) { r.value = r.value.as_string().to_upper().to_blob(); r.headers[\"at\"] = `${r.topic}/${r.partition}/${r.offset}`; r }");
        let out = upper.apply(AT, record()).expect("runs").expect("kept");
        assert_eq!(out.value.as_deref(), Some(&b"HELLO"[..]));
        assert_eq!(out.header("at"), Some(&b"orders/1/9"[..]));
        assert_eq!((out.key, out.timestamp), (Some(b"k".to_vec()), Some(5)));
        let drop = script("fn transform(r) { if r.offset % 3 == 0 { return (); } r }");
        assert_eq!(drop.apply(AT, record()).expect("runs"), None);
    }

    #[test]
    fn headers_keep_their_order_and_repeats_but_where_the_script_changed_them() {
        let h = |name: &str, value: &str| (name.to_string(), Some(value.as_bytes().to_vec()));
        let with = |headers| OwnedRecord { headers, ..record() };
        let given = vec![h("z", "1"), h("trace", "a"), h("a", "2"), h("trace", "b"), h("gone", "x")];
        let untouched = script("fn transform(r) { r.value = \"v\".to_blob(); r }");
        let out = untouched.apply(AT, with(given.clone())).expect("runs").expect("kept");
        assert_eq!(out.headers, given, "as they were: order and the repeated name");
        let edits = script(
            "fn transform(r) { r.headers.remove(\"gone\"); r.headers[\"a\"] = \"3\".to_blob(); r.headers[\"new\"] = \"n\".to_blob(); r }",
        );
        let out = edits.apply(AT, with(given.clone())).expect("runs").expect("kept");
        assert_eq!(
            out.headers,
            vec![h("z", "1"), h("trace", "a"), h("a", "3"), h("trace", "b"), h("new", "n")]
        );
        let one_trace = script("fn transform(r) { r.headers[\"trace\"] = \"c\".to_blob(); r }");
        let out = one_trace.apply(AT, with(given)).expect("runs").expect("kept");
        assert_eq!(out.headers, vec![h("z", "1"), h("trace", "c"), h("a", "2"), h("gone", "x")]);
    }

    #[test]
    fn a_runaway_or_failing_script_is_an_error_not_a_hang() {
        let looping = script("fn transform(r) { loop { } }");
        let err = looping.apply(AT, record()).expect_err("stopped");
        assert!(err.contains("t.rhai") && err.to_lowercase().contains("operations"), "{err}");
        let throwing = script("fn transform(r) { throw \"bad record\"; }");
        assert!(throwing.apply(AT, record()).expect_err("thrown").contains("bad record"));
        let wrong = script("fn transform(r) { 42 }");
        assert!(wrong.apply(AT, record()).expect_err("type").contains("must return the record"));
    }
}
