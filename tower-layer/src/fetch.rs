//! Fetching a URL the client chose (a `video` URL to remix or extend): the one outbound request
//! a client controls, so it runs under a [`FetchPolicy`].
//!
//! The rules, checked at the first URL and again at every redirect hop:
//!
//! - the scheme is `http` or `https`;
//! - the host's addresses are public unless the policy allows more: loopback (`127.0.0.0/8`,
//!   `::1`) needs [`FetchPolicy::allow_loopback`]; private (`10/8`, `172.16/12`,
//!   `192.168/16`, shared `100.64/10`, `fc00::/7`) and link-local (`169.254/16`,
//!   `fe80::/10`, which holds cloud metadata services) need [`FetchPolicy::allow_private`];
//!   unspecified (`0.0.0.0/8`, `::`), broadcast and multicast addresses are always refused.
//!   IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::/96`) addresses are judged by the
//!   IPv4 address inside;
//! - at most [`FetchPolicy::max_redirects`] redirects, followed by hand (the HTTP client never
//!   follows one by itself);
//! - the body is at most [`FetchPolicy::max_bytes`], read in chunks and abandoned as soon as it
//!   would pass the limit; the whole fetch, redirects included, takes at most
//!   [`FetchPolicy::timeout_ms`].
//!
//! **No DNS rebinding window.** A literal IP host is checked before the request. A host name
//! is resolved by the fetch client's own resolver, which refuses the name if any of its
//! addresses is refused; the connection is made to exactly the addresses that resolver
//! checked, so a name cannot pass the check with one address and connect to another.
//!
//! A fetch is a plain `GET` with `user-agent: sora2api-rs/<version>` and `accept: */*`: no
//! cookies, no credentials, nothing from the client's request.
//!
//! Fetches never use a proxy (neither the global one nor `HTTP_PROXY`-style environment
//! variables): through a proxy, the proxy would resolve the name and the address check
//! would mean nothing.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode, Url};
use url::Host;

use crate::upstream::{read_capped, BodyError, BuildError};

/// The limits and address rules for [`crate::upstream::Upstream::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// The largest body accepted, in bytes (more is [`FetchError::TooLarge`]). Must be > 0.
    pub max_bytes: usize,
    /// The time the whole fetch may take, redirects included, in milliseconds. Must be > 0.
    pub timeout_ms: u64,
    /// Allow private (`10/8`, `172.16/12`, `192.168/16`, `100.64/10`, `fc00::/7`) and
    /// link-local (`169.254/16`, `fe80::/10`) addresses.
    pub allow_private: bool,
    /// Allow loopback addresses (`127/8`, `::1`). Tests that fetch from a local server set it.
    pub allow_loopback: bool,
    /// How many redirects are followed before the fetch fails with [`FetchError::Redirect`].
    pub max_redirects: u8,
}

impl Default for FetchPolicy {
    /// 64 MiB, 60 s, public addresses only, at most 5 redirects.
    fn default() -> Self {
        FetchPolicy {
            max_bytes: 64 << 20,
            timeout_ms: 60_000,
            allow_private: false,
            allow_loopback: false,
            max_redirects: 5,
        }
    }
}

/// Why a fetch was refused or failed. [`fmt::Display`] says why in words fit for the message
/// of a 400 reply: it never contains the URL's credentials, resolved addresses or the remote
/// body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL does not parse, or has no host.
    Url,
    /// The URL, or a redirect, uses a scheme other than `http` or `https`.
    Scheme,
    /// The URL's host, or a redirect's, is (or resolves to) an address the policy refuses:
    /// private, loopback, link-local, unspecified, broadcast or multicast.
    Address,
    /// More redirects than the policy allows, or a redirect without a usable `Location`.
    Redirect,
    /// The body is larger than the limit (bytes).
    TooLarge {
        /// The policy's [`FetchPolicy::max_bytes`].
        limit: usize,
    },
    /// The fetch did not finish within [`FetchPolicy::timeout_ms`].
    Timeout,
    /// The server answered with a status other than 2xx or a followed redirect.
    Status(u16),
    /// The host did not resolve, the connection (or TLS handshake) failed, or it broke while
    /// the body was read.
    Connect,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Url => f.write_str("the video URL is not a valid absolute URL"),
            FetchError::Scheme => {
                f.write_str("the video URL (or a redirect from it) is not an http or https URL")
            }
            FetchError::Address => f.write_str(
                "the video URL (or a redirect from it) points to a private, loopback or \
                 link-local address, which is not allowed",
            ),
            FetchError::Redirect => {
                f.write_str("the video URL redirects too many times or to an invalid location")
            }
            FetchError::TooLarge { limit } => {
                write!(f, "the video at the URL is larger than the limit of {limit} bytes")
            }
            FetchError::Timeout => f.write_str("fetching the video URL timed out"),
            FetchError::Status(status) => {
                write!(f, "fetching the video URL failed with HTTP status {status}")
            }
            FetchError::Connect => {
                f.write_str("the video URL could not be fetched (connection failed)")
            }
        }
    }
}

