//! A long link between clients and a test broker: every byte arrives a fixed time after it was
//! sent, each way, as across regions. This machine's kernel has no `sch_netem` (the delay
//! qdisc of `tc`), so the delay is added here, in user space: each chunk read from one end is
//! written to the other once `one_way` has passed since it was read, while later chunks keep
//! flowing (the link carries many bytes in flight, as a real one does). Bandwidth is not
//! limited and loopback TCP windows are wide, so what such a link costs a client here is its
//! round trips, which is what request pipelining and transaction sizing have to hide.
//!
//! The link can also be cut ([`SlowLink::set_cut`]): nothing crosses it until it is healed,
//! while both ends stay up and their connections open, as in a network partition (unlike a
//! frozen broker, whose own timers stop too). Bytes sent meanwhile arrive after the heal, as
//! TCP's retransmissions would bring them.
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::debug;

/// One read from a socket; a record batch of a fetch fits in a few.
const CHUNK: usize = 256 * 1024;

/// The listening end; dropping it stops accepting (open connections carry on).
pub struct SlowLink {
    address: String,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SlowLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowLink").field("address", &self.address).finish_non_exhaustive()
    }
}

impl SlowLink {
    /// Accepts on `listener` and carries each connection to `upstream`, `one_way` late each way.
    pub fn start(listener: TcpListener, upstream: String, one_way: Duration) -> io::Result<Self> {
        let address = listener.local_addr()?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let accept = {
            let (stop, cut) = (Arc::clone(&stop), Arc::clone(&cut));
            std::thread::Builder::new().name("slow-link".into()).spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(client) = client else {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    if let Err(e) = carry(client, &upstream, one_way, &cut) {
                        debug!(error = %e, %upstream, "slow link connection refused");
                    }
                }
            })?
        };
        Ok(Self { address, stop, cut, accept: Some(accept) })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Cuts the link (true) or heals it (false).
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocking accept so the thread sees the flag.
        if TcpStream::connect(&self.address).is_ok() {
            if let Some(accept) = self.accept.take() {
                let _ = accept.join();
            }
        }
    }
}

fn carry(client: TcpStream, upstream: &str, one_way: Duration, cut: &Arc<AtomicBool>) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    for socket in [&client, &server] {
        socket.set_nodelay(true)?;
    }
    pump(client.try_clone()?, server.try_clone()?, one_way, Arc::clone(cut))?;
    pump(server, client, one_way, Arc::clone(cut))
}

/// Carries `from` to `to`, late by `one_way`: a reader thread stamps each chunk with the time
/// it is due, a writer thread sleeps until then. The end of one direction closes the other
/// end's writing side, as TCP would; a failed write closes both.
fn pump(mut from: TcpStream, mut to: TcpStream, one_way: Duration, cut: Arc<AtomicBool>) -> io::Result<()> {
    let (chunks, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader_end = from.try_clone()?;
    std::thread::Builder::new().name("slow-link-write".into()).spawn(move || {
        for (at, bytes) in due {
            let wait = at.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            while cut.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if to.write_all(&bytes).is_err() {
                let _ = reader_end.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    })?;
    std::thread::Builder::new().name("slow-link-read".into()).spawn(move || {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if chunks.send((Instant::now() + one_way, buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the link: a request and its answer cross it twice.
    #[test]
    fn a_round_trip_takes_twice_the_one_way_delay_and_keeps_every_byte_in_order() {
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let upstream = echo.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().expect("accept");
            let mut r = s.try_clone().expect("clone");
            let _ = io::copy(&mut r, &mut s);
        });
        let link = SlowLink::start(
            TcpListener::bind("127.0.0.1:0").expect("bind"),
            upstream,
            Duration::from_millis(40),
        )
        .expect("link");
        let mut client = TcpStream::connect(link.address()).expect("connect");
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        client.write_all(&message).expect("write");
        let mut back = vec![0u8; message.len()];
        client.read_exact(&mut back).expect("read");
        let took = started.elapsed();
        assert_eq!(back, message);
        assert!(took >= Duration::from_millis(80), "a round trip took {took:?}, less than twice 40 ms");
        assert!(took < Duration::from_secs(2), "a round trip took {took:?}");
    }
}
