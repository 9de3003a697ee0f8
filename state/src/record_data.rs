//! A record's contents as kmirror promises to keep them: what `verify`, the audits of the tests
//! and the demo compare between a source record and its copy.

/// One record's key, value, headers (in order, duplicates kept) and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RecordData {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Create time in milliseconds; `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
}

impl RecordData {
    /// A record with a text key and value.
    pub fn keyed(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self { key: Some(key.into()), value: Some(value.into()), ..Self::default() }
    }
}

#[cfg(feature = "rdkafka")]
impl RecordData {
    /// Copies a message's preserved fields out of librdkafka's buffers.
    pub fn of<M: rdkafka::Message>(message: &M) -> Self {
        use rdkafka::message::Headers;
        let headers = message
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
            .unwrap_or_default();
        Self {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: message.timestamp().to_millis(),
        }
    }
}

/// An order-sensitive FNV-1a digest over records, field by field with lengths, so two
/// partitions' digests agree exactly when their records do (up to hash collisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordDigest(u64);

impl Default for RecordDigest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl RecordDigest {
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn field(&mut self, field: Option<&[u8]>) {
        match field {
            Some(b) => {
                self.bytes(&(b.len() as u64).to_be_bytes());
                self.bytes(b);
            }
            None => self.bytes(&u64::MAX.to_be_bytes()),
        }
    }

    pub fn add(&mut self, r: &RecordData) {
        self.field(r.key.as_deref());
        self.field(r.value.as_deref());
        for (k, v) in &r.headers {
            self.field(Some(k.as_bytes()));
            self.field(v.as_deref());
        }
        self.bytes(&r.timestamp.unwrap_or(-1).to_be_bytes());
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_tells_a_moved_byte_between_fields() {
        let mut a = RecordDigest::default();
        a.add(&RecordData::keyed("ab", "c"));
        let mut b = RecordDigest::default();
        b.add(&RecordData::keyed("a", "bc"));
        assert_ne!(a, b);
    }

    #[test]
    fn digest_depends_on_order() {
        let (x, y) = (RecordData::keyed("1", "x"), RecordData::keyed("2", "y"));
        let mut a = RecordDigest::default();
        a.add(&x);
        a.add(&y);
        let mut b = RecordDigest::default();
        b.add(&y);
        b.add(&x);
        assert_ne!(a, b);
        assert_eq!(a.hex().len(), 16);
    }
}
