//! The one place core errors become HTTP responses: status, the OpenAI envelope
//! `{"error":{"message","type","param","code"}}`, and the headers some statuses need
//! (`Retry-After`, `Allow`, `WWW-Authenticate`).

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use sora2api_core::record::StoredError;
use sora2api_core::Error;

/// `content-type` of every JSON response.
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A JSON response with this status and body.
pub(crate) fn json_response(status: u16, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut response = Response::new(body.into());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(CONTENT_TYPE, JSON);
    response
}

/// The response for `err`: its status, its envelope, and the headers its status needs.
pub fn error_response(err: &Error) -> Response<Bytes> {
    let mut response = json_response(err.status(), err.envelope().to_string());
    let headers = response.headers_mut();
    if let Some(secs) = err.retry_after_secs() {
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(allow) = err.allow_header() {
        headers.insert(ALLOW, HeaderValue::from_static(allow));
    }
    if matches!(err, Error::Unauthenticated) {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The response for an error a finished task stored (a blocking request that waited for it),
/// with `Retry-After` when the live error said when to retry (the stored one does not keep it).
pub(crate) fn stored_error_response(
    err: &StoredError,
    retry_after_secs: Option<u32>,
) -> Response<Bytes> {
    let mut response = json_response(err.status, err.envelope().to_string());
    if let Some(secs) = retry_after_secs {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_error() {
        let r = error_response(&Error::MethodNotAllowed { method: "GET".into(), allowed: "POST" });
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[ALLOW], "POST");
        let r = error_response(&Error::StoreUnavailable);
        assert_eq!((r.status().as_u16(), r.headers()[RETRY_AFTER].to_str().ok()), (503, Some("5")));
        let r = error_response(&Error::Unauthenticated);
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["message"], "Invalid API key");
    }
}
