//! Where a record came from: a provenance header naming the source cluster and position, and
//! the origin mark of active-active mirroring, which keeps a record from cycling back to the
//! cluster it was first written to.
use super::{OwnedRecord, SourcePosition};

/// The header naming the cluster a record was first written to, then once more each cluster
/// it was copied from.
pub(crate) const ORIGIN_HEADER: &str = "kmirror.origin";
/// The header naming the source cluster alias and position of a mirrored record.
pub(crate) const PROVENANCE_HEADER: &str = "kmirror.provenance";

#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// Adds `kmirror.provenance: ALIAS/topic/partition/offset`.
    Provenance(String),
    /// Active-active: drops records first written on, or copied from, the target cluster, and
    /// marks the others with the cluster they were first written to and each they were copied
    /// from.
    ActiveActive { source_alias: String, target_alias: String },
}

impl Origin {
    pub(crate) fn provenance(alias: &str) -> Self {
        Self::Provenance(alias.to_string())
    }

    pub(crate) fn apply(&self, at: SourcePosition<'_>, mut record: OwnedRecord) -> Option<OwnedRecord> {
        match self {
            Self::Provenance(alias) => {
                let value = format!("{alias}/{}/{}/{}", at.topic, at.partition, at.offset);
                record.headers.retain(|(k, _)| k != PROVENANCE_HEADER);
                record.headers.push((PROVENANCE_HEADER.into(), Some(value.into_bytes())));
                Some(record)
            }
            Self::ActiveActive { source_alias, target_alias } => {
                // Every origin header counts: a record with two (one written by an app) whose
                // first named another cluster was copied back to its origin for ever.
                let origins: Vec<Option<&[u8]>> = record
                    .headers
                    .iter()
                    .filter(|(k, _)| k == ORIGIN_HEADER)
                    .map(|(_, v)| v.as_deref())
                    .collect();
                if origins.contains(&Some(target_alias.as_bytes())) {
                    return None;
                }
                if !origins.iter().any(Option::is_some) {
                    // Unmarked, or marked with nothing (null): first written here.
                    record.headers.retain(|(k, _)| k != ORIGIN_HEADER);
                } else if origins.contains(&Some(source_alias.as_bytes())) {
                    return Some(record);
                }
                // The marks after the first are the clusters a record passed through: with
                // three or more mirrored both ways a record born on a, copied to b and c,
                // went on between b and c without end when only its birth was marked.
                record.headers.push((ORIGIN_HEADER.into(), Some(source_alias.as_bytes().to_vec())));
                Some(record)
            }
        }
    }
}

