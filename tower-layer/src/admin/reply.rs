//! Admin responses: JSON bodies, the error envelope, and typed reading of JSON request
//! bodies that names the param at fault.
//!
//! Error messages are our own words: a value a client sent is never echoed (it may be a
//! secret pasted into the wrong field).

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use serde_json::{Map, Value};
use sora2api_core::error::{ErrorBody, ErrorEnvelope, ErrorType};
use sora2api_core::Error;

use crate::store::StoreError;

/// A JSON response. Admin answers are never cached (they describe live state and masked
/// secrets).
pub(super) fn json(status: StatusCode, value: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(value.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A 200 JSON response.
pub(super) fn ok(value: &Value) -> Response<Bytes> {
    json(StatusCode::OK, value)
}

/// An admin request that failed: the status, the OpenAI error envelope, and for a 405 the
/// `Allow` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    status: StatusCode,
    envelope: ErrorEnvelope,
    allow: Option<&'static str>,
}

impl Failure {
    /// A failure with our own status, message, param and code.
    pub(super) fn new(
        status: StatusCode,
        message: impl Into<String>,
        param: Option<&str>,
        code: &'static str,
    ) -> Self {
        let kind = match status.as_u16() {
            401 => ErrorType::AuthenticationError,
            400..=499 => ErrorType::InvalidRequestError,
            _ => ErrorType::ServerError,
        };
        Failure {
            status,
            envelope: ErrorEnvelope {
                error: ErrorBody {
                    message: message.into(),
                    kind,
                    param: param.map(str::to_owned),
                    code: Some(code.into()),
                },
            },
            allow: None,
        }
    }

    /// 401: no valid session, or wrong credentials.
    pub(super) fn unauthorized(message: &str, code: &'static str) -> Self {
        Failure::new(StatusCode::UNAUTHORIZED, message, None, code)
    }

    /// 400 on a field with a value we cannot take.
    pub(super) fn invalid(param: &str, message: impl Into<String>) -> Self {
        Failure::new(StatusCode::BAD_REQUEST, message, Some(param), "invalid_value")
    }

    /// 404 for a thing (token, key, task) that does not exist.
    pub(super) fn not_found(message: impl Into<String>, code: &'static str) -> Self {
        Failure::new(StatusCode::NOT_FOUND, message, None, code)
    }

    /// 409: the thing already exists.
    pub(super) fn conflict(param: &str, message: impl Into<String>) -> Self {
        Failure::new(StatusCode::CONFLICT, message, Some(param), "duplicate")
    }

    /// 503: the token store refused a write; nothing was changed.
    pub(super) fn store(error: &StoreError) -> Self {
        tracing::warn!(%error, "admin change not saved");
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The token store is unavailable, so the change was not made; retry later",
            None,
            "store_unavailable",
        )
    }

    /// 502: the upstream could not be asked (a transient failure, not the token's fault).
    pub(super) fn upstream(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::BAD_GATEWAY, message, None, "upstream_error")
    }

    /// The HTTP response.
    pub(super) fn into_response(self) -> Response<Bytes> {
        let body = serde_json::to_value(&self.envelope).unwrap_or(Value::Null);
        let mut response = json(self.status, &body);
        if let Some(allow) = self.allow {
            response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }

    /// The message (for a per-item result of an import).
    pub(super) fn message(&self) -> &str {
        &self.envelope.error.message
    }

    /// The status (for logs).
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for Failure {
    /// The core's errors keep their status, envelope and `Allow` header.
    fn from(error: Error) -> Self {
        Failure {
            status: StatusCode::from_u16(error.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            allow: error.allow_header(),
            envelope: error.envelope(),
        }
    }
}

// === Body ===

/// A JSON object request body (an empty body is an empty object), read field by field.
/// `null` counts as absent everywhere (the original's "null means unchanged").
#[derive(Debug, Clone, Default)]
pub(super) struct Body(Map<String, Value>);

impl Body {
    /// Parses a request body.
    pub(super) fn parse(bytes: &[u8]) -> Result<Body, Failure> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => Body::from_value(value, "body"),
            Err(e) => Err(Error::MalformedJson {
                detail: format!("line {} column {}", e.line(), e.column()),
            }
            .into()),
        }
    }

    /// An object inside a body (an import item); `what` names it in the error.
    pub(super) fn from_value(value: Value, what: &str) -> Result<Body, Failure> {
        match value {
            Value::Object(map) => Ok(Body(map)),
            _ => Err(Failure::invalid(what, format!("{what} must be a JSON object"))),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A string field.
    pub(super) fn str(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Failure::invalid(name, format!("{name} must be a string"))),
        }
    }

    /// A required, non-empty string field (surrounding whitespace removed).
    pub(super) fn required_str(&self, name: &str) -> Result<String, Failure> {
        match self.str(name)? {
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => Err(Error::missing(name.to_owned()).into()),
        }
    }

    /// A boolean field (PY sends `0`/`1` for some flags: accepted too).
    pub(super) fn bool(&self, name: &str) -> Result<Option<bool>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
            Some(_) => Err(Failure::invalid(name, format!("{name} must be true or false"))),
        }
    }

    /// An integer field.
    pub(super) fn int(&self, name: &str) -> Result<Option<i64>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(Failure::invalid(name, format!("{name} must be an integer"))),
            },
            Some(_) => Err(Failure::invalid(name, format!("{name} must be an integer"))),
        }
    }

    /// An integer field within `min..=max`.
    pub(super) fn int_in(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, Failure> {
        match self.int(name)? {
            Some(i) if !(min..=max).contains(&i) => {
                Err(Failure::invalid(name, format!("{name} must be between {min} and {max}")))
            }
            other => Ok(other),
        }
    }

    /// A number field (integer or decimal).
    pub(super) fn number(&self, name: &str) -> Result<Option<f64>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.is_finite() => Ok(Some(f)),
                _ => Err(Failure::invalid(name, format!("{name} must be a number"))),
            },
            Some(_) => Err(Failure::invalid(name, format!("{name} must be a number"))),
        }
    }

    /// An array field.
    pub(super) fn array(&self, name: &str) -> Result<Option<Vec<Value>>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.clone())),
            Some(_) => Err(Failure::invalid(name, format!("{name} must be an array"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_name_the_param_and_never_echo_the_value() {
        let body = Body::parse(br#"{"a":"secret-value","b":true,"c":7,"d":null,"e":1.5}"#).unwrap();
        let err = body.bool("a").unwrap_err().into_response();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let text = String::from_utf8(err.body().to_vec()).unwrap();
        assert!(text.contains(r#""param":"a""#) && !text.contains("secret-value"), "{text}");
        assert_eq!(body.bool("b").unwrap(), Some(true));
        assert_eq!(body.int_in("c", 0, 10).unwrap(), Some(7));
        assert!(body.int_in("c", 0, 5).is_err());
        assert_eq!(body.str("d").unwrap(), None, "null is absent");
        assert_eq!(body.number("e").unwrap(), Some(1.5));
        assert!(body.int("e").is_err());
        assert!(body.required_str("missing").is_err());
        assert!(Body::parse(b"  ").is_ok());
        assert!(Body::parse(b"[1]").is_err());
        let malformed = Body::parse(b"{\"x\":").unwrap_err();
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let failure: Failure =
            Error::MethodNotAllowed { method: "PATCH".into(), allowed: "GET, POST" }.into();
        let response = failure.into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, POST");
    }
}
