//! Keeps or drops records whose key, value or a header matches a whole-value regex.
use regex::bytes::Regex;

use super::{compile, OwnedRecord};

#[derive(Debug, Clone)]
enum Field {
    Key,
    Value,
    Header(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Filter {
    drop_on_match: bool,
    field: Field,
    pattern: Regex,
}

impl Filter {
    /// `drop|keep:key|value|header.NAME=REGEX`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (action, rule) = text.split_once(':').ok_or("a filter needs drop: or keep:")?;
        let drop_on_match = match action {
            "drop" => true,
            "keep" => false,
            _ => return Err("a filter is drop:... or keep:...".into()),
        };
        let (field, pattern) = rule.split_once('=').ok_or("a filter needs FIELD=REGEX")?;
        let field = match field {
            "key" => Field::Key,
            "value" => Field::Value,
            other => match other.strip_prefix("header.") {
                Some(name) if !name.is_empty() => Field::Header(name.to_string()),
                _ => return Err(format!("unknown field '{other}' (key, value or header.NAME)")),
            },
        };
        Ok(Self { drop_on_match, field, pattern: compile(pattern)? })
    }

    pub(crate) fn keeps(&self, record: &OwnedRecord) -> bool {
        let subject = match &self.field {
            Field::Key => record.key.as_deref(),
            Field::Value => record.value.as_deref(),
            Field::Header(name) => record.header(name),
        };
        let matches = subject.is_some_and(|s| self.pattern.is_match(s));
        matches != self.drop_on_match
    }
}