/// Puts back the origin marks `marked` (those the active-active step left) where later
/// transforms changed them: a `headers:drop:kmirror.origin`, a rename or a script would
/// otherwise send the record back to the cluster it came from.
pub(crate) fn keep_marks(record: &mut OwnedRecord, marked: Vec<(String, Option<Vec<u8>>)>) {
    let now: Vec<&(String, Option<Vec<u8>>)> =
        record.headers.iter().filter(|(k, _)| k == ORIGIN_HEADER).collect();
    if now.len() == marked.len() && now.iter().zip(&marked).all(|(a, b)| *a == b) {
        return;
    }
    record.headers.retain(|(k, _)| k != ORIGIN_HEADER);
    record.headers.extend(marked);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_or_second_origin_header_sends_no_record_back() {
        let at = SourcePosition { topic: "t", partition: 0, offset: 7 };
        let a_to_b = Origin::ActiveActive { source_alias: "a".into(), target_alias: "b".into() };
        let b_to_a = Origin::ActiveActive { source_alias: "b".into(), target_alias: "a".into() };
        let null = OwnedRecord { headers: vec![(ORIGIN_HEADER.into(), None)], ..OwnedRecord::default() };
        let on_b = a_to_b.apply(at, null).expect("born on a");
        assert_eq!(on_b.headers, vec![(ORIGIN_HEADER.into(), Some(b"a".to_vec()))]);
        assert_eq!(b_to_a.apply(at, on_b), None);
        let two = OwnedRecord {
            headers: vec![
                (ORIGIN_HEADER.into(), Some(b"app".to_vec())),
                (ORIGIN_HEADER.into(), Some(b"a".to_vec())),
            ],
            ..OwnedRecord::default()
        };
        assert_eq!(b_to_a.apply(at, two), None, "its second origin is the target");
    }

    #[test]
    fn records_never_go_back_to_their_origin() {
        let at = SourcePosition { topic: "t", partition: 0, offset: 7 };
        let a_to_b = Origin::ActiveActive { source_alias: "a".into(), target_alias: "b".into() };
        let b_to_a = Origin::ActiveActive { source_alias: "b".into(), target_alias: "a".into() };
        let native_on_a = OwnedRecord::default();
        let on_b = a_to_b.apply(at, native_on_a).expect("a record born on a goes to b");
        assert_eq!(on_b.header(ORIGIN_HEADER), Some(&b"a"[..]));
        assert_eq!(b_to_a.apply(at, on_b), None, "and never comes back");
        let native_on_b = OwnedRecord::default();
        let on_a = b_to_a.apply(at, native_on_b).expect("a record born on b goes to a");
        assert_eq!(a_to_b.apply(at, on_a), None);
    }

    /// Three clusters mirrored in a ring (a -> b -> c -> a, identity names): each record reaches
    /// the two others once and stops before its origin, whichever cluster it was born on.
    #[test]
    fn a_ring_of_three_copies_each_record_once_to_each_other_cluster() {
        let at = SourcePosition { topic: "t", partition: 0, offset: 7 };
        let hop = |from: &str, to: &str| Origin::ActiveActive {
            source_alias: from.into(),
            target_alias: to.into(),
        };
        let ring = [("a", "b"), ("b", "c"), ("c", "a")];
        for born in ["a", "b", "c"] {
            let first = ring.iter().position(|(from, _)| *from == born).expect("on the ring");
            let mut record = OwnedRecord::default();
            let mut reached = Vec::new();
            for step in 0..ring.len() {
                let (from, to) = ring[(first + step) % ring.len()];
                match hop(from, to).apply(at, record.clone()) {
                    Some(copied) => {
                        assert_eq!(copied.header(ORIGIN_HEADER), Some(born.as_bytes()));
                        reached.push(to);
                        record = copied;
                    }
                    None => break,
                }
            }
            let mut others: Vec<&str> = ["a", "b", "c"].into_iter().filter(|c| *c != born).collect();
            others.sort_unstable();
            reached.sort_unstable();
            assert_eq!(reached, others, "born on {born}");
        }
    }

    /// Three clusters, every pair mirrored both ways: a record born on a reaches b and c by each
    /// path once, and then no more (only the birth marked, it went between b and c for ever).
    #[test]
    fn a_full_mesh_of_three_copies_each_record_a_bounded_number_of_times() {
        let at = SourcePosition { topic: "t", partition: 0, offset: 7 };
        let clusters = ["a", "b", "c"];
        let mut waiting = vec![("a", OwnedRecord::default())];
        let mut held: std::collections::BTreeMap<&str, usize> = Default::default();
        let mut copies = 0;
        while let Some((on, record)) = waiting.pop() {
            *held.entry(on).or_default() += 1;
            for to in clusters.iter().copied().filter(|c| *c != on) {
                let hop = Origin::ActiveActive { source_alias: on.into(), target_alias: to.into() };
                if let Some(copied) = hop.apply(at, record.clone()) {
                    copies += 1;
                    assert!(copies < 100, "copied without end: {held:?}");
                    waiting.push((to, copied));
                }
            }
        }
        assert_eq!(held, [("a", 1), ("b", 2), ("c", 2)].into_iter().collect());
    }

    /// A record whose only origin header an application wrote: marked with the cluster it was
    /// copied from, it never goes back there (it went between two clusters for ever).
    #[test]
    fn a_record_marked_by_an_application_stops_before_where_it_was_copied_from() {
        let at = SourcePosition { topic: "t", partition: 0, offset: 7 };
        let a_to_b = Origin::ActiveActive { source_alias: "a".into(), target_alias: "b".into() };
        let b_to_a = Origin::ActiveActive { source_alias: "b".into(), target_alias: "a".into() };
        let app = OwnedRecord {
            headers: vec![(ORIGIN_HEADER.into(), Some(b"app".to_vec()))],
            ..OwnedRecord::default()
        };
        let on_b = a_to_b.apply(at, app).expect("copied");
        assert_eq!(b_to_a.apply(at, on_b), None);
    }
}
