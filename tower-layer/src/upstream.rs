//! The `Upstream` IO seam and its reqwest implementation, [`HttpUpstream`].
//!
//! The core speaks plain data ([`UpstreamRequest`], [`UpstreamReply`], [`TransportError`]);
//! this module turns that into HTTP. Which host a request goes to is the core's business: its
//! URLs are absolute and every host is configurable there (`UpstreamConfig`).
//!
//! # Sending
//!
//! [`Upstream::send`] sends exactly the method, URL, headers (in order; a repeated name keeps
//! all its values, sent together where the name first appears) and body of the request and returns the status, headers and body of the reply. What the HTTP
//! stack adds: `host`, `content-length` (or chunked framing) as HTTP/1.1 needs them, and
//! `accept: */*` **only if the request has no `accept` header** (reqwest inserts it and offers
//! no way to turn it off). No `user-agent` is added, no cookies are kept, no compression is
//! negotiated, no `referer` is set, and **redirects are never followed**: a 3xx comes back as
//! a reply for the core to classify (and `authorization` never travels to another host).
//!
//! - The request's `timeout_ms` bounds the whole exchange, body included
//!   ([`TransportError::Timeout`]); [`HttpUpstreamConfig::connect_timeout_ms`] bounds each
//!   connection attempt.
//! - The body is read chunk by chunk and abandoned as soon as it would pass
//!   [`HttpUpstreamConfig::max_reply_bytes`] ([`TransportError::TooLarge`]); a `content-length`
//!   over the limit fails before any of the body is read.
//! - Header values that are not UTF-8 come back lossily converted.
//!
//! # Proxies and connection reuse
//!
//! A request goes through its own `proxy` if it has one, else through
//! [`HttpUpstreamConfig::global_proxy`] (replaceable at run time with
//! [`Upstream::set_global_proxy`]), else directly (proxy selection per token is the core's,
//! sora-backend.md 1.3). Proxy URLs are `http://`, `https://`, `socks5://` (names resolved
//! locally) or `socks5h://` (names resolved by the proxy), with optional `user:password@`.
//! Environment variables such as `HTTPS_PROXY` are ignored: only configuration routes traffic.
//!
//! Each distinct proxy gets one `reqwest::Client`, and with it one connection pool (HTTP/1.1
//! keep-alive). The default client (global proxy or none) is built up front; per-request proxy
//! clients are built on first use and cached by proxy URL, at most [`MAX_PROXY_CLIENTS`],
//! evicting the least recently used.
//!
//! Every upstream connection costs the gateway ~40 KiB (hyper's read and write buffers, its
//! dispatch channel, the connection task), and HTTP/1.1 carries one request at a time, so
//! bursts of calls (10 000 tasks polling at once) would open thousands of connections
//! (3 697 were seen in the 10 000-stream benchmark). Two limits bound that:
//! [`HttpUpstreamConfig::max_in_flight`] calls at once over every client (more wait for a
//! slot, within their own timeout), and [`HttpUpstreamConfig::max_idle_per_host`] idle
//! connections kept per host and client (more are closed when they go idle).
//!
//! # Errors
//!
//! | reqwest says | [`TransportError`] |
//! |---|---|
//! | the request's `timeout_ms` or the connect timeout passed | `Timeout` |
//! | connecting failed (DNS, refused, TLS), no proxy | `Connect` |
//! | connecting failed through a proxy (proxy down, CONNECT or SOCKS refused; also a TLS failure with the host inside the tunnel, which reqwest does not tell apart) | `Proxy` |
//! | the request's proxy URL is unusable | `Proxy` |
//! | the connection broke while sending or receiving | `Reset` |
//! | the reply is larger than `max_reply_bytes` | `TooLarge` |
//! | the request itself is malformed (URL, header name or value) | `Connect` |
//!
//! # Fetching client-chosen URLs
//!
//! [`Upstream::fetch`] is the only request whose URL a client chooses; it runs under a
//! [`FetchPolicy`] (see [`crate::fetch`]): http(s) only, public addresses unless allowed,
//! redirects followed by hand and re-checked, size and time limits, never through a proxy.
//!
//! Nothing here logs; `Debug` of the configuration hides proxy URLs (they carry credentials).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Client, Proxy, Response, Url};
use sora2api_core::upstream::{Method, TransportError, UpstreamReply, UpstreamRequest};
use tokio::sync::Semaphore;

use crate::fetch::{FetchError, FetchPolicy, Fetcher};

