use std::path::PathBuf;

use crate::codec::CodecError;

/// Errors of the offset-map store; each names the directory and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state dir {path} is locked by another process (RocksDB lock); stop it or use another --state-dir"
    )]
    Locked { path: PathBuf },
    #[error("state dir {path} is corrupt ({message}); delete it and kmirror rebuilds it from the target")]
    Corrupt { path: PathBuf, message: String },
    #[error("state dir {path} belongs to mirror '{found}', not '{expected}'; use another --state-dir")]
    Foreign { path: PathBuf, found: String, expected: String },
    #[error("state dir {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("undecodable entry in state dir {path}: {source}; delete the directory and kmirror rebuilds it from the target")]
    Codec { path: PathBuf, source: CodecError },
}

pub type Result<T, E = StateError> = std::result::Result<T, E>;
