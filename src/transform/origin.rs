//! Where a record came from: a provenance header naming the source cluster and position, and
//! the origin mark of active-active mirroring, which keeps a record from cycling back to the
//! cluster it was first written to.
use super::{OwnedRecord, SourcePosition};

/// The header naming the cluster a record was first written to.
pub(crate) const ORIGIN_HEADER: &str = "kmirror.origin";
/// The header naming the source cluster alias and position of a mirrored record.
pub(crate) const PROVENANCE_HEADER: &str = "kmirror.provenance";

#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// Adds `kmirror.provenance: ALIAS/topic/partition/offset`.
    Provenance(String),
    /// Active-active: drops records first written on the target cluster, and marks the others
    /// with the cluster they were first written to.
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
            Self::ActiveActive { source_alias, target_alias } => match record.header(ORIGIN_HEADER) {
                Some(origin) if origin == target_alias.as_bytes() => None,
                Some(_) => Some(record),
                None => {
                    record.headers.push((ORIGIN_HEADER.into(), Some(source_alias.as_bytes().to_vec())));
                    Some(record)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