impl StdError for FetchError {}

// === impl Fetcher ===

/// The fetch client: no proxy, no automatic redirects, the guarded resolver. It keeps its
/// connection pool across fetches (a pooled connection was made to a checked address).
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: Client,
    policy: FetchPolicy,
}

impl Fetcher {
    /// Builds the client; `connect_timeout` bounds each connection attempt.
    pub(crate) fn new(policy: FetchPolicy, connect_timeout: Duration) -> Result<Self, BuildError> {
        if policy.max_bytes == 0 {
            return Err(BuildError::Zero("fetch.max_bytes"));
        }
        if policy.timeout_ms == 0 {
            return Err(BuildError::Zero("fetch.timeout_ms"));
        }
        let client = Client::builder()
            .no_proxy()
            .redirect(Policy::none())
            .referer(false)
            .connect_timeout(connect_timeout)
            .user_agent(concat!("sora2api-rs/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(GuardedResolver { rules: AddressRules::of(&policy) })
            .build()
            .map_err(|_| BuildError::Client)?;
        Ok(Fetcher { client, policy })
    }

    /// Fetches `url` under the policy.
    pub(crate) async fn fetch(&self, url: String) -> Result<Bytes, FetchError> {
        let limit = Duration::from_millis(self.policy.timeout_ms);
        tokio::time::timeout(limit, self.follow(&url)).await.unwrap_or(Err(FetchError::Timeout))
    }

    async fn follow(&self, url: &str) -> Result<Bytes, FetchError> {
        let rules = AddressRules::of(&self.policy);
        let mut url = Url::parse(url).map_err(|_| FetchError::Url)?;
        let mut redirects = 0u8;
        loop {
            check_url(&url, rules)?;
            let response = self.client.get(url.clone()).send().await.map_err(fetch_error)?;
            let status = response.status();
            if is_followed_redirect(status) {
                if redirects >= self.policy.max_redirects {
                    return Err(FetchError::Redirect);
                }
                redirects += 1;
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(FetchError::Redirect)?;
                url = url.join(location).map_err(|_| FetchError::Redirect)?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            let limit = self.policy.max_bytes;
            return read_capped(response, limit).await.map_err(|e| match e {
                BodyError::TooLarge => FetchError::TooLarge { limit },
                BodyError::Read(e) => fetch_error(e),
            });
        }
    }
}

fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The scheme and, for a literal IP host, the address. Names are checked by the resolver.
fn check_url(url: &Url, rules: AddressRules) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Scheme);
    }
    let ip = match url.host() {
        None => return Err(FetchError::Url),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    if rules.permits(ip) {
        Ok(())
    } else {
        Err(FetchError::Address)
    }
}

/// Maps a client error: a refusal by the guarded resolver is [`FetchError::Address`].
fn fetch_error(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.is::<AddressRefused>() {
            return FetchError::Address;
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Connect
    }
}

// === impl GuardedResolver ===

/// Which address classes a fetch may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddressRules {
    allow_private: bool,
    allow_loopback: bool,
}

impl AddressRules {
    fn of(policy: &FetchPolicy) -> Self {
        AddressRules { allow_private: policy.allow_private, allow_loopback: policy.allow_loopback }
    }

    /// Whether a connection to `ip` is allowed.
    pub(crate) fn permits(self, ip: IpAddr) -> bool {
        match class(ip) {
            Class::Public => true,
            Class::Loopback => self.allow_loopback,
            Class::Private | Class::LinkLocal => self.allow_private,
            Class::Never => false,
        }
    }
}

/// An address's class, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Public,
    Loopback,
    Private,
    LinkLocal,
    /// Unspecified, "this network", broadcast, multicast: never a fetch target.
    Never,
}

fn class(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => class_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => class_v4(v4),
            None => class_v6(v6),
        },
    }
}

fn class_v4(ip: Ipv4Addr) -> Class {
    let [a, b, ..] = ip.octets();
    if a == 0 || ip.is_broadcast() || ip.is_multicast() {
        Class::Never
    } else if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_private() || (a == 100 && (b & 0xc0) == 64) {
        Class::Private
    } else if ip.is_link_local() {
        Class::LinkLocal
    } else {
        Class::Public
    }
}

