//! Which source topics are mirrored.
use regex::Regex;

use crate::error::{Error, Result};

/// Prefixes of topics that are never mirrored unless the include pattern names them.
const PROTECTED_PREFIXES: &[&str] = &["__", super::names::OWN_PREFIX];

#[derive(Debug, Clone)]
pub(crate) struct TopicSelector {
    include: Regex,
    exclude: Option<Regex>,
    include_source: String,
    exclude_source: String,
}

impl TopicSelector {
    pub(crate) fn new(include: &str, exclude: Option<&str>) -> Result<Self> {
        let compile = |flag: &'static str, pattern: &str| {
            Regex::new(&format!("^(?:{pattern})$")).map_err(|e| Error::Regex {
                flag,
                pattern: pattern.to_string(),
                message: e.to_string().lines().last().unwrap_or_default().trim().to_string(),
            })
        };
        Ok(Self {
            include: compile("--topics", include)?,
            exclude: exclude.map(|p| compile("--exclude", p)).transpose()?,
            include_source: include.to_string(),
            exclude_source: exclude.unwrap_or_default().to_string(),
        })
    }

    pub(crate) fn matches(&self, topic: &str) -> bool {
        if !self.include.is_match(topic) || self.exclude.as_ref().is_some_and(|e| e.is_match(topic)) {
            return false;
        }
        match PROTECTED_PREFIXES.iter().find(|p| topic.starts_with(*p)) {
            // Internal topics only when the pattern itself names their prefix (e.g. `__audit`
            // or `orders|__audit`), never through a wildcard like `.*`.
            Some(prefix) => self.include_source.replace('\\', "").contains(prefix),
            None => true,
        }
    }

    /// The include and exclude patterns as given.
    pub(crate) fn patterns(&self) -> (&str, &str) {
        (&self.include_source, &self.exclude_source)
    }

    pub(crate) fn no_topics_error(&self) -> Error {
        Error::NoTopics { pattern: self.include_source.clone(), exclude: self.exclude_source.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_names_match_and_internal_topics_stay_out() {
        let s = TopicSelector::new("orders.*", Some("orders-tmp")).expect("valid");
        assert!(s.matches("orders"));
        assert!(s.matches("orders-eu"));
        assert!(!s.matches("orders-tmp"));
        assert!(!s.matches("my-orders"));
        let all = TopicSelector::new(".*", None).expect("valid");
        assert!(all.matches("payments"));
        assert!(!all.matches("__consumer_offsets"));
        assert!(!all.matches("kmirror.offset-map.dr"));
        let named = TopicSelector::new("__audit", None).expect("valid");
        assert!(named.matches("__audit"));
        let among = TopicSelector::new("orders|__audit", None).expect("valid");
        assert!(among.matches("__audit") && among.matches("orders"));
        assert!(!among.matches("__consumer_offsets"));
        let own = TopicSelector::new("kmirror\\.checkpoints\\..*", None).expect("valid");
        assert!(own.matches("kmirror.checkpoints.dr"));
    }

    #[test]
    fn bad_regex_names_flag_and_pattern() {
        let err = TopicSelector::new("orders[", None).expect_err("invalid").to_string();
        assert!(err.starts_with("invalid --topics regex 'orders['"), "{err}");
        let err = TopicSelector::new("a", Some("(")).expect_err("invalid").to_string();
        assert!(err.starts_with("invalid --exclude regex '('"), "{err}");
    }
}