/// A boxed, `Send` future: what the object-safe IO seams return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The shell's way out to the network. Object-safe: the driver holds an `Arc<dyn Upstream>`.
///
/// Implementations: [`HttpUpstream`] (the network); tests and demo mode put the simulated
/// backend behind the same trait.
pub trait Upstream: Send + Sync + 'static {
    /// Sends one request the core built and waits for the complete reply, within the request's
    /// `timeout_ms`. A reply with any status (3xx, 4xx and 5xx included) is `Ok`; `Err` means
    /// no complete reply came back.
    fn send(&self, req: UpstreamRequest) -> BoxFuture<'_, Result<UpstreamReply, TransportError>>;

    /// Fetches the body of a URL a client chose (a `video` URL), under the implementation's
    /// fetch policy. The error's `Display` is fit for the message of a 400 reply.
    fn fetch(&self, url: String) -> BoxFuture<'_, Result<Bytes, FetchError>>;

    /// Replaces the proxy for requests without their own (`None`: direct), for requests sent
    /// from now on (the admin API's proxy setting). The URL is checked as
    /// [`check_proxy_url`] does. The default refuses with [`BuildError::Unsupported`]: an
    /// upstream that cannot route through a proxy must say so rather than ignore it.
    fn set_global_proxy(&self, url: Option<&str>) -> Result<(), BuildError> {
        let _ = url;
        Err(BuildError::Unsupported)
    }
}

impl<U: Upstream + ?Sized> Upstream for Arc<U> {
    fn send(&self, req: UpstreamRequest) -> BoxFuture<'_, Result<UpstreamReply, TransportError>> {
        (**self).send(req)
    }

    fn fetch(&self, url: String) -> BoxFuture<'_, Result<Bytes, FetchError>> {
        (**self).fetch(url)
    }

    fn set_global_proxy(&self, url: Option<&str>) -> Result<(), BuildError> {
        (**self).set_global_proxy(url)
    }
}

/// At most this many per-request proxy clients are kept (least recently used evicted).
pub const MAX_PROXY_CLIENTS: usize = 256;

// === impl HttpUpstreamConfig ===

/// How [`HttpUpstream`] connects.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUpstreamConfig {
    /// The proxy for requests without their own (`http`, `https`, `socks5`, `socks5h` URL).
    pub global_proxy: Option<String>,
    /// How long one connection attempt may take (TCP, proxy handshake, TLS), in milliseconds.
    /// Must be > 0.
    pub connect_timeout_ms: u64,
    /// The largest reply body [`Upstream::send`] accepts, in bytes. Must be > 0.
    pub max_reply_bytes: usize,
    /// The rules for [`Upstream::fetch`].
    pub fetch: FetchPolicy,
    /// Calls to [`Upstream::send`] in flight at once, over every client; more wait for a
    /// slot, and the wait counts toward the request's timeout. Must be > 0. The default,
    /// 1 024, carries ~3 400 calls/s at a 300 ms round trip: 10 000 tasks polling every
    /// 2.5 s need 4 000/s, so raise it with the task count against a slow upstream.
    pub max_in_flight: usize,
    /// Idle keep-alive connections kept per host and client; more are closed as they go
    /// idle.
    pub max_idle_per_host: usize,
}

impl Default for HttpUpstreamConfig {
    /// No global proxy, 10 s to connect, replies up to 64 MiB, [`FetchPolicy::default`],
    /// 1 024 calls in flight, 64 idle connections per host.
    fn default() -> Self {
        HttpUpstreamConfig {
            global_proxy: None,
            connect_timeout_ms: 10_000,
            max_reply_bytes: 64 << 20,
            fetch: FetchPolicy::default(),
            max_in_flight: 1_024,
            max_idle_per_host: 64,
        }
    }
}

impl fmt::Debug for HttpUpstreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpUpstreamConfig")
            .field("global_proxy", &self.global_proxy.as_ref().map(|_| "<set>"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .field("fetch", &self.fetch)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_idle_per_host", &self.max_idle_per_host)
            .finish()
    }
}

