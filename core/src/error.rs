//! The one error type clients see, and the one mapping from error to HTTP status and the
//! OpenAI error envelope `{"error":{"message","type","param","code"}}` (decisions 4).
//!
//! Every layer of the gateway turns its failures into an [`Error`]; only [`Error::status`] and
//! [`Error::envelope`] decide what goes on the wire. Messages keep the original's texts where
//! the original has them (`Invalid model: X`, `prompt is required`, `Invalid API key`, the
//! `No available tokens ...` texts) and otherwise say what to fix. No message ever contains an
//! upstream body or a secret.
//!
//! ```
//! use sora2api_core::error::Error;
//!
//! let err = Error::InvalidModel { model: "invalid-model".into() };
//! assert_eq!(err.status(), 400);
//! assert_eq!(
//!     err.envelope().to_string(),
//!     r#"{"error":{"message":"Invalid model: invalid-model","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#
//! );
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// The kind of work a token is needed for, as named in the "No available tokens" messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenWork {
    /// Image generation.
    Image,
    /// Video generation (every video-like operation, characters included).
    Video,
    /// A model that needs a Pro account.
    Pro,
    /// Prompt enhancement.
    PromptEnhance,
}

/// Every error a client can receive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The API key is missing or wrong (both answer the same, so a prober learns nothing).
    Unauthenticated,
    /// The request body is not valid JSON, or not a JSON object.
    MalformedJson {
        /// What the JSON parser found, with line and column.
        detail: String,
    },
    /// The request is not `application/json` where a JSON body is required.
    UnsupportedMediaType,
    /// A required field is missing, `null`, or empty.
    MissingField {
        /// The field's name (`prompt`, `messages`, `image`, ...).
        param: Cow<'static, str>,
    },
    /// A field is present but of the wrong JSON type or out of range.
    InvalidField {
        /// The field's name.
        param: Cow<'static, str>,
        /// What is wrong and what to send instead.
        message: Cow<'static, str>,
    },
    /// `model` names no model we serve.
    InvalidModel {
        /// The model id as sent (truncated to a printable length).
        model: String,
    },
    /// `model` exists but is of the wrong kind for this endpoint or these inputs.
    WrongModelKind {
        /// The model id as sent.
        model: String,
        /// What the endpoint needs, for example `an image model`.
        expected: &'static str,
    },
    /// A storyboard prompt is broken; the message names the offending shot.
    InvalidStoryboard {
        /// The field the storyboard came from (`prompt` or `messages`).
        param: Cow<'static, str>,
        /// What is wrong, naming the shot.
        message: String,
    },
    /// The task id in the path is not of our id form.
    InvalidTaskId,
    /// No task has this id.
    TaskNotFound {
        /// The well-formed id that was asked for.
        task_id: String,
    },
    /// No route under the gateway's prefix matches the path.
    RouteNotFound {
        /// The request method.
        method: String,
        /// The request path (without query).
        path: String,
    },
    /// The route exists but not for this method.
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The methods the route accepts, for the `Allow` header.
        allowed: &'static str,
    },
    /// The body is larger than the configured limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client was too slow sending its request.
    RequestTimeout,
    /// No token can take the work now (after waiting the bounded time in the queue).
    NoAvailableTokens {
        /// What the token was needed for; selects the message text of sora-backend.md 6.6.
        work: TokenWork,
        /// When to try again, in seconds, for the `Retry-After` header.
        retry_after_secs: u32,
    },
    /// The gateway is at its admission limit (tasks, waiters, connections or subscribers).
    Overloaded {
        /// Which limit was hit, in words.
        what: &'static str,
        /// When to try again, in seconds, for the `Retry-After` header.
        retry_after_secs: u32,
    },
    /// The task store cannot record the task, so the gateway refuses to accept it.
    StoreUnavailable,
    /// The upstream refused the content (never retried, never held against the token).
    ContentPolicy {
        /// The upstream's reason, in words (no upstream body).
        reason: String,
    },
    /// The upstream failed in a way retries could not fix.
    Upstream {
        /// What happened, in our words (never an upstream body).
        message: String,
    },
    /// The task did not finish within its deadline.
    Timeout {
        /// The deadline in seconds.
        seconds: u64,
    },
    /// The task was cancelled by an administrator.
    Cancelled,
    /// A bug in the gateway. Never used for client mistakes.
    Internal,
}

/// The `type` of the OpenAI error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The client sent something we cannot accept (4xx).
    InvalidRequestError,
    /// Missing or wrong API key (401).
    AuthenticationError,
    /// The gateway or its upstream failed (5xx).
    ServerError,
}

/// The OpenAI error envelope, ready to serialise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorEnvelope {
    /// The inner error object.
    pub error: ErrorBody,
}

/// The inner object of [`ErrorEnvelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// What went wrong and what to fix.
    pub message: String,
    /// `invalid_request_error`, `authentication_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A stable machine-readable code.
    pub code: Option<Cow<'static, str>>,
}

impl fmt::Display for ErrorEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Serialising plain strings and enums into a String cannot fail.
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

