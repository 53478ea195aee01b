//! Serving a tower service over HTTP/1.1 with hyper, and stopping it gracefully.
//!
//! [`serve`] accepts connections until its shutdown future completes, then stops accepting,
//! asks every connection to close after its current response, and waits at most the grace
//! period for them (a long SSE stream is cut at the end of it: its task is durable and goes
//! on after the next start).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client may take to send its request headers before the connection is closed
/// (a slow or idle client must not hold a connection forever).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections are served at once by default; one more is answered `503` and
/// closed (room for the 10 000 held streams of the benchmarks, with headroom).
pub const DEFAULT_MAX_CONNECTIONS: usize = 25_000;

/// How long a client refused for the connection cap is told to wait.
const OVERLOADED_RETRY_AFTER_S: u32 = 1;

/// How [`serve_with`] serves: the shutdown grace period, the header read timeout and the
/// connection cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeConfig {
    /// How long connections may take to finish after the shutdown future completes.
    pub grace: Duration,
    /// How long a client may take to send a request's headers in full before its connection
    /// is closed without an answer.
    pub header_read_timeout: Duration,
    /// Connections served at once; a connection beyond it gets one `503` envelope with
    /// `Retry-After` and is closed (it costs a task for that answer, not a worker).
    pub max_connections: usize,
}

impl ServeConfig {
    /// `grace` and the defaults: [`HEADER_READ_TIMEOUT`], [`DEFAULT_MAX_CONNECTIONS`].
    pub fn new(grace: Duration) -> ServeConfig {
        ServeConfig {
            grace,
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// The same with this connection cap (at least 1).
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> ServeConfig {
        self.max_connections = max.max(1);
        self
    }

    /// The same with this header read timeout (a slow-client test uses a short one).
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> ServeConfig {
        self.header_read_timeout = timeout;
        self
    }
}

/// Serves `service` on `listener` until `shutdown` completes, then drains connections for at
/// most `grace`; headers must arrive within [`HEADER_READ_TIMEOUT`].
///
/// # Errors
///
/// Never today: accept errors (out of descriptors, aborted handshakes) are retried after a
/// short pause. The `io::Result` leaves room for listener setup errors.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_with(listener, service, shutdown, ServeConfig::new(grace)).await
}

/// [`serve`] with every setting of [`ServeConfig`].
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_with<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
    config: ServeConfig,
) -> io::Result<()>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let mut refuse = hyper::server::conn::http1::Builder::new();
    refuse
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(%err, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the cap: one 503 and the connection closes.
            let connection = refuse.serve_connection(
                TokioIo::new(stream),
                hyper::service::service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(overloaded())
                }),
            );
            tokio::spawn(async move {
                let _ = connection.await;
            });
            continue;
        };
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A connection that ends badly (the client left, a parse error answered by hyper)
            // is no server error.
            if let Err(err) = connection.await {
                tracing::debug!(%err, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(config.grace, graceful.shutdown()).await.is_err() {
        tracing::info!(
            grace_s = config.grace.as_secs_f64(),
            "connections still open after the grace period; closing them"
        );
    }
    Ok(())
}

/// The answer to a connection over the cap.
fn overloaded() -> Response<http_body_util::Full<Bytes>> {
    let err = sora2api_tower::core::Error::Overloaded {
        what: "connections",
        retry_after_secs: OVERLOADED_RETRY_AFTER_S,
    };
    sora2api_tower::error::error_response(&err).map(http_body_util::Full::new)
}

/// Completes on ctrl-c, or on SIGTERM on Unix.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// A response of the proxy's inner service.
type Answer = std::future::Ready<Result<Response<http_body_util::Full<Bytes>>, Infallible>>;

/// The proxy's inner service: every request the gateway does not own gets the 404 envelope
/// (the proxy serves nothing else).
pub type NotFound = tower::util::ServiceFn<fn(Request<Incoming>) -> Answer>;

/// The [`NotFound`] service.
pub fn not_found() -> NotFound {
    fn answer(req: Request<Incoming>) -> Answer {
        let err = sora2api_tower::core::Error::RouteNotFound {
            method: req.method().to_string(),
            path: req.uri().path().chars().take(200).collect(),
        };
        let response = sora2api_tower::error::error_response(&err).map(http_body_util::Full::new);
        std::future::ready(Ok(response))
    }
    tower::service_fn(answer as fn(_) -> _)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// One `GET /` on `stream` (kept open); the status and the raw response head.
    async fn get(stream: &mut TcpStream) -> (u16, String) {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text.to_ascii_lowercase())
    }

    #[tokio::test]
    async fn connections_over_the_cap_get_one_503_and_the_slot_comes_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ServeConfig::new(Duration::from_millis(100)).max_connections(1);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(
            listener,
            not_found(),
            async {
                let _ = stopped.await;
            },
            config,
        ));
        let mut first = TcpStream::connect(addr).await.unwrap();
        assert_eq!(get(&mut first).await.0, 404, "served (the not-found service)");
        let mut second = TcpStream::connect(addr).await.unwrap();
        let (status, head) = get(&mut second).await;
        assert_eq!(status, 503, "{head}");
        assert!(head.contains("retry-after: 1"), "{head}");
        assert!(head.contains("\"code\":\"overloaded\""), "{head}");
        drop(first);
        // The slot returns once the first connection's task sees the close.
        let mut served = false;
        for _ in 0..100 {
            let mut third = TcpStream::connect(addr).await.unwrap();
            if get(&mut third).await.0 == 404 {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(served, "a freed slot serves the next connection");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