/// Why [`HttpUpstream::new`] (or [`check_proxy_url`]) refused a configuration. Messages never
/// contain the proxy URL (it may carry credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A proxy URL does not parse as an absolute URL.
    ProxyUrl,
    /// A proxy URL's scheme is not `http`, `https`, `socks5` or `socks5h` (the scheme given).
    ProxyScheme(String),
    /// A proxy URL has no host.
    ProxyHost,
    /// A limit that must be positive is 0 (the field's name).
    Zero(&'static str),
    /// The HTTP client could not be built (TLS backend initialisation failed).
    Client,
    /// The upstream cannot change its global proxy ([`Upstream::set_global_proxy`]'s
    /// default).
    Unsupported,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ProxyUrl => f.write_str("the proxy URL is not a valid absolute URL"),
            BuildError::ProxyScheme(scheme) => write!(
                f,
                "the proxy URL scheme {scheme:?} is not supported (use http, https, socks5 or socks5h)"
            ),
            BuildError::ProxyHost => f.write_str("the proxy URL has no host"),
            BuildError::Zero(field) => write!(f, "{field} must be greater than 0"),
            BuildError::Client => f.write_str("the HTTP client could not be built"),
            BuildError::Unsupported => f.write_str("this upstream cannot use a global proxy"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Checks a proxy URL the way [`HttpUpstream`] will use it: an absolute `http`, `https`,
/// `socks5` or `socks5h` URL with a host. For validating per-token proxies when they are
/// configured, so a typo is refused then rather than failing each request with
/// [`TransportError::Proxy`].
pub fn check_proxy_url(url: &str) -> Result<(), BuildError> {
    proxy_of(url).map(|_| ())
}

fn proxy_of(url: &str) -> Result<Proxy, BuildError> {
    let parsed = Url::parse(url).map_err(|_| BuildError::ProxyUrl)?;
    if !matches!(parsed.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(BuildError::ProxyScheme(parsed.scheme().to_owned()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(BuildError::ProxyHost);
    }
    Proxy::all(parsed).map_err(|_| BuildError::ProxyUrl)
}

// === impl HttpUpstream ===

/// [`Upstream`] over reqwest with rustls. Cheap to clone (the clients and their pools are
/// shared). See the [module docs](self) for what is sent, proxies and errors.
#[derive(Clone)]
pub struct HttpUpstream {
    inner: Arc<Inner>,
}

struct Inner {
    /// The client for requests without their own proxy; replaced by `set_global_proxy`.
    global: RwLock<Global>,
    connect_timeout: Duration,
    max_reply_bytes: usize,
    max_idle_per_host: usize,
    /// One permit per call in flight ([`HttpUpstreamConfig::max_in_flight`]).
    in_flight: Semaphore,
    /// Per-request proxy clients by proxy URL.
    proxies: Mutex<ProxyClients>,
    fetcher: Fetcher,
}

/// The global proxy and the client that goes through it.
struct Global {
    /// Through the global proxy, or direct.
    client: Client,
    /// The global proxy URL, if any (a request naming it uses `client`).
    proxy: Option<String>,
}

impl fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let global = self.inner.global.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("HttpUpstream")
            .field("global_proxy", &global.proxy.as_ref().map(|_| "<set>"))
            .field("max_reply_bytes", &self.inner.max_reply_bytes)
            .finish_non_exhaustive()
    }
}

impl HttpUpstream {
    /// Validates the configuration (proxy URL, positive limits) and builds the default and
    /// fetch clients. Per-request proxy clients are built on first use.
    pub fn new(cfg: HttpUpstreamConfig) -> Result<Self, BuildError> {
        if cfg.connect_timeout_ms == 0 {
            return Err(BuildError::Zero("connect_timeout_ms"));
        }
        if cfg.max_reply_bytes == 0 {
            return Err(BuildError::Zero("max_reply_bytes"));
        }
        if cfg.max_in_flight == 0 {
            return Err(BuildError::Zero("max_in_flight"));
        }
        let connect_timeout = Duration::from_millis(cfg.connect_timeout_ms);
        let global = cfg.global_proxy.as_deref().map(proxy_of).transpose()?;
        let default = client(global, connect_timeout, cfg.max_idle_per_host)?;
        let fetcher = Fetcher::new(cfg.fetch, connect_timeout)?;
        Ok(HttpUpstream {
            inner: Arc::new(Inner {
                global: RwLock::new(Global { client: default, proxy: cfg.global_proxy }),
                connect_timeout,
                max_reply_bytes: cfg.max_reply_bytes,
                max_idle_per_host: cfg.max_idle_per_host,
                in_flight: Semaphore::new(cfg.max_in_flight.min(Semaphore::MAX_PERMITS)),
                proxies: Mutex::new(ProxyClients::default()),
                fetcher,
            }),
        })
    }

    /// The client for a request's proxy, and whether a proxy is in use.
    fn client_for(&self, proxy: Option<&str>) -> Result<(Client, bool), TransportError> {
        let inner = &self.inner;
        let proxy = {
            let global = inner.global.read().unwrap_or_else(PoisonError::into_inner);
            match proxy {
                None => return Ok((global.client.clone(), global.proxy.is_some())),
                Some(p) if global.proxy.as_deref() == Some(p) => {
                    return Ok((global.client.clone(), true))
                }
                Some(p) => p,
            }
        };
        if let Some(client) = inner.lock_proxies().get(proxy) {
            return Ok((client, true));
        }
        // Build outside the lock (loading TLS roots takes a moment); a racing builder's
        // client is simply replaced.
        let built = proxy_of(proxy)
            .and_then(|p| client(Some(p), inner.connect_timeout, inner.max_idle_per_host))
            .map_err(|_| TransportError::Proxy)?;
        inner.lock_proxies().insert(proxy, built.clone());
        Ok((built, true))
    }

    async fn send_request(&self, req: UpstreamRequest) -> Result<UpstreamReply, TransportError> {
        let (client, proxied) = self.client_for(req.proxy.as_deref())?;
        let request = client
            .request(method(req.method), req.url.as_str())
            .headers(header_map(&req.headers)?)
            .body(req.body)
            .build()
            .map_err(|_| TransportError::Connect)?;
        let limit = self.inner.max_reply_bytes;
        let slots = &self.inner.in_flight;
        let exchange = async move {
            // Never closed; a closed semaphore would mean no slot ever again.
            let _slot = slots.acquire().await.map_err(|_| TransportError::Connect)?;
            let response =
                client.execute(request).await.map_err(|e| transport_error(&e, proxied))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
                })
                .collect();
            let body = read_capped(response, limit).await.map_err(|e| match e {
                BodyError::TooLarge => TransportError::TooLarge,
                BodyError::Read(e) => transport_error(&e, proxied),
            })?;
            Ok(UpstreamReply { status, headers, body })
        };
        let timeout = Duration::from_millis(req.timeout_ms);
        tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(TransportError::Timeout))
    }
}

