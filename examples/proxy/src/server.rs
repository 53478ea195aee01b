//! Serving a tower service over HTTP/1.1 with hyper, and stopping it gracefully.
//!
//! [`serve`] accepts connections until its shutdown future completes, then stops accepting,
//! asks every connection to close after its current response, and waits at most the grace
//! period for them (a long SSE stream is cut at the end of it: its task is durable and goes
//! on after the next start).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long a client may take to send its request headers before the connection is closed
/// (a slow or idle client must not hold a connection forever).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How [`serve_with`] serves: the shutdown grace period and the header read timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeConfig {
    /// How long connections may take to finish after the shutdown future completes.
    pub grace: Duration,
    /// How long a client may take to send a request's headers in full before its connection
    /// is closed without an answer.
    pub header_read_timeout: Duration,
}

impl ServeConfig {
    /// `grace` and the default [`HEADER_READ_TIMEOUT`].
    pub fn new(grace: Duration) -> ServeConfig {
        ServeConfig { grace, header_read_timeout: HEADER_READ_TIMEOUT }
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
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A connection that ends badly (the client left, a parse error answered by hyper)
            // is no server error.
            if let Err(err) = connection.await {
                tracing::debug!(%err, "connection ended");
            }
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
