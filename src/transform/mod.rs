//! Changing records on the way (MirrorMaker's `--message.handler`): a chain of transforms, each
//! of which may change a record's key, value, headers or timestamp, or drop it. Dropped records
//! leave a gap on the source side of the offset map, so a group positioned in the gap
//! translates to the next record that was kept.
mod filter;
mod headers;
mod origin;
mod script;

use regex::bytes::Regex;

pub(crate) use filter::Filter;
pub(crate) use headers::HeaderEdit;
pub(crate) use origin::Origin;
pub(crate) use script::Script;

use crate::error::{Error, Result};

/// A record as the transforms see it, owning its parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct OwnedRecord {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) timestamp: Option<i64>,
}

impl OwnedRecord {
    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }
}

/// Where a record came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourcePosition<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

#[derive(Debug, Clone)]
pub(crate) enum Transform {
    Filter(Filter),
    Headers(HeaderEdit),
    Origin(Origin),
    Script(Script),
}

impl Transform {
    fn apply(&self, at: SourcePosition<'_>, record: OwnedRecord) -> Result<Option<OwnedRecord>, String> {
        Ok(match self {
            Transform::Filter(f) => f.keeps(&record).then_some(record),
            Transform::Headers(h) => Some(h.apply(record)),
            Transform::Origin(o) => o.apply(at, record),
            Transform::Script(s) => return s.apply(at, record),
        })
    }

    /// Parses one `--transform` value: `filter:drop|keep:key|value|header.NAME=REGEX`,
    /// `headers:add:NAME=VALUE`, `headers:drop:NAME`, `headers:rename:OLD=>NEW`, or
    /// `provenance:ALIAS` (a `kmirror.provenance` header: ALIAS/topic/partition/offset), or
    /// `script:PATH` (a Rhai script with `fn transform(record)`).
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let usage = |why: &str| {
            Error::Usage(format!("--transform '{text}': {why}; see `kmirror mirror --help` for the forms"))
        };
        let (kind, rest) = text.split_once(':').ok_or_else(|| usage("no kind"))?;
        match kind {
            "filter" => Filter::parse(rest).map(Transform::Filter).map_err(|why| usage(&why)),
            "headers" => HeaderEdit::parse(rest).map(Transform::Headers).map_err(|why| usage(&why)),
            "provenance" if !rest.is_empty() => Ok(Transform::Origin(Origin::provenance(rest))),
            "script" if !rest.is_empty() => {
                Script::load(rest).map(Transform::Script).map_err(|why| usage(&why))
            }
            _ => Err(usage("unknown kind (filter, headers, provenance, script)")),
        }
    }
}

/// The transforms of a mirror, applied in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain(Vec<Transform>, bool);

impl Chain {
    pub(crate) fn new(transforms: Vec<Transform>) -> Self {
        Self(transforms, false)
    }

    /// With `--on-transform-error skip`: a record a transform fails on is left out and counted,
    /// instead of stopping the shard.
    pub(crate) fn skipping_errors(mut self, skip: bool) -> Self {
        self.1 = skip;
        self
    }

    pub(crate) fn skips_errors(&self) -> bool {
        self.1
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The record to write, None to drop it, or why a transform failed on it.
    pub(crate) fn apply(
        &self,
        at: SourcePosition<'_>,
        record: OwnedRecord,
    ) -> Result<Option<OwnedRecord>, String> {
        let mut record = record;
        let mut marked = None;
        for (i, t) in self.0.iter().enumerate() {
            match t.apply(at, record)? {
                Some(next) => record = next,
                None => return Ok(None),
            }
            if i == 0 && matches!(t, Transform::Origin(Origin::ActiveActive { .. })) {
                marked = Some(
                    record
                        .headers
                        .iter()
                        .filter(|(k, _)| k == origin::ORIGIN_HEADER)
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        if let Some(marked) = marked {
            origin::keep_marks(&mut record, marked);
        }
        Ok(Some(record))
    }
}

/// A whole-value pattern in which `.` matches a newline too: `.*eu.*` dropped (under `keep`)
/// every value written over several lines, such as pretty-printed JSON.
/// The pattern is checked alone first: `a)|(b` wrapped compiles, and matches by prefix.
pub(crate) fn compile(pattern: &str) -> std::result::Result<Regex, String> {
    let refused =
        |e: String| format!("invalid regex '{pattern}': {}", e.lines().last().unwrap_or_default().trim());
    // Byte patterns too (`(?-u:\xFF)`): the matcher reads values as bytes.
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| refused(e.to_string()))?;
    Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| refused(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, headers: &[(&str, &str)]) -> OwnedRecord {
        OwnedRecord {
            key: Some(key.as_bytes().to_vec()),
            value: Some(b"v".to_vec()),
            headers: headers.iter().map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec()))).collect(),
            timestamp: Some(1),
        }
    }

