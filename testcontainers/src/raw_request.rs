//! One plain-TCP connection that speaks Kafka requests itself (no client library), for what the
//! harness must see or do independently of librdkafka and of kmirror: raw log reads, ACLs.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use crate::error::{Error, Result};

pub(crate) struct RawConnection {
    stream: TcpStream,
    pub(crate) broker: String,
    correlation_id: i32,
}

pub(crate) fn protocol_error(broker: &str, message: impl Into<String>) -> Error {
    Error::Protocol { broker: broker.to_string(), message: message.into() }
}

impl RawConnection {
    pub(crate) fn open(broker: &str) -> Result<Self> {
        let stream = TcpStream::connect(broker)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self { stream, broker: broker.to_string(), correlation_id: 0 })
    }

    /// Sends `request` as `api_key` at `version` and reads its response.
    pub(crate) fn call<Req, Resp>(&mut self, api_key: ApiKey, version: i16, request: &Req) -> Result<Resp>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("kmirror-test-harness")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, Req::header_version(version))
            .and_then(|()| request.encode(&mut body, version))
            .map_err(|e| protocol_error(&self.broker, format!("encoding {api_key:?}: {e}")))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame)?;

        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = usize::try_from(i32::from_be_bytes(len))
            .map_err(|_| protocol_error(&self.broker, "negative frame length"))?;
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf)?;
        let mut buf = Bytes::from(buf);
        let response_header = ResponseHeader::decode(&mut buf, Resp::header_version(version))
            .map_err(|e| protocol_error(&self.broker, format!("decoding response header: {e}")))?;
        if response_header.correlation_id != self.correlation_id {
            return Err(protocol_error(&self.broker, "correlation id mismatch"));
        }
        Resp::decode(&mut buf, version)
            .map_err(|e| protocol_error(&self.broker, format!("decoding {api_key:?} response: {e}")))
    }
}
