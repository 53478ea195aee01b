//! The load generator: N workers, each with one HTTP/1.1 keep-alive connection, sending one
//! request at a time until a deadline.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::measure::now;

/// Makes the request with this sequence number.
pub type MakeRequest = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// One finished request: its sequence number and latency, ns.
pub type Sample = (u64, u64);

/// What a run of workers produced.
#[derive(Debug, Default)]
pub struct Run {
    pub samples: Vec<Sample>,
    pub elapsed: Duration,
    /// Requests that failed or got another status than expected.
    pub errors: u64,
}

/// Opens one keep-alive connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Runs `concurrency` workers against `addr` for `duration` (after connecting), each sending
/// `make(seq)` and expecting `expect`.
pub async fn run(
    addr: SocketAddr,
    concurrency: usize,
    duration: Duration,
    make: MakeRequest,
    expect: StatusCode,
) -> Result<Run, String> {
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        senders.push(connect(addr).await?);
    }
    let seq = Arc::new(AtomicU64::new(0));
    let start = now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for sender in senders {
        let (make, seq) = (make.clone(), seq.clone());
        workers.push(tokio::spawn(worker(sender, deadline, make, seq, expect)));
    }
    let mut total = Run::default();
    for worker in workers {
        let (samples, errors) = worker.await.map_err(|e| e.to_string())?;
        total.samples.extend(samples);
        total.errors += errors;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

async fn worker(
    mut sender: SendRequest<Full<Bytes>>,
    deadline: Instant,
    make: MakeRequest,
    seq: Arc<AtomicU64>,
    expect: StatusCode,
) -> (Vec<Sample>, u64) {
    let mut samples = Vec::new();
    let mut errors = 0;
    while now() < deadline {
        if sender.ready().await.is_err() {
            errors += 1;
            break;
        }
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let req = make(n);
        let start = now();
        let ok = match sender.send_request(req).await {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await;
                status == expect && body.is_ok()
            }
            Err(_) => false,
        };
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if ok {
            samples.push((n, ns));
        } else {
            errors += 1;
        }
    }
    (samples, errors)
}
