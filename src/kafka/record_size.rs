//! How large a record is, as a user would say it.
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// Key, value and header bytes of a record.
pub(crate) fn record_bytes(message: &BorrowedMessage<'_>) -> u64 {
    let headers: usize = message
        .headers()
        .map(|h| h.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len)).sum())
        .unwrap_or(0);
    (message.key_len() + message.payload_len() + headers) as u64
}
