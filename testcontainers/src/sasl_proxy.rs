//! A SASL_PLAINTEXT front for a test broker: it answers SaslHandshake and SaslAuthenticate
//! itself (SCRAM, see [`crate::scram`]), refuses any other request before authentication, and
//! after it passes bytes through unchanged. The broker advertises the front's port, so every
//! client connection (bootstrap, leader, coordinator) goes through it, as with a broker whose
//! listener requires SASL.
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tracing::{debug, info};

use crate::scram::{credentials, Credentials, Exchange, Mechanism, Step};

const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// Larger than any request the tests send; a bigger length prefix means a broken stream.
const MAX_FRAME: usize = 128 * 1024 * 1024;

struct Config {
    broker: String,
    credentials: Vec<(Mechanism, Credentials)>,
    authenticated: AtomicUsize,
    failed: AtomicUsize,
    unauthenticated: AtomicUsize,
}

/// The running front; dropping it stops accepting connections.
pub struct SaslProxy {
    address: String,
    stop: Arc<AtomicBool>,
    config: Arc<Config>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SaslProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslProxy").field("address", &self.address).finish_non_exhaustive()
    }
}

impl SaslProxy {
    /// Listens on `listener` and forwards authenticated connections to `broker`. `users` are
    /// (name, password) pairs; each gets a credential for every mechanism in `mechanisms`.
    pub(crate) fn start(
        listener: TcpListener,
        broker: String,
        mechanisms: &[Mechanism],
        users: &[(String, String)],
    ) -> io::Result<Self> {
        let address = listener.local_addr()?.to_string();
        let config = Arc::new(Config {
            broker,
            credentials: mechanisms.iter().map(|&m| (m, credentials(m, users))).collect(),
            authenticated: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            unauthenticated: AtomicUsize::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (config, stop) = (Arc::clone(&config), Arc::clone(&stop));
            std::thread::Builder::new().name("sasl-proxy".into()).spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(client) = client else {
                        // e.g. out of file descriptors: do not spin.
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        continue;
                    };
                    let config = Arc::clone(&config);
                    let _ = std::thread::Builder::new().name("sasl-conn".into()).spawn(move || {
                        if let Err(e) = serve(client, &config) {
                            debug!(error = %e, "sasl proxy connection ended");
                        }
                    });
                }
            })?
        };
        Ok(Self { address, stop, config, accept: Some(accept) })
    }

    /// Connections that authenticated so far.
    pub fn authenticated(&self) -> usize {
        self.config.authenticated.load(Ordering::Relaxed)
    }

    /// Logins refused so far (a mechanism not enabled, an unknown user, a wrong password).
    pub fn refused(&self) -> usize {
        self.config.failed.load(Ordering::Relaxed)
    }

    /// Connections closed because a request other than ApiVersions or SASL came before a login.
    pub fn unauthenticated(&self) -> usize {
        self.config.unauthenticated.load(Ordering::Relaxed)
    }
}

impl Drop for SaslProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocking accept so the thread sees the flag; if that fails the thread is
        // left to end with the process rather than hang this drop.
        if TcpStream::connect(&self.address).is_ok() {
            if let Some(accept) = self.accept.take() {
                let _ = accept.join();
            }
        }
    }
}

