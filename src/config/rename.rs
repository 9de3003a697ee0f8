//! Target topic names: kept (`identity`), prefixed with the source cluster's alias as
//! MirrorMaker 2's default policy does (`prefix:ALIAS` gives `ALIAS.topic`), or rewritten by a
//! whole-name regex (`regex:FROM=>TO`, `$1`-style groups in TO; topics it does not match keep
//! their name). Offsets, checkpoints and translation follow the mapping through the offset map,
//! which records both names.
use std::collections::BTreeMap;

use regex::Regex;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub(crate) enum RenamePolicy {
    #[default]
    Identity,
    Prefix(String),
    Regex {
        from: Regex,
        to: String,
        pattern: String,
    },
}

impl RenamePolicy {
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let usage = |why: &str| {
            Error::Usage(format!("--rename '{text}': {why}; use identity, prefix:ALIAS or 'regex:FROM=>TO'"))
        };
        if text == "identity" {
            return Ok(Self::Identity);
        }
        if let Some(alias) = text.strip_prefix("prefix:") {
            let valid = !alias.is_empty()
                && alias.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            return match valid {
                true => Ok(Self::Prefix(alias.to_string())),
                false => Err(usage("the alias must be letters, digits, '.', '_' or '-'")),
            };
        }
        if let Some(rule) = text.strip_prefix("regex:") {
            let (from, to) = rule.split_once("=>").ok_or_else(|| usage("a regex rule needs FROM=>TO"))?;
            if to.is_empty() {
                return Err(usage("the target name TO is empty"));
            }
            let compiled = super::whole_name_regex("--rename", from)?;
            if let Some(unknown) = unknown_group(&compiled, to) {
                return Err(usage(&format!(
                    "${unknown} in TO names no group of FROM (a name after $ runs on through letters, digits and '_': write ${{1}}_x for group 1 then _x)"
                )));
            }
            return Ok(Self::Regex { from: compiled, to: to.to_string(), pattern: text.to_string() });
        }
        Err(usage("unknown policy"))
    }

    /// The target topic of source topic `source`.
    pub(crate) fn target_of(&self, source: &str) -> String {
        match self {
            Self::Identity => source.to_string(),
            Self::Prefix(alias) => format!("{alias}.{source}"),
            Self::Regex { from, to, .. } => match from.is_match(source) {
                true => from.replace(source, to.as_str()).into_owned(),
                false => source.to_string(),
            },
        }
    }

    /// As given on the command line.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Identity => "identity".into(),
            Self::Prefix(alias) => format!("prefix:{alias}"),
            Self::Regex { pattern, .. } => pattern.clone(),
        }
    }

    /// Fails, naming both, if two source topics would be written to one target topic, or
    /// naming it if a source topic's target name is no valid topic name.
    pub(crate) fn check_collisions<'a>(&self, sources: impl IntoIterator<Item = &'a str>) -> Result<()> {
        match self.unmirrorable(sources).into_iter().next() {
            Some((_, reason)) => Err(Error::Usage(format!("{reason}; change the rule or --topics"))),
            None => Ok(()),
        }
    }

    /// The source topics this policy cannot copy, each with why: a target name Kafka would
    /// refuse, or a target name an earlier topic of `sources` has taken (the earlier one keeps
    /// it), or one Kafka takes as that (it treats '.' and '_' in topic names as one).
    pub(crate) fn unmirrorable<'a>(
        &self,
        sources: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(&'a str, String)> {
        let mut seen: BTreeMap<String, (&str, String)> = BTreeMap::new();
        let mut out = Vec::new();
        for source in sources {
            let target = self.target_of(source);
            if !is_valid_topic_name(&target) {
                out.push((source, format!(
                    "--rename {}: source topic {source} would be mirrored to '{target}', which is no valid topic name (letters, digits, '.', '_' and '-', 1 to 249 of them, not . or ..)",
                    self.describe()
                )));
                continue;
            }
            let folded = target.replace('.', "_");
            match seen.get(&folded) {
                Some((other, taken)) if *taken == target => out.push((
                    source,
                    format!(
                        "--rename {}: source topics {other} and {source} would both be mirrored to {target}",
                        self.describe()
                    ),
                )),
                Some((other, taken)) => out.push((
                    source,
                    format!(
                        "--rename {}: source topics {other} and {source} would be mirrored to {taken} and {target}, which Kafka takes as one topic name ('.' and '_' are alike to it)",
                        self.describe()
                    ),
                )),
                None => {
                    seen.insert(folded, (source, target));
                }
            }
        }
        out
    }
}

