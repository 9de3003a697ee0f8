//! Whether a saved position still means what it meant when it was committed. A position that
//! now points below the partition's start, past its end, into a recreated topic or into another
//! source topic would make the mirror skip or mix records; librdkafka's `auto.offset.reset`
//! would jump silently, so it is never relied on: each case is refused by name, and only records
//! the source itself deleted may be stepped over, when `--on-missing-source skip` says so.
use kmirror_state::TopicPartition;

use crate::config::MissingSource;
use crate::error::{Error, Result};
use crate::mirror::plan::Route;
use crate::mirror::shadow::SavedPosition;

/// A source partition as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionNow {
    /// The first offset the source still holds.
    pub(crate) log_start: i64,
    /// The last stable offset.
    pub(crate) end: i64,
    /// The source topic's ID, where the source gives one.
    pub(crate) topic_id: Option<String>,
}

/// Where to go on with a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// At the saved position.
    Resume(i64),
    /// At `to`: the source deleted `from..to` before it was copied, and the policy is to skip.
    Skip { from: i64, to: i64 },
}

/// Checks `saved` (the shard's committed position of `route`) against `now`.
pub(crate) fn check(
    route: &Route,
    saved: &SavedPosition,
    now: &PartitionNow,
    policy: MissingSource,
) -> Result<Verdict> {
    let (topic, partition, offset) = (&route.source.topic, route.source.partition, saved.offset);
    if let Some(recorded) = saved.source_topic.as_ref().filter(|t| *t != topic) {
        return Err(Error::PositionOfAnotherTopic {
            target: route.target.to_string(),
            recorded: recorded.clone(),
            topic: topic.clone(),
        });
    }
    same_topic(&route.source, offset, saved.source_topic_id.as_deref(), now.topic_id.as_deref())?;
    if offset > now.end {
        return Err(Error::PositionPastEnd {
            topic: topic.clone(),
            partition,
            offset,
            log_start: now.log_start,
            end: now.end,
        });
    }
    if offset < now.log_start {
        return match policy {
            MissingSource::Fail => Err(Error::SourceTruncated {
                topic: topic.clone(),
                partition,
                offset,
                log_start: now.log_start,
                end: now.end,
            }),
            MissingSource::Skip => Ok(Verdict::Skip { from: offset, to: now.log_start }),
        };
    }
    Ok(Verdict::Resume(offset))
}

/// Refuses a position of `source` whose topic ID was `recorded` when the topic now has `current`
/// (either unknown: nothing to compare).
pub(crate) fn same_topic(
    source: &TopicPartition,
    offset: i64,
    recorded: Option<&str>,
    current: Option<&str>,
) -> Result<()> {
    match (recorded, current) {
        (Some(recorded), Some(current)) if recorded != current => Err(Error::SourceRecreated {
            topic: source.topic.clone(),
            partition: source.partition,
            offset,
            recorded: recorded.to_string(),
            current: current.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Route {
        Route { source: TopicPartition::new("orders", 2), target: TopicPartition::new("dr.orders", 2) }
    }

    fn saved(offset: i64, id: Option<&str>) -> SavedPosition {
        SavedPosition {
            offset,
            source_topic: Some("orders".into()),
            source_topic_id: id.map(String::from),
            by_failback: false,
        }
    }

    fn now(log_start: i64, end: i64, id: Option<&str>) -> PartitionNow {
        PartitionNow { log_start, end, topic_id: id.map(String::from) }
    }

    #[test]
    fn a_position_inside_the_log_resumes() {
        for offset in [10, 50, 100] {
            let verdict =
                check(&route(), &saved(offset, Some("A")), &now(10, 100, Some("A")), MissingSource::Fail);
            assert_eq!(verdict.expect("valid"), Verdict::Resume(offset));
        }
        let no_ids = check(&route(), &saved(5, None), &now(0, 9, Some("A")), MissingSource::Fail);
        assert_eq!(no_ids.expect("older positions have no id"), Verdict::Resume(5));
    }

    #[test]
    fn a_truncated_source_is_refused_or_skipped_by_policy() {
        let err =
            check(&route(), &saved(40, None), &now(70, 100, None), MissingSource::Fail).expect_err("refused");
        let text = err.to_string();
        for part in ["orders", "partition 2", "40", "70", "100", "--on-missing-source skip"] {
            assert!(text.contains(part), "{part} missing from: {text}");
        }
        assert_eq!(err.exit_code(), 4);
        let skip = check(&route(), &saved(40, None), &now(70, 100, None), MissingSource::Skip);
        assert_eq!(skip.expect("skipped"), Verdict::Skip { from: 40, to: 70 });
    }

    #[test]
    fn past_the_end_recreated_and_renamed_are_refused_whatever_the_policy() {
        let past = check(&route(), &saved(1000, None), &now(0, 300, None), MissingSource::Skip);
        assert!(matches!(past, Err(Error::PositionPastEnd { offset: 1000, end: 300, .. })), "{past:?}");
        let recreated =
            check(&route(), &saved(100, Some("A")), &now(0, 1200, Some("B")), MissingSource::Skip);
        assert!(matches!(recreated, Err(Error::SourceRecreated { .. })), "{recreated:?}");
        let other = SavedPosition { source_topic: Some("payments".into()), ..saved(5, None) };
        let renamed = check(&route(), &other, &now(0, 10, None), MissingSource::Skip);
        let text = renamed.expect_err("refused").to_string();
        assert!(text.contains("payments") && text.contains("orders") && text.contains("--rename"), "{text}");
    }
}
