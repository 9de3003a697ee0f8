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
            let compiled = Regex::new(&format!("^(?:{from})$")).map_err(|e| Error::Regex {
                flag: "--rename",
                pattern: from.to_string(),
                message: e.to_string().lines().last().unwrap_or_default().trim().to_string(),
            })?;
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

    /// Fails, naming both, if two source topics would be written to one target topic.
    pub(crate) fn check_collisions<'a>(&self, sources: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for source in sources {
            let target = self.target_of(source);
            if let Some(other) = seen.insert(target.clone(), source) {
                return Err(Error::Usage(format!(
                    "--rename {}: source topics {other} and {source} would both be mirrored to {target}; change the rule or --topics",
                    self.describe()
                )));
            }
        }
        Ok(())
    }
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
    }
}
