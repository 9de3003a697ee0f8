//! kmirror's exact offset-translation map.
//!
//! A mirror transaction turns a contiguous range of source offsets into a contiguous range of
//! target offsets, record for record: a [`Run`]. The runs of every transaction are written to a
//! map topic on the target inside that same transaction, so the map is committed exactly when
//! the data is. [`MapStore`] materialises that topic in RocksDB for translation in both
//! directions; it is a cache that can always be rebuilt from the topic.
pub mod codec;
mod error;
mod keys;
mod record_data;
mod records;
mod store;
mod translate;
mod types;

pub use codec::{CodecError, FORMAT_VERSION, NEWEST_VERSION};
pub use error::{Result, StateError};
pub use record_data::{RecordData, RecordDigest};
pub use records::{Checkpoint, GroupOffset, MapRecord, Skipped};
pub use store::{MapStore, Opened};
pub use translate::{translate, Answer, Span};
pub use types::{Offset, Run, TopicPartition};
