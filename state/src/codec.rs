//! Every byte format of the map goes through here: a format-version byte, then bincode.
//! Keeping all of it in one place lets the format move later while old data stays readable.
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The version byte written in front of every encoded value whose format never changed.
pub const FORMAT_VERSION: u8 = 1;
/// The newest format this kmirror reads (see `MapRecord::decode`).
pub const NEWEST_VERSION: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value: no format version byte")]
    Empty,
    #[error("format version {found} is not known to this kmirror (it reads versions up to {NEWEST_VERSION}); upgrade kmirror")]
    UnknownVersion { found: u8 },
    #[error("could not decode a value: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("could not encode a value: {0}")]
    Encode(#[from] bincode::error::EncodeError),
}

/// Nothing kmirror writes comes near 16 MiB; the limit makes a damaged length prefix an error
/// instead of an attempt to allocate what it claims.
const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_VALUE_BYTES>()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode_as(FORMAT_VERSION, value)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_as(FORMAT_VERSION, bytes)
}

/// `value` behind the version byte `version`.
pub fn encode_as<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![version];
    out.extend(bincode::serde::encode_to_vec(value, config())?);
    Ok(out)
}

/// A value written with [`encode_as`]`(version, ..)`; any other version is refused.
pub fn decode_as<T: DeserializeOwned>(version: u8, bytes: &[u8]) -> Result<T, CodecError> {
    let found = version_of(bytes)?;
    if found != version {
        return Err(CodecError::UnknownVersion { found });
    }
    let (value, _) = bincode::serde::decode_from_slice(&bytes[1..], config())?;
    Ok(value)
}

/// The version byte of an encoded value.
pub fn version_of(bytes: &[u8]) -> Result<u8, CodecError> {
    bytes.first().copied().ok_or(CodecError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Run;

    #[test]
    fn values_round_trip_behind_the_version_byte() {
        let runs = vec![Run { source_start: 5, target_start: 9, len: 3 }];
        let bytes = encode(&runs).expect("encode");
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Vec<Run>>(&bytes).expect("decode"), runs);
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        assert!(matches!(decode::<Run>(&[]), Err(CodecError::Empty)));
        assert!(matches!(decode::<Run>(&[99, 1, 2]), Err(CodecError::UnknownVersion { found: 99 })));
        assert!(matches!(decode::<Run>(&[FORMAT_VERSION]), Err(CodecError::Decode(_))));
    }
}
