//! Plain-data HTTP requests and replies: what the core asks the shell to send, and what comes
//! back. No `http` crate types, so the core stays free of any HTTP stack; the shell converts.

use std::fmt;

use bytes::Bytes;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// A request for the shell to send.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL (scheme, host from configuration, path and query).
    pub url: String,
    /// Header name/value pairs in sending order. Names are lower case.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Bytes,
    /// How long the shell waits for the whole reply, in milliseconds.
    pub timeout_ms: u64,
    /// The proxy to send it through (`http://`, `https://` or `socks5://` URL), if any.
    pub proxy: Option<String>,
}

impl UpstreamRequest {
    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The path and query of [`Self::url`] (everything from the first `/` after the host).
    pub fn path_and_query(&self) -> &str {
        let after_scheme = self.url.split_once("://").map_or(self.url.as_str(), |(_, rest)| rest);
        after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
    }
}

/// Header names whose values are secrets and never printed.
const SECRET_HEADERS: [&str; 4] =
    ["authorization", "cookie", "openai-sentinel-token", "set-cookie"];

impl fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let shown =
                    if SECRET_HEADERS.contains(&k.as_str()) { "<redacted>" } else { v.as_str() };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .field("timeout_ms", &self.timeout_ms)
            .field("proxy", &self.proxy.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A reply the shell received.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamReply {
    /// The status code.
    pub status: u16,
    /// Header name/value pairs; names lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl UpstreamReply {
    /// A reply with a JSON body.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        UpstreamReply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl fmt::Debug for UpstreamReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamReply")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Why no reply came back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// No complete reply within the request's timeout.
    Timeout,
    /// The connection could not be made (DNS, refused, TLS handshake).
    Connect,
    /// The connection broke while sending or receiving.
    Reset,
    /// The proxy refused or failed.
    Proxy,
    /// The reply was larger than the shell accepts.
    TooLarge,
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_and_headers() {
        let req = UpstreamRequest {
            method: Method::Get,
            url: "https://sora.chatgpt.com/backend/nf/pending/v2?x=1".into(),
            headers: vec![("authorization".into(), "Bearer secret-at".into())],
            body: Bytes::new(),
            timeout_ms: 1000,
            proxy: Some("socks5://user:pw@host:1080".into()),
        };
        assert_eq!(req.path_and_query(), "/backend/nf/pending/v2?x=1");
        assert_eq!(req.header("Authorization"), Some("Bearer secret-at"));
        let shown = format!("{req:?}");
        assert!(!shown.contains("secret-at") && !shown.contains("pw@"), "{shown}");
    }
}
