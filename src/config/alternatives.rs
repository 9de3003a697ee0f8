//! A regex read apart into the alternatives it matches by: `(?:orders|__audit)-v[12]` is
//! `orders-v[12]` and `__audit-v[12]`, each with the literal text every match of it begins with.
//! The topic selector uses them to tell a pattern that names an internal topic's prefix from a
//! wildcard that merely matches it.
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

/// A concatenation that multiplies out to more alternatives than this (each alternation in it
/// multiplies them) stays one.
const MOST: usize = 64;

/// One way a pattern matches: a regex, and the prefixes every match of it starts with (empty:
/// any text can start a match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alternative {
    pub(crate) regex: String,
    pub(crate) prefixes: Vec<Vec<u8>>,
}

impl Alternative {
    /// Whether the alternative spells `prefix` itself where it matches `name` (`__audit`,
    /// `__.*`, `[_x]_audit`), rather than matching it with a class or a wildcard (`.*`, `_.*`,
    /// `(?:__audit)?.*` for `__consumer_offsets`).
    pub(crate) fn spells(&self, prefix: &str, name: &str) -> bool {
        self.prefixes.iter().any(|p| p.starts_with(prefix.as_bytes()) && name.as_bytes().starts_with(p))
    }

    /// Whether the alternative spells `prefix` for any name.
    pub(crate) fn spells_some(&self, prefix: &str) -> bool {
        self.prefixes.iter().any(|p| p.starts_with(prefix.as_bytes()))
    }
}

/// Names under protected prefixes (internal topics, kmirror's own groups) that a pattern takes
/// only through an alternative spelling the prefix itself: `.*` does not take
/// `__consumer_offsets`, `orders|__audit` takes `__audit`.
#[derive(Debug, Clone)]
pub(crate) struct PrefixGuard {
    prefixes: &'static [&'static str],
    /// The pattern's alternatives that spell one of the prefixes, each compiled whole-name.
    naming: Vec<(Alternative, regex::Regex)>,
}

impl PrefixGuard {
    pub(crate) fn new(pattern: &str, prefixes: &'static [&'static str]) -> Self {
        let naming = alternatives(pattern)
            .unwrap_or_default()
            .into_iter()
            .filter(|part| prefixes.iter().any(|p| part.spells_some(p)))
            .filter_map(|part| regex::Regex::new(&format!("^(?:{})$", part.regex)).ok().map(|re| (part, re)))
            .collect();
        Self { prefixes, naming }
    }

    /// Whether `name`, which the whole pattern matches, is taken: under a protected prefix only
    /// through an alternative that spells the prefix and matches the name (`.*|__audit` and
    /// `(?:__audit|.*)` take `__audit`, not `__consumer_offsets`).
    pub(crate) fn allows(&self, name: &str) -> bool {
        match self.prefixes.iter().find(|p| name.starts_with(*p)) {
            Some(prefix) => {
                self.naming.iter().any(|(part, regex)| part.spells(prefix, name) && regex.is_match(name))
            }
            None => true,
        }
    }
}

/// The alternatives of `pattern`, or None when it is no regex.
pub(crate) fn alternatives(pattern: &str) -> Option<Vec<Alternative>> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    Some(
        split(&hir)
            .into_iter()
            .map(|hir| Alternative {
                regex: hir.to_string(),
                prefixes: extractor
                    .extract(&hir)
                    .literals()
                    .map(|l| l.iter().map(|l| l.as_bytes().to_vec()).collect())
                    .unwrap_or_default(),
            })
            .collect(),
    )
}

/// `hir`'s alternatives: an alternation's, a group's, each part of a concatenation's multiplied
/// out (up to [`MOST`]); a repetition and anything else is one.
fn split(hir: &Hir) -> Vec<Hir> {
    match hir.kind() {
        HirKind::Alternation(subs) => subs.iter().flat_map(split).collect(),
        HirKind::Concat(parts) => {
            let mut heads: Vec<Vec<Hir>> = vec![Vec::new()];
            for part in parts {
                let tails = split(part);
                if heads.len() * tails.len() > MOST {
                    return vec![hir.clone()];
                }
                heads = heads
                    .iter()
                    .flat_map(|head| {
                        tails.iter().map(move |tail| {
                            let mut next = head.clone();
                            next.push(tail.clone());
                            next
                        })
                    })
                    .collect();
            }
            heads.into_iter().map(Hir::concat).collect()
        }
        HirKind::Capture(capture) => split(&capture.sub),
        _ => vec![hir.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regexes(pattern: &str) -> Vec<String> {
        alternatives(pattern).expect("a regex").into_iter().map(|a| a.regex).collect()
    }

    #[test]
    fn nested_alternations_are_multiplied_out() {
        assert_eq!(regexes("(?:orders|__audit)-v1").len(), 2);
        assert_eq!(regexes("(ab|cd)(ef|gh)i").len(), 4);
        assert_eq!(regexes("(a|b)c").len(), 1, "single letters are one class");
        assert_eq!(regexes("(?:a|b)*").len(), 1, "a repetition is one");
        assert_eq!(regexes("orders").len(), 1);
        assert_eq!(regexes("(ab|c.)(ab|c.)(ab|c.)(ab|c.)(ab|c.)(ab|c.)(ab|c.)").len(), 1, "128 is too many");
        let many: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        assert_eq!(regexes(&many.join("|")).len(), 100, "alternatives side by side are not multiplied");
        assert!(alternatives("orders[").is_none());
    }

    #[test]
    fn an_alternative_names_a_prefix_only_by_spelling_it() {
        let named = |pattern: &str| -> Vec<bool> {
            alternatives(pattern).expect("a regex").iter().map(|a| a.spells("__", "__audit")).collect()
        };
        assert_eq!(named("(?:__audit|.*)"), vec![true, false]);
        assert_eq!(named("__.*"), vec![true]);
        assert_eq!(named("_.*"), vec![false]);
        assert_eq!(named("[_x]_audit"), vec![true]);
        assert_eq!(named(".*audit"), vec![false]);
        let optional = alternatives("(?:__audit)?.*").expect("a regex");
        assert!(optional.iter().all(|a| !a.spells("__", "__consumer_offsets")), "{optional:?}");
        assert!(optional.iter().all(|a| !a.spells("__", "__audit")), "a wildcard too: {optional:?}");
        assert_eq!(named("(?:xy|__)audit"), vec![false, true]);
        assert_eq!(named("__(?:audit|logs)"), vec![true, false]);
    }
}
