//! Topics a run leaves out (a copy it cannot make right, a rename rule that cannot copy them)
//! while it mirrors the others, and the run's error for them.
use crate::error::Error;

/// A topic left out of the run, and why.
pub(crate) struct FailedTopic {
    pub(crate) name: String,
    pub(crate) reason: String,
    /// The exit code its error has on its own (a flag's mistake is 2 on every run, not only on
    /// the first, where it stops the making of kmirror's own topics).
    pub(crate) exit_code: u8,
}

impl FailedTopic {
    pub(crate) fn of(name: &str, e: &Error) -> Self {
        Self { name: name.to_string(), reason: e.to_string(), exit_code: e.exit_code() }
    }
}

/// The run's error for topics left out: their names, and the reason in full of the first with
/// the highest exit code, which is the run's (a refusal to lose records, 4, is not hidden by a
/// flag's mistake, 2, nor that by a cluster error, 1).
pub(crate) fn topics_failed(failed: &[FailedTopic]) -> Error {
    let worst = failed.iter().rev().max_by_key(|f| f.exit_code);
    Error::TopicsFailed {
        topics: failed.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
        first: worst.map(|f| f.reason.clone()).unwrap_or_default(),
        exit_code: worst.map_or(1, |f| f.exit_code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(name: &str, exit_code: u8) -> FailedTopic {
        FailedTopic { name: name.into(), reason: format!("{name} failed"), exit_code }
    }

    #[test]
    fn the_highest_exit_code_and_its_reason_are_the_runs() {
        let all = [failed("a", 1), failed("b", 2), failed("c", 4), failed("d", 2), failed("e", 4)];
        let e = topics_failed(&all);
        assert_eq!(e.exit_code(), 4);
        assert_eq!(e.to_string(), "the mirror stopped with errors in topics a, b, c, d, e; c failed");
        let e = topics_failed(&[failed("a", 1), failed("b", 2)]);
        assert_eq!((e.exit_code(), e.to_string().ends_with("; b failed")), (2, true));
        assert_eq!(topics_failed(&[failed("a", 1)]).exit_code(), 1);
    }
}