// === impl Error ===

impl Error {
    /// A wrong-type or out-of-range field.
    pub fn invalid(
        param: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::InvalidField { param: param.into(), message: message.into() }
    }

    /// A missing required field.
    pub fn missing(param: impl Into<Cow<'static, str>>) -> Self {
        Error::MissingField { param: param.into() }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Unauthenticated => 401,
            Error::MalformedJson { .. }
            | Error::MissingField { .. }
            | Error::InvalidField { .. }
            | Error::InvalidModel { .. }
            | Error::WrongModelKind { .. }
            | Error::InvalidStoryboard { .. }
            | Error::InvalidTaskId
            | Error::ContentPolicy { .. } => 400,
            Error::TaskNotFound { .. } | Error::RouteNotFound { .. } => 404,
            Error::MethodNotAllowed { .. } => 405,
            Error::RequestTimeout => 408,
            Error::Cancelled => 409,
            Error::PayloadTooLarge { .. } => 413,
            Error::UnsupportedMediaType => 415,
            Error::Internal => 500,
            Error::Upstream { .. } => 502,
            Error::NoAvailableTokens { .. }
            | Error::Overloaded { .. }
            | Error::StoreUnavailable => 503,
            Error::Timeout { .. } => 504,
        }
    }

    /// Seconds for a `Retry-After` header, where the client should retry later.
    pub fn retry_after_secs(&self) -> Option<u32> {
        match self {
            Error::NoAvailableTokens { retry_after_secs, .. }
            | Error::Overloaded { retry_after_secs, .. } => Some(*retry_after_secs),
            Error::StoreUnavailable => Some(5),
            _ => None,
        }
    }

    /// The `Allow` header for a 405.
    pub fn allow_header(&self) -> Option<&'static str> {
        match self {
            Error::MethodNotAllowed { allowed, .. } => Some(allowed),
            _ => None,
        }
    }

    /// The envelope `type`.
    pub fn error_type(&self) -> ErrorType {
        ErrorType::for_status(self.status())
    }

    /// The request field at fault, if any.
    pub fn param(&self) -> Option<&str> {
        match self {
            Error::MissingField { param }
            | Error::InvalidField { param, .. }
            | Error::InvalidStoryboard { param, .. } => Some(param),
            Error::InvalidModel { .. } | Error::WrongModelKind { .. } => Some("model"),
            Error::InvalidTaskId => Some("task_id"),
            _ => None,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "invalid_api_key",
            Error::MalformedJson { .. } => "invalid_json",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::MissingField { .. } => "missing_required_parameter",
            Error::InvalidField { .. } => "invalid_value",
            Error::InvalidModel { .. } => "model_not_found",
            Error::WrongModelKind { .. } => "invalid_model_for_endpoint",
            Error::InvalidStoryboard { .. } => "invalid_storyboard",
            Error::InvalidTaskId | Error::TaskNotFound { .. } => "task_not_found",
            Error::RouteNotFound { .. } => "not_found",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::RequestTimeout => "request_timeout",
            Error::NoAvailableTokens { .. } => "no_available_tokens",
            Error::Overloaded { .. } => "overloaded",
            Error::StoreUnavailable => "store_unavailable",
            Error::ContentPolicy { .. } => "content_policy_violation",
            Error::Upstream { .. } => "upstream_error",
            Error::Timeout { .. } => "timeout",
            Error::Cancelled => "cancelled",
            Error::Internal => "internal_error",
        }
    }

    /// The human-readable message: what went wrong and what to fix.
    pub fn message(&self) -> String {
        match self {
            Error::Unauthenticated => "Invalid API key".into(),
            Error::MalformedJson { detail } => {
                format!("Request body is not valid JSON: {detail}. Send a JSON object.")
            }
            Error::UnsupportedMediaType => {
                "Unsupported Content-Type: send the body as application/json".into()
            }
            Error::MissingField { param } => format!("{param} is required"),
            Error::InvalidField { message, .. } => message.to_string(),
            Error::InvalidModel { model } => format!("Invalid model: {model}"),
            Error::WrongModelKind { model, expected } => {
                format!("Invalid model: {model} is not {expected}")
            }
            Error::InvalidStoryboard { message, .. } => message.clone(),
            Error::InvalidTaskId => {
                "Invalid task id: expected task_ followed by 26 lowercase base32 characters".into()
            }
            Error::TaskNotFound { task_id } => format!("Task {task_id} not found"),
            Error::RouteNotFound { method, path } => format!("Unknown route: {method} {path}"),
            Error::MethodNotAllowed { method, allowed } => {
                format!("Method {method} is not allowed here; use {allowed}")
            }
            Error::PayloadTooLarge { limit } => {
                format!("Request body is larger than the limit of {limit} bytes")
            }
            Error::RequestTimeout => "The request was not received in time".into(),
            Error::NoAvailableTokens { work, .. } => no_tokens_message(*work).into(),
            Error::Overloaded { what, retry_after_secs } => {
                format!("The gateway is at its limit of {what}; retry in {retry_after_secs} s")
            }
            Error::StoreUnavailable => {
                "The task store is unavailable, so no new task can be accepted; retry later".into()
            }
            Error::ContentPolicy { reason } => format!("Content policy violation: {reason}"),
            Error::Upstream { message } => format!("Upstream generation failed: {message}"),
            Error::Timeout { seconds } => format!("Generation timeout after {seconds} seconds"),
            Error::Cancelled => "The task was cancelled by an administrator".into(),
            Error::Internal => "Internal error".into(),
        }
    }

    /// The OpenAI error envelope for this error.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                message: self.message(),
                kind: self.error_type(),
                param: self.param().map(str::to_owned),
                code: Some(Cow::Borrowed(self.code())),
            },
        }
    }
}