impl Inner {
    fn lock_proxies(&self) -> std::sync::MutexGuard<'_, ProxyClients> {
        // The cache is consistent after any panic (each operation is one map update).
        self.proxies.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Upstream for HttpUpstream {
    fn send(&self, req: UpstreamRequest) -> BoxFuture<'_, Result<UpstreamReply, TransportError>> {
        Box::pin(self.send_request(req))
    }

    fn fetch(&self, url: String) -> BoxFuture<'_, Result<Bytes, FetchError>> {
        Box::pin(self.inner.fetcher.fetch(url))
    }

    /// Builds a client for the new proxy (or a direct one) and swaps it in; requests already
    /// sent keep the client they started with. A refused URL changes nothing.
    fn set_global_proxy(&self, url: Option<&str>) -> Result<(), BuildError> {
        let proxy = url.map(proxy_of).transpose()?;
        let client = client(proxy, self.inner.connect_timeout, self.inner.max_idle_per_host)?;
        let mut global = self.inner.global.write().unwrap_or_else(PoisonError::into_inner);
        *global = Global { client, proxy: url.map(str::to_owned) };
        Ok(())
    }
}

/// A client that sends what it is given: no environment proxies, no redirects, no referer.
fn client(
    proxy: Option<Proxy>,
    connect_timeout: Duration,
    max_idle_per_host: usize,
) -> Result<Client, BuildError> {
    let mut builder = Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .referer(false)
        .connect_timeout(connect_timeout)
        .pool_max_idle_per_host(max_idle_per_host);
    if let Some(proxy) = proxy {
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|_| BuildError::Client)
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// The request's headers in order, duplicates kept. A name or value HTTP cannot carry makes
/// the request malformed ([`TransportError::Connect`]: it could not be sent).
fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, TransportError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| TransportError::Connect)?;
        let value =
            HeaderValue::from_bytes(value.as_bytes()).map_err(|_| TransportError::Connect)?;
        map.append(name, value);
    }
    Ok(map)
}

/// Maps a reqwest error (the [module docs](self) have the table).
fn transport_error(e: &reqwest::Error, proxied: bool) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connect() {
        if proxied {
            TransportError::Proxy
        } else {
            TransportError::Connect
        }
    } else if e.is_builder() {
        TransportError::Connect
    } else {
        TransportError::Reset
    }
}

// === Bodies ===

/// Why reading a body stopped.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// It would pass the limit.
    TooLarge,
    /// The connection broke (or timed out) while reading.
    Read(reqwest::Error),
}

