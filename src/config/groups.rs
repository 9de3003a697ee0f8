//! Which consumer groups are synced, translated and moved.
use regex::Regex;

use super::alternatives::PrefixGuard;
use super::names::OWN_PREFIX;
use super::whole_name_regex;
use crate::error::Result;

/// A `--groups` pattern, matching whole group ids. kmirror's own groups (`kmirror.…`: a mirror's
/// shadow groups, its coordination group) are taken only by a pattern that spells their prefix:
/// `.*` on a cluster that is also a mirror's target (the way home after a failback, the other
/// half of active-active) would take that mirror's shadow groups, whose positions are another
/// cluster's offsets, and sync, translate or move them as a consumer's.
#[derive(Debug, Clone)]
pub(crate) struct GroupSelector {
    whole: Regex,
    given: String,
    own: PrefixGuard,
}

impl GroupSelector {
    pub(crate) fn new(pattern: &str) -> Result<Self> {
        Ok(Self {
            whole: whole_name_regex("--groups", pattern)?,
            given: pattern.to_string(),
            own: PrefixGuard::new(pattern, &[OWN_PREFIX]),
        })
    }

    pub(crate) fn is_match(&self, group: &str) -> bool {
        self.whole.is_match(group) && self.own.allows(group)
    }

    /// The pattern as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.given
    }
}

#[cfg(test)]
mod tests {
    use super::GroupSelector;
    use crate::config::names::{coordinator_group, shadow_group};

    #[test]
    fn a_wildcard_leaves_kmirrors_own_groups_out() {
        let all = GroupSelector::new(".*").expect("pattern");
        assert!(all.is_match("billing"));
        for own in [shadow_group("dr-back", 0), coordinator_group("dr")] {
            assert!(!all.is_match(&own), "{own}");
        }
        let beside = GroupSelector::new(".*|kmirror\\.x\\.shard-0").expect("pattern");
        assert!(beside.is_match("kmirror.x.shard-0") && !beside.is_match("kmirror.dr.shard-0"));
    }

    #[test]
    fn a_pattern_that_spells_the_prefix_takes_kmirrors_groups() {
        let named = GroupSelector::new("kmirror\\.dr-back\\..*").expect("pattern");
        assert!(named.is_match(&shadow_group("dr-back", 1)));
        assert!(!named.is_match(&shadow_group("dr", 1)));
        let escaped = GroupSelector::new(&regex::escape(&shadow_group("dr", 2))).expect("pattern");
        assert!(escaped.is_match(&shadow_group("dr", 2)));
    }

    #[test]
    fn the_pattern_is_kept_as_given() {
        for given in ["billing\\..*", "^(billing)$", "(?:a)|(?:b)"] {
            assert_eq!(GroupSelector::new(given).expect("pattern").as_str(), given);
        }
    }
}
