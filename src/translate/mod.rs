//! The offset map read back: the local copy kept up to date from the map topic ([`map_sync`]),
//! exact translation both ways ([`translator`]), checkpoints of source groups ([`checkpoint`])
//! and their translated commit on the target ([`group_sync`]).
pub(crate) mod checkpoint;
pub(crate) mod group_sync;
pub(crate) mod map_sync;
pub(crate) mod translator;