fn class_v6(ip: Ipv6Addr) -> Class {
    let first = ip.segments()[0];
    if ip.is_unspecified() || ip.is_multicast() {
        Class::Never
    } else if ip.is_loopback() {
        Class::Loopback
    } else if (first & 0xfe00) == 0xfc00 {
        Class::Private
    } else if (first & 0xffc0) == 0xfe80 {
        Class::LinkLocal
    } else {
        Class::Public
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`) or NAT64 (`64:ff9b::/96`) one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., a, b, c, d] = ip.octets();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// The fetch client's resolver: the system resolver (tokio `lookup_host`), then the policy.
#[derive(Debug)]
struct GuardedResolver {
    rules: AddressRules,
}

/// The guarded resolver refused a name (found again in the client error's source chain).
#[derive(Debug)]
struct AddressRefused;

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the host resolves to an address the fetch policy refuses")
    }
}

impl StdError for AddressRefused {}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // Refuse the name if any address is refused: a name that mixes public and private
            // addresses is suspect, and the answer is simpler to explain.
            if addrs.is_empty() || addrs.iter().any(|a| !rules.permits(a.ip())) {
                return Err(Box::new(AddressRefused) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_classes() {
        let cases = [
            ("8.8.8.8", Class::Public),
            ("2606:4700::1111", Class::Public),
            ("127.0.0.1", Class::Loopback),
            ("127.255.0.9", Class::Loopback),
            ("::1", Class::Loopback),
            ("::ffff:127.0.0.1", Class::Loopback),
            ("64:ff9b::7f00:1", Class::Loopback),
            ("10.1.2.3", Class::Private),
            ("172.16.0.1", Class::Private),
            ("172.31.255.255", Class::Private),
            ("172.32.0.1", Class::Public),
            ("192.168.1.1", Class::Private),
            ("100.64.0.1", Class::Private),
            ("100.128.0.1", Class::Public),
            ("fc00::1", Class::Private),
            ("fd12:3456::1", Class::Private),
            ("::ffff:10.0.0.1", Class::Private),
            ("169.254.169.254", Class::LinkLocal),
            ("fe80::1", Class::LinkLocal),
            ("febf::1", Class::LinkLocal),
            ("fec0::1", Class::Public),
            ("0.0.0.0", Class::Never),
            ("0.1.2.3", Class::Never),
            ("::", Class::Never),
            ("255.255.255.255", Class::Never),
            ("224.0.0.1", Class::Never),
            ("ff02::1", Class::Never),
        ];
        for (s, want) in cases {
            assert_eq!(class(ip(s)), want, "{s}");
        }
    }

    #[test]
    fn rules_by_flag() {
        let none = AddressRules { allow_private: false, allow_loopback: false };
        let loopback = AddressRules { allow_private: false, allow_loopback: true };
        let private = AddressRules { allow_private: true, allow_loopback: false };
        assert!(none.permits(ip("1.1.1.1")));
        assert!(!none.permits(ip("127.0.0.1")) && loopback.permits(ip("127.0.0.1")));
        assert!(!private.permits(ip("::1")));
        assert!(!loopback.permits(ip("10.0.0.1")) && private.permits(ip("10.0.0.1")));
        assert!(private.permits(ip("169.254.169.254")) && !loopback.permits(ip("fe80::1")));
        let all = AddressRules { allow_private: true, allow_loopback: true };
        assert!(!all.permits(ip("0.0.0.0")) && !all.permits(ip("ff02::1")));
    }

    #[test]
    fn urls_checked_before_sending() {
        let none = AddressRules { allow_private: false, allow_loopback: false };
        let check = |s: &str| check_url(&Url::parse(s).unwrap(), none);
        assert_eq!(check("file:///etc/passwd"), Err(FetchError::Scheme));
        assert_eq!(check("ftp://example.com/a.mp4"), Err(FetchError::Scheme));
        assert_eq!(check("http://127.0.0.1/a.mp4"), Err(FetchError::Address));
        // The URL parser normalises other spellings of an IPv4 address.
        assert_eq!(check("http://2130706433/a.mp4"), Err(FetchError::Address));
        assert_eq!(check("http://0x7f.1/a.mp4"), Err(FetchError::Address));
        assert_eq!(check("http://[::ffff:7f00:1]/a.mp4"), Err(FetchError::Address));
        assert_eq!(check("http://[fe80::1]/"), Err(FetchError::Address));
        assert_eq!(check("https://93.184.215.14/a.mp4"), Ok(()));
        // Names are left to the guarded resolver.
        assert_eq!(check("https://localhost/a.mp4"), Ok(()));
    }

    #[test]
    fn messages_say_why_without_the_url() {
        let e = FetchError::TooLarge { limit: 10 };
        assert_eq!(e.to_string(), "the video at the URL is larger than the limit of 10 bytes");
        assert!(FetchError::Status(404).to_string().contains("404"));
        assert!(FetchError::Address.to_string().contains("private"));
    }
}
