//! A regex read apart into the alternatives it matches by: `(?:orders|__audit)-v[12]` is
//! `orders-v[12]` and `__audit-v[12]`, each with the literal text every match of it begins with.
//! The topic selector uses them to tell a pattern that names an internal topic's prefix from a
//! wildcard that merely matches it.
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

/// More alternatives than this (each nested alternation multiplies them) and the pattern is
/// read as one.
const MOST: usize = 64;

/// One way a pattern matches: a regex without alternation outside repetitions, and the
/// prefixes every match of it starts with (empty: any text can start a match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alternative {
    pub(crate) regex: String,
    pub(crate) prefixes: Vec<Vec<u8>>,
}

impl Alternative {
    /// Whether the alternative spells `prefix` itself (`__audit`, `__.*`, `[_x]_audit`),
    /// rather than matching it with a class or a wildcard (`.*`, `_.*`).
    pub(crate) fn names(&self, prefix: &str) -> bool {
        self.prefixes.iter().any(|p| p.starts_with(prefix.as_bytes()))
    }
}

/// The alternatives of `pattern`, or None when it is no regex or has too many.
pub(crate) fn alternatives(pattern: &str) -> Option<Vec<Alternative>> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    Some(
        split(&hir)?
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

/// `hir`'s alternatives: an alternation's, each part of a concatenation's multiplied out, a
/// group's; a repetition and anything else is one.
fn split(hir: &Hir) -> Option<Vec<Hir>> {
    match hir.kind() {
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for sub in subs {
                all.extend(split(sub)?);
                if all.len() > MOST {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Concat(parts) => {
            let mut heads: Vec<Vec<Hir>> = vec![Vec::new()];
            for part in parts {
                let tails = split(part)?;
                if heads.len() * tails.len() > MOST {
                    return None;
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
            Some(heads.into_iter().map(Hir::concat).collect())
        }
        HirKind::Capture(capture) => split(&capture.sub),
        _ => Some(vec![hir.clone()]),
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
        assert!(
            alternatives("(ab|c.)(ab|c.)(ab|c.)(ab|c.)(ab|c.)(ab|c.)(ab|c.)").is_none(),
            "128 is too many"
        );
        assert!(alternatives("orders[").is_none());
    }

    #[test]
    fn an_alternative_names_a_prefix_only_by_spelling_it() {
        let named = |pattern: &str| -> Vec<bool> {
            alternatives(pattern).expect("a regex").iter().map(|a| a.names("__")).collect()
        };
        assert_eq!(named("(?:__audit|.*)"), vec![true, false]);
        assert_eq!(named("__.*"), vec![true]);
        assert_eq!(named("_.*"), vec![false]);
        assert_eq!(named("[_x]_audit"), vec![true]);
        assert_eq!(named(".*offsets"), vec![false]);
        assert_eq!(named("(?:xy|__)audit"), vec![false, true]);
    }
}