/// Kafka's rule for topic names (`org.apache.kafka.common.internals.Topic`).
fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The first group `replacement` names (`$1`, `$name`, `${name}`, as the regex crate reads
/// them) that `from` does not have: the regex crate replaces it with nothing, and a name like
/// `$1_dr` is the group `1_dr`, not group 1 then `_dr`.
fn unknown_group(from: &Regex, replacement: &str) -> Option<String> {
    let mut rest = replacement;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name = if let Some(after) = rest.strip_prefix('$') {
            rest = after;
            continue;
        } else if let Some(braced) = rest.strip_prefix('{') {
            let Some(end) = braced.find('}') else { continue };
            rest = &braced[end + 1..];
            &braced[..end]
        } else {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let name = &rest[..end];
            rest = &rest[end..];
            name
        };
        if name.is_empty() {
            continue;
        }
        let known = match name.parse::<usize>() {
            Ok(index) => index < from.captures_len(),
            Err(_) => from.capture_names().flatten().any(|n| n == name),
        };
        if !known {
            return Some(name.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_names_the_target() {
        assert_eq!(RenamePolicy::parse("identity").expect("valid").target_of("orders"), "orders");
        assert_eq!(RenamePolicy::parse("prefix:eu").expect("valid").target_of("orders"), "eu.orders");
        let rule = RenamePolicy::parse("regex:orders-(.*)=>mirrored.$1").expect("valid");
        assert_eq!(rule.target_of("orders-eu"), "mirrored.eu");
        assert_eq!(rule.target_of("payments"), "payments", "unmatched topics keep their name");
        assert_eq!(rule.target_of("xorders-eu"), "xorders-eu", "whole-name match");
    }

    #[test]
    fn bad_rules_and_collisions_are_named() {
        for bad in ["prefix:", "prefix:a b", "regex:orders", "regex:(=>x", "rename-all"] {
            assert!(RenamePolicy::parse(bad).is_err(), "{bad}");
        }
        let rule = RenamePolicy::parse("regex:(?:a|b)-(.*)=>$1").expect("valid");
        let err = rule.check_collisions(["a-x", "b-x", "c-x"]).expect_err("collision").to_string();
        assert!(
            err.contains("a-x") && err.contains("b-x") && err.contains("would both be mirrored to x"),
            "{err}"
        );
        assert!(RenamePolicy::Identity.check_collisions(["a", "b"]).is_ok());
        // Names Kafka takes as one: refused here, where the target refused the second copy.
        let dots = RenamePolicy::parse("regex:(.*)-v1=>$1").expect("valid");
        let err = dots.check_collisions(["a.b-v1", "a_b"]).expect_err("alike").to_string();
        assert!(err.contains("mirrored to a.b and a_b, which Kafka takes as one topic name"), "{err}");
    }

    #[test]
    fn a_group_the_rule_does_not_have_and_an_invalid_target_name_are_refused() {
        let err = RenamePolicy::parse("regex:(.*)=>$1_dr").expect_err("group 1_dr").to_string();
        assert!(err.contains("$1_dr in TO names no group") && err.contains("${1}_x"), "{err}");
        assert!(RenamePolicy::parse("regex:(.*)=>${1}_dr").is_ok());
        assert!(RenamePolicy::parse("regex:(?P<name>.*)=>dr.$name").is_ok());
        assert!(RenamePolicy::parse("regex:(.*)=>$2").is_err(), "one group only");
        assert!(RenamePolicy::parse("regex:(.*)=>$$1").is_ok(), "$$ is a literal $");
        let rule = RenamePolicy::parse("regex:(.*)=>copy of $1").expect("parses");
        let err = rule.check_collisions(["orders"]).expect_err("a space").to_string();
        assert!(err.contains("'copy of orders', which is no valid topic name"), "{err}");
        let long = "x".repeat(247);
        let err = RenamePolicy::parse("prefix:eu").expect("valid").check_collisions([long.as_str()]);
        assert!(err.is_err(), "eu. and 247 characters are past 249");
    }
}