/// Reads a whole body, never holding more than `limit` bytes.
pub(crate) async fn read_capped(mut response: Response, limit: usize) -> Result<Bytes, BodyError> {
    let declared = response.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let capacity = declared.map_or(0, |n| n as usize).min(limit);
    let mut body = BytesMut::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if chunk.len() > limit - body.len() {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

// === impl ProxyClients ===

/// Clients by proxy URL, least recently used evicted past [`MAX_PROXY_CLIENTS`].
#[derive(Default)]
struct ProxyClients {
    clients: HashMap<String, (Client, u64)>,
    /// Bumped on every use; the entry with the smallest stamp is the least recently used.
    clock: u64,
}

impl ProxyClients {
    fn get(&mut self, proxy: &str) -> Option<Client> {
        self.clock += 1;
        let stamp = self.clock;
        self.clients.get_mut(proxy).map(|(client, used)| {
            *used = stamp;
            client.clone()
        })
    }

    fn insert(&mut self, proxy: &str, client: Client) {
        if !self.clients.contains_key(proxy) && self.clients.len() >= MAX_PROXY_CLIENTS {
            let oldest =
                self.clients.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.clients.remove(&oldest);
            }
        }
        self.clock += 1;
        self.clients.insert(proxy.to_owned(), (client, self.clock));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        for ok in [
            "http://proxy:8080",
            "https://user:pw@proxy.example:443",
            "socks5://127.0.0.1:1080",
            "socks5h://u:p@proxy",
        ] {
            assert_eq!(check_proxy_url(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_proxy_url("proxy:8080"), Err(BuildError::ProxyScheme("proxy".into())));
        assert_eq!(check_proxy_url("host-only"), Err(BuildError::ProxyUrl));
        assert_eq!(check_proxy_url("socks4://p:1"), Err(BuildError::ProxyScheme("socks4".into())));
        assert_eq!(check_proxy_url("ftp://p"), Err(BuildError::ProxyScheme("ftp".into())));
        assert_eq!(check_proxy_url("http://"), Err(BuildError::ProxyUrl));
        let shown = BuildError::ProxyScheme("ftp".into()).to_string();
        assert!(shown.contains("socks5h"), "{shown}");
    }

    #[test]
    fn config_debug_hides_the_proxy() {
        let cfg = HttpUpstreamConfig {
            global_proxy: Some("http://user:secret@proxy:1".into()),
            ..HttpUpstreamConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("secret"), "{shown}");
        let up = HttpUpstream::new(cfg).unwrap();
        assert!(!format!("{up:?}").contains("secret"));
    }

    #[test]
    fn global_proxy_can_be_replaced() {
        let up = HttpUpstream::new(HttpUpstreamConfig::default()).unwrap();
        assert!(matches!(up.client_for(None), Ok((_, false))));
        up.set_global_proxy(Some("socks5h://u:secret@proxy:1080")).unwrap();
        assert!(matches!(up.client_for(None), Ok((_, true))));
        assert!(!format!("{up:?}").contains("secret"));
        assert_eq!(
            up.set_global_proxy(Some("ftp://p")),
            Err(BuildError::ProxyScheme("ftp".into()))
        );
        assert!(matches!(up.client_for(None), Ok((_, true))), "a refused URL changes nothing");
        up.set_global_proxy(None).unwrap();
        assert!(matches!(up.client_for(None), Ok((_, false))));
    }

    #[test]
    fn zero_limits_refused() {
        let zero = |cfg: HttpUpstreamConfig| HttpUpstream::new(cfg).map(|_| ()).unwrap_err();
        let d = HttpUpstreamConfig::default;
        assert_eq!(
            zero(HttpUpstreamConfig { connect_timeout_ms: 0, ..d() }),
            BuildError::Zero("connect_timeout_ms")
        );
        assert_eq!(
            zero(HttpUpstreamConfig { max_reply_bytes: 0, ..d() }),
            BuildError::Zero("max_reply_bytes")
        );
        assert_eq!(
            zero(HttpUpstreamConfig { max_in_flight: 0, ..d() }),
            BuildError::Zero("max_in_flight")
        );
        let fetch = FetchPolicy { max_bytes: 0, ..FetchPolicy::default() };
        assert_eq!(zero(HttpUpstreamConfig { fetch, ..d() }), BuildError::Zero("fetch.max_bytes"));
    }

    #[test]
    fn proxy_cache_evicts_least_recently_used() {
        let client = Client::new();
        let mut cache = ProxyClients::default();
        for i in 0..MAX_PROXY_CLIENTS {
            cache.insert(&format!("http://p{i}"), client.clone());
        }
        assert!(cache.get("http://p0").is_some(), "p0 is now the most recently used");
        cache.insert("http://new", client.clone());
        assert_eq!(cache.clients.len(), MAX_PROXY_CLIENTS);
        assert!(cache.get("http://p1").is_none(), "p1 was the least recently used");
        assert!(cache.get("http://p0").is_some() && cache.get("http://new").is_some());
    }
}
