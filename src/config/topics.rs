//! Which source topics are mirrored.
use regex::Regex;

use super::alternatives::PrefixGuard;
use super::whole_name_regex;

use crate::error::{Error, Result};

/// Prefixes of topics that are never mirrored unless the include pattern names them.
const PROTECTED_PREFIXES: &[&str] = &["__", super::names::OWN_PREFIX];

#[derive(Debug, Clone)]
pub(crate) struct TopicSelector {
    include: Regex,
    exclude: Option<Regex>,
    include_source: String,
    exclude_source: String,
    /// Internal topics only through an alternative that names their prefix itself (e.g.
    /// `__audit` or `orders|__audit`), never through a wildcard like `.*`.
    protected: PrefixGuard,
    /// Active-active with renamed copies: topics that are copies of the target cluster's own
    /// (see [`Self::leaving_out_copies_of`]).
    copies_of_target: Option<Regex>,
}

impl TopicSelector {
    pub(crate) fn new(include: &str, exclude: Option<&str>) -> Result<Self> {
        let whole = whole_name_regex("--topics", include)?;
        Ok(Self {
            include: whole,
            protected: PrefixGuard::new(include, PROTECTED_PREFIXES),
            copies_of_target: None,
            exclude: exclude.map(|p| whole_name_regex("--exclude", p)).transpose()?,
            include_source: include.to_string(),
            exclude_source: exclude.unwrap_or_default().to_string(),
        })
    }

    pub(crate) fn matches(&self, topic: &str) -> bool {
        if !self.include.is_match(topic)
            || self.exclude.as_ref().is_some_and(|e| e.is_match(topic))
            || self.copies_of_target.as_ref().is_some_and(|c| c.is_match(topic))
        {
            return false;
        }
        self.protected.allows(topic)
    }

    /// Leaves out the topics named `ALIAS.…`, or with `.ALIAS.` inside (a copy of a copy): with
    /// copies renamed by cluster alias (`--rename prefix:`), those on the source are copies of
    /// the target's own topics, which the mirror the other way made. Copied back they would be
    /// copied again, each time under a longer name, without end (as MirrorMaker 2 leaves out a
    /// topic whose source, or a source up its chain, is the target).
    pub(crate) fn leaving_out_copies_of(mut self, target_alias: &str) -> Self {
        self.copies_of_target = Regex::new(&format!("^(?:.*\\.)?{}\\..+$", regex::escape(target_alias))).ok();
        self
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
        // A wildcard beside a name: the name's topic only, not every internal one.
        let beside = TopicSelector::new(".*|__audit", None).expect("valid");
        assert!(beside.matches("__audit") && beside.matches("payments"));
        assert!(!beside.matches("__consumer_offsets") && !beside.matches("__transaction_state"));
        let grouped = TopicSelector::new("(?:orders|x)|__a[|]udit|__audit", None).expect("valid");
        assert!(grouped.matches("__audit") && grouped.matches("orders"));
        assert!(!grouped.matches("__consumer_offsets"));
        assert!(TopicSelector::new("__.*", None).expect("valid").matches("__consumer_offsets"), "asked for");
        // A wildcard in the same group as a name, or one that spells no prefix.
        let one_group = TopicSelector::new("(?:__audit|.*)", None).expect("valid");
        assert!(one_group.matches("__audit") && one_group.matches("payments"));
        assert!(!one_group.matches("__consumer_offsets"));
        for wildcard in ["_.*", ".*offsets", "(?:[a-z_]+)", "(?i)__AUDIT|.*"] {
            let s = TopicSelector::new(wildcard, None).expect("valid");
            assert!(!s.matches("__consumer_offsets"), "{wildcard}");
        }
        assert!(TopicSelector::new("(?:__consumer|x)_offsets", None)
            .expect("valid")
            .matches("__consumer_offsets"));
    }

    #[test]
    fn with_copies_named_by_alias_the_targets_own_copied_back_stay_out() {
        let a_to_b = TopicSelector::new(".*", None).expect("valid").leaving_out_copies_of("b");
        assert!(a_to_b.matches("orders") && a_to_b.matches("c.orders") && a_to_b.matches("bb.orders"));
        assert!(!a_to_b.matches("b.orders"), "b's own orders, copied to a by the mirror b -> a");
        assert!(!a_to_b.matches("c.b.orders"), "by way of another cluster");
        assert!(a_to_b.matches("orders.b"), "a name ending in the alias is no copy");
    }

    #[test]
    fn bad_regex_names_flag_and_pattern() {
        // Wrapped for whole names it would compile, and match names starting with a.
        let err = TopicSelector::new("a)|(b", None).expect_err("invalid").to_string();
        assert!(err.starts_with("invalid --topics regex 'a)|(b'"), "{err}");
        let err = TopicSelector::new("orders[", None).expect_err("invalid").to_string();
        assert!(err.starts_with("invalid --topics regex 'orders['"), "{err}");
        let err = TopicSelector::new("a", Some("(")).expect_err("invalid").to_string();
        assert!(err.starts_with("invalid --exclude regex '('"), "{err}");
    }
}