impl ErrorType {
    /// The type a status belongs to: 401 is `authentication_error`, other 4xx
    /// `invalid_request_error`, everything else `server_error`.
    pub fn for_status(status: u16) -> ErrorType {
        match status {
            401 => ErrorType::AuthenticationError,
            400..=499 => ErrorType::InvalidRequestError,
            _ => ErrorType::ServerError,
        }
    }
}

/// The exact texts of sora-backend.md 6.6 for "no token can take this work".
pub fn no_tokens_message(work: TokenWork) -> &'static str {
    match work {
        TokenWork::Pro => "No available Pro tokens. Pro models require a ChatGPT Pro subscription.",
        TokenWork::Image => {
            "No available tokens for image generation. All tokens are either disabled, cooling down, locked, or expired."
        }
        TokenWork::Video => {
            "No available tokens for video generation. All tokens are either disabled, cooling down, Sora2 quota exhausted, don't support Sora2, or expired."
        }
        TokenWork::PromptEnhance => "No available tokens for prompt enhancement",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

/// Shortens client-supplied text echoed in a message, so an error never carries a huge value.
pub(crate) fn echo(text: &str) -> String {
    const MAX: usize = 64;
    let clean: String = text.chars().filter(|c| !c.is_control()).take(MAX + 1).collect();
    if clean.chars().count() > MAX {
        let cut: String = clean.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the error table of client-api.md, with its exact message, type and param.
    #[test]
    fn client_api_error_rows() {
        let rows = [
            (Error::InvalidModel { model: "invalid-model".into() }, 400, "Invalid model: invalid-model", ErrorType::InvalidRequestError, Some("model")),
            (Error::missing("prompt"), 400, "prompt is required", ErrorType::InvalidRequestError, Some("prompt")),
            (Error::Unauthenticated, 401, "Invalid API key", ErrorType::AuthenticationError, None),
            (
                Error::NoAvailableTokens { work: TokenWork::Video, retry_after_secs: 30 },
                503,
                "No available tokens for video generation. All tokens are either disabled, cooling down, Sora2 quota exhausted, don't support Sora2, or expired.",
                ErrorType::ServerError,
                None,
            ),
        ];
        for (err, status, message, kind, param) in rows {
            let env = err.envelope();
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(env.error.message, message);
            assert_eq!(env.error.kind, kind);
            assert_eq!(env.error.param.as_deref(), param);
        }
    }

    #[test]
    fn statuses_follow_decision_4() {
        assert_eq!(Error::TaskNotFound { task_id: "task_x".into() }.status(), 404);
        assert_eq!(Error::PayloadTooLarge { limit: 1 }.status(), 413);
        assert_eq!(Error::MethodNotAllowed { method: "PUT".into(), allowed: "POST" }.status(), 405);
        assert_eq!(Error::Upstream { message: "x".into() }.status(), 502);
        assert_eq!(Error::Timeout { seconds: 300 }.status(), 504);
        assert_eq!(Error::StoreUnavailable.status(), 503);
        let busy = Error::Overloaded { what: "in-flight tasks", retry_after_secs: 7 };
        assert_eq!((busy.status(), busy.retry_after_secs()), (503, Some(7)));
        assert_eq!(
            Error::MalformedJson { detail: "x".into() }.error_type(),
            ErrorType::InvalidRequestError
        );
        assert_eq!(Error::Internal.error_type(), ErrorType::ServerError);
    }

    #[test]
    fn envelope_has_all_four_keys() {
        let json = Error::Unauthenticated.envelope().to_string();
        assert_eq!(
            json,
            r#"{"error":{"message":"Invalid API key","type":"authentication_error","param":null,"code":"invalid_api_key"}}"#
        );
    }

    #[test]
    fn no_token_texts_are_the_originals() {
        assert_eq!(
            no_tokens_message(TokenWork::Image),
            "No available tokens for image generation. All tokens are either disabled, cooling down, locked, or expired."
        );
        assert_eq!(
            no_tokens_message(TokenWork::Pro),
            "No available Pro tokens. Pro models require a ChatGPT Pro subscription."
        );
    }

    #[test]
    fn echo_truncates_and_strips_controls() {
        assert_eq!(echo("a\nb"), "ab");
        let long = "x".repeat(100);
        assert_eq!(echo(&long).chars().count(), 65);
    }
}
