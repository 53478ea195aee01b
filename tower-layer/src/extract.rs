//! Reading a request: the API key, the content type, and the body, collected up to a size
//! limit and within a time limit.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use sora2api_core::Error;

/// The credential of an `Authorization` header: `Bearer <token>` (scheme case-insensitive);
/// with `raw_ok`, a bare token without a scheme too (the admin API accepts both, as the
/// original). `None` when the header is missing, repeated (which one counts would depend on
/// who reads it: a proxy in front may check the other), not text, or has another scheme.
pub(crate) fn bearer(headers: &HeaderMap, raw_ok: bool) -> Option<&str> {
    let value = single(headers, &AUTHORIZATION)?.to_str().ok()?.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        Some(_) => None,
        None if raw_ok && !value.is_empty() => Some(value),
        None => None,
    }
}

/// Whether the body is declared as JSON: `application/json` or `application/<x>+json`, any
/// parameters. A missing content type is not JSON (the client must say what it sends), nor
/// are two of them.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = single(headers, &CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json"
        || essence.strip_prefix("application/").is_some_and(|sub| sub.ends_with("+json"))
}

/// The header's value if it occurs exactly once.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Collects a request body of at most `limit` bytes within `timeout`.
///
/// - a `Content-Length` above the limit is refused before anything is read;
/// - a body that grows past the limit (chunked, or lying about its length) stops being read
///   at the limit: [`Error::PayloadTooLarge`];
/// - a body that does not arrive in time: [`Error::RequestTimeout`];
/// - a broken body (the connection failed): [`Error::MalformedJson`] would be wrong, so it is
///   an [`Error::InvalidField`] on `body` saying the body could not be read.
pub(crate) async fn collect<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Error>
where
    B: Body + Send,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = Error::PayloadTooLarge { limit: limit as u64 };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large);
    }
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    match collected {
        Err(_) => Err(Error::RequestTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(too_large),
        Ok(Err(_)) => Err(Error::invalid("body", "The request body could not be read completely")),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn bearer_forms() {
        assert_eq!(bearer(&headers(&[("authorization", "Bearer k1")]), false), Some("k1"));
        assert_eq!(bearer(&headers(&[("authorization", "bearer  k1 ")]), false), Some("k1"));
        assert_eq!(bearer(&headers(&[("authorization", "Basic k1")]), false), None);
        assert_eq!(bearer(&headers(&[("authorization", "k1")]), false), None);
        assert_eq!(bearer(&headers(&[("authorization", "k1")]), true), Some("k1"));
        assert_eq!(bearer(&headers(&[]), true), None);
        let mut two = headers(&[("authorization", "Bearer k1")]);
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer k2"));
        assert_eq!(bearer(&two, false), None);
    }

    #[test]
    fn json_content_types() {
        for ok in ["application/json", "Application/JSON; charset=utf-8", "application/vnd.x+json"]
        {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(is_json(&h), "{ok}");
        }
        for bad in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"] {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(bad));
            assert!(!is_json(&h), "{bad}");
        }
        assert!(!is_json(&HeaderMap::new()));
        let mut two = HeaderMap::new();
        two.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        two.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_json(&two));
    }

    #[tokio::test]
    async fn limits() {
        let t = Duration::from_secs(5);
        let body = || Full::new(Bytes::from(vec![b'x'; 100]));
        assert_eq!(collect(&HeaderMap::new(), body(), 100, t).await.map(|b| b.len()), Ok(100));
        let over = collect(&HeaderMap::new(), body(), 99, t).await;
        assert_eq!(over, Err(Error::PayloadTooLarge { limit: 99 }));
        let declared = headers(&[("content-length", "1000000")]);
        let early = collect(&declared, body(), 1000, t).await;
        assert_eq!(early, Err(Error::PayloadTooLarge { limit: 1000 }));
    }
}