    const AT: SourcePosition<'static> = SourcePosition { topic: "orders", partition: 2, offset: 41 };

    #[test]
    fn a_pattern_that_is_no_regex_alone_is_refused() {
        // Wrapped, `a)|(b` compiles, and would match every value starting with a.
        let err = compile("a)|(b").expect_err("refused");
        assert!(err.starts_with("invalid regex 'a)|(b'"), "{err}");
        assert!(compile("a|b").is_ok_and(|re| re.is_match(b"b") && !re.is_match(b"ab")));
        assert!(compile("(?-u:\\xFF)").is_ok_and(|re| re.is_match(&[0xFF])), "a byte pattern");
    }

    #[test]
    fn a_chain_applies_in_order_and_stops_at_a_drop() {
        let chain = Chain::new(
            [
                "filter:drop:key=.*-test",
                "headers:rename:trace=>trace-id",
                "headers:add:env=dr",
                "headers:drop:secret",
                "provenance:eu",
            ]
            .iter()
            .map(|t| Transform::parse(t).expect("valid"))
            .collect(),
        );
        assert_eq!(chain.apply(AT, record("a-test", &[])), Ok(None));
        let out =
            chain.apply(AT, record("a", &[("trace", "t1"), ("secret", "x")])).expect("runs").expect("kept");
        let names: Vec<&str> = out.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["trace-id", "env", "kmirror.provenance"]);
        assert_eq!(out.header("kmirror.provenance"), Some(&b"eu/orders/2/41"[..]));
        assert_eq!(out.header("env"), Some(&b"dr"[..]));
    }

    #[test]
    fn transforms_after_the_active_active_step_cannot_take_the_origin_mark_away() {
        let marking =
            Transform::Origin(Origin::ActiveActive { source_alias: "a".into(), target_alias: "b".into() });
        for edit in [
            "headers:drop:kmirror.origin",
            "headers:rename:kmirror.origin=>o",
            "headers:add:kmirror.origin=b",
        ] {
            let chain = Chain::new(vec![marking.clone(), Transform::parse(edit).expect("valid")]);
            let out = chain.apply(AT, record("k", &[("x", "1")])).expect("runs").expect("kept");
            let origins: Vec<Option<&[u8]>> = out
                .headers
                .iter()
                .filter(|(k, _)| k == "kmirror.origin")
                .map(|(_, v)| v.as_deref())
                .collect();
            assert_eq!(origins, vec![Some(&b"a"[..])], "{edit}: {:?}", out.headers);
        }
        let untouched = Chain::new(vec![marking, Transform::parse("headers:add:env=dr").expect("valid")]);
        let out = untouched.apply(AT, record("k", &[("kmirror.origin", "c"), ("x", "1")])).expect("runs");
        let names: Vec<String> = out.expect("kept").headers.into_iter().map(|(k, _)| k).collect();
        // Born on c: its mark stays in place, and the cluster it is copied from is marked after.
        assert_eq!(names, ["kmirror.origin", "x", "kmirror.origin", "env"], "left in place where unchanged");
    }

    #[test]
    fn a_filter_matches_values_written_over_several_lines() {
        let keep = Chain::new(vec![Transform::parse("filter:keep:value=.*eu.*").expect("valid")]);
        let mut json = record("k", &[]);
        json.value = Some(b"{\n  \"region\": \"eu\"\n}".to_vec());
        assert!(keep.apply(AT, json).expect("runs").is_some(), "kept: it names eu");
    }

    #[test]
    fn bad_transforms_are_named() {
        for bad in [
            "",
            "filter",
            "filter:maybe:key=x",
            "filter:drop:key=(",
            "headers:add:novalue",
            "provenance:",
            "script:x",
        ] {
            let err = Transform::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("--transform"), "{err}");
        }
    }
}