/// How long a client may stay silent before it has logged in.
const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn serve(mut client: TcpStream, config: &Config) -> io::Result<()> {
    client.set_read_timeout(Some(LOGIN_TIMEOUT))?;
    let mut broker: Option<TcpStream> = None;
    let mut exchange: Option<Exchange<'_>> = None;
    // SaslHandshake v0 is followed by bare SASL tokens instead of SaslAuthenticate requests.
    let mut bare_tokens = false;
    loop {
        let frame = read_frame(&mut client)?;
        if bare_tokens {
            let Some(exchange) = exchange.as_mut() else { return Ok(()) };
            match exchange.step(&frame) {
                Step::Continue(reply) => write_frame(&mut client, &reply)?,
                Step::Success { response, user } => {
                    write_frame(&mut client, &response)?;
                    authenticated(config, &user);
                    break;
                }
                Step::Failure(reason) => {
                    refused(config, &reason);
                    return Ok(());
                }
            }
            continue;
        }
        let mut body = Bytes::from(frame);
        let (Some(key), Some(version)) = (peek_i16(&body, 0), peek_i16(&body, 2)) else {
            return Ok(());
        };
        match ApiKey::try_from(key) {
            Ok(ApiKey::ApiVersions) => {
                let upstream = match broker.as_mut() {
                    Some(upstream) => upstream,
                    None => broker.insert(TcpStream::connect(&config.broker)?),
                };
                write_frame(upstream, &body)?;
                let response = read_frame(upstream)?;
                write_frame(&mut client, &response)?;
            }
            Ok(ApiKey::SaslHandshake) => {
                let (header, request) = decode::<SaslHandshakeRequest>(&mut body, version)?;
                let chosen = config.credentials.iter().find(|(m, _)| m.name() == request.mechanism.as_str());
                let response = SaslHandshakeResponse::default()
                    .with_error_code(if chosen.is_some() { 0 } else { UNSUPPORTED_SASL_MECHANISM })
                    .with_mechanisms(
                        config.credentials.iter().map(|(m, _)| StrBytes::from_static_str(m.name())).collect(),
                    );
                respond(&mut client, header.correlation_id, version, &response)?;
                let Some((mechanism, credentials)) = chosen else {
                    refused(config, &format!("mechanism {} not enabled", request.mechanism.as_str()));
                    return Ok(());
                };
                exchange = Some(Exchange::new(*mechanism, credentials));
                bare_tokens = version == 0;
            }
            Ok(ApiKey::SaslAuthenticate) => {
                let (header, request) = decode::<SaslAuthenticateRequest>(&mut body, version)?;
                let Some(exchange) = exchange.as_mut() else {
                    refused(config, "SaslAuthenticate before SaslHandshake");
                    return Ok(());
                };
                let reply = |error_code: i16, message: Option<String>, bytes: Vec<u8>| {
                    SaslAuthenticateResponse::default()
                        .with_error_code(error_code)
                        .with_error_message(message.map(StrBytes::from_string))
                        .with_auth_bytes(Bytes::from(bytes))
                };
                match exchange.step(&request.auth_bytes) {
                    Step::Continue(bytes) => {
                        respond(&mut client, header.correlation_id, version, &reply(0, None, bytes))?
                    }
                    Step::Success { response, user } => {
                        respond(&mut client, header.correlation_id, version, &reply(0, None, response))?;
                        authenticated(config, &user);
                        break;
                    }
                    Step::Failure(reason) => {
                        // Kafka's wording, which names neither the user nor anything secret.
                        let message = "Authentication failed during authentication due to invalid credentials with SASL mechanism";
                        respond(
                            &mut client,
                            header.correlation_id,
                            version,
                            &reply(SASL_AUTHENTICATION_FAILED, Some(message.to_string()), Vec::new()),
                        )?;
                        refused(config, &reason);
                        return Ok(());
                    }
                }
            }
            _ => {
                config.unauthenticated.fetch_add(1, Ordering::Relaxed);
                info!(api_key = key, "sasl proxy: request before authentication; closing the connection");
                return Ok(());
            }
        }
    }
    client.set_read_timeout(None)?;
    let broker = match broker {
        Some(broker) => broker,
        None => TcpStream::connect(&config.broker)?,
    };
    pump(client, broker)
}

fn authenticated(config: &Config, user: &str) {
    config.authenticated.fetch_add(1, Ordering::Relaxed);
    debug!(user, "sasl proxy: authenticated");
}

fn refused(config: &Config, reason: &str) {
    config.failed.fetch_add(1, Ordering::Relaxed);
    info!(reason, "sasl proxy: authentication refused; closing the connection");
}

/// Copies both directions until either side closes.
fn pump(client: TcpStream, broker: TcpStream) -> io::Result<()> {
    let (mut client_in, mut broker_out) = (client.try_clone()?, broker.try_clone()?);
    let upstream = std::thread::Builder::new().name("sasl-up".into()).spawn(move || {
        let _ = io::copy(&mut client_in, &mut broker_out);
        let _ = broker_out.shutdown(Shutdown::Both);
        let _ = client_in.shutdown(Shutdown::Both);
    })?;
    let (mut broker_in, mut client_out) = (broker, client);
    let _ = io::copy(&mut broker_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = broker_in.shutdown(Shutdown::Both);
    let _ = upstream.join();
    Ok(())
}

fn peek_i16(body: &Bytes, at: usize) -> Option<i16> {
    body.get(at..at + 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
}

fn decode<R: Decodable + HeaderVersion>(body: &mut Bytes, version: i16) -> io::Result<(RequestHeader, R)> {
    let header = RequestHeader::decode(body, R::header_version(version)).map_err(invalid)?;
    let request = R::decode(body, version).map_err(invalid)?;
    Ok((header, request))
}

fn respond<R: Encodable + HeaderVersion>(
    client: &mut TcpStream,
    correlation_id: i32,
    version: i16,
    response: &R,
) -> io::Result<()> {
    let mut body = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut body, R::header_version(version))
        .and_then(|()| response.encode(&mut body, version))
        .map_err(invalid)?;
    write_frame(client, &body)
}

pub(crate) fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = usize::try_from(i32::from_be_bytes(len)).map_err(invalid)?;
    if len > MAX_FRAME {
        return Err(invalid(format!("frame of {len} bytes")));
    }
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

fn write_frame(stream: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let len = i32::try_from(body.len()).map_err(invalid)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame)
}
