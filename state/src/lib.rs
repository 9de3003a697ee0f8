//! kmirror's exact offset-translation map.
//!
//! A mirror transaction turns a contiguous range of source offsets into a contiguous range of
//! target offsets, record for record: a [`Run`]. The runs of every transaction are written to a
//! map topic on the target inside that same transaction, so the map is committed exactly when
//! the data is. This crate holds the types, their versioned encoding, and (next) the RocksDB
//! store that materialises the map topic for translation.
pub mod codec;
mod types;

pub use codec::{CodecError, FORMAT_VERSION};
pub use types::{Offset, Run, TopicPartition};
