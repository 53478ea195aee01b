//! The durable task record: everything the task store keeps about one task, so a task
//! survives a client that disconnects and a process that restarts (architecture property 4).
//!
//! A [`TaskRecord`] is made once from the translated [`ClientCall`] ([`TaskRecord::new`]),
//! follows the task's [`Event`]s ([`TaskRecord::apply`]), answers `GET /v1/tasks/{id}`
//! ([`TaskRecord::view`] for [`render::task_json`](crate::render::task_json)), and is stored
//! as bytes ([`TaskRecord::to_bytes`], [`TaskRecord::from_bytes`]).
//!
//! The record says nothing about the upstream that runs the task: what the upstream state
//! machine needs to resume (upstream ids, token, attempt, deadline) lives only in the opaque
//! [`TaskRecord::checkpoint`] string, which the shell fills from the machine's checkpoint and
//! hands back to it on resume.
//!
//! The stored form is JSON with a version (`"v":1`); media travel as base64. Loading
//! validates every catalog entry and id again, so a record written by an older build whose
//! model, style or ids no longer parse is a [`RecordError`] naming the field, never a panic.
//!
//! ```
//! use sora2api_core::record::TaskRecord;
//! use sora2api_core::render::task_json;
//! use sora2api_core::task::{Event, TaskId, TaskResult};
//! use sora2api_core::translate;
//!
//! let body = br#"{"model":"sora2-landscape-10s","messages":[{"role":"user","content":"A cat"}],"async_mode":true}"#;
//! let call = translate::chat(body, &translate::Limits::default()).unwrap();
//! let now = 1_704_067_200_000;
//! let mut rec = TaskRecord::new(TaskId::new(now, 7), &call, now);
//!
//! // Progress is a mere update (the store may defer its fsync); the end is durable.
//! let progress = Event::VideoProgress { percent: 40.0, status: "running".into() };
//! assert!(!rec.apply(now + 30_000, &progress));
//! let done = Event::Completed(TaskResult::Videos(vec!["https://cdn.example/v.mp4".into()]));
//! assert!(rec.apply(now + 60_000, &done));
//! assert!(rec.is_finished());
//!
//! let back = TaskRecord::from_bytes(&rec.to_bytes()).unwrap();
//! assert_eq!(back, rec);
//! let json = task_json(&back.view());
//! assert!(json.contains(r#""task_type":"video","status":"completed","progress":100.0,"#));
//! assert!(json.ends_with(r#""completed_at":"2024-01-01T00:01:00.000Z"}"#));
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::error::{Error, ErrorBody, ErrorEnvelope, ErrorType};
use crate::request::{
    CharacterSource, ClientCall, GenerationRequest, Media, Operation, ResponseMode, TaskKind,
    VideoInput,
};
use crate::task::{Event, TaskId, TaskResult, TaskStatus, TaskView};

mod repr;

#[cfg(test)]
mod tests;

/// Why a task failed, as the client is told: what [`Error::status`], [`Error::message`],
/// [`Error::code`] and [`Error::param`] said when the task ended.
///
/// Stored as plain values, so a record stays readable when the error enum changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredError {
    /// The HTTP status (4xx or 5xx).
    pub status: u16,
    /// The message (`error_message` in task JSON).
    pub message: String,
    /// The stable machine-readable code.
    pub code: String,
    /// The request field at fault, if one was.
    pub param: Option<String>,
}

impl From<&Error> for StoredError {
    fn from(err: &Error) -> Self {
        StoredError {
            status: err.status(),
            message: err.message(),
            code: err.code().to_owned(),
            param: err.param().map(str::to_owned),
        }
    }
}

impl StoredError {
    /// The OpenAI error envelope the client was (or is) told.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                message: self.message.clone(),
                kind: ErrorType::for_status(self.status),
                param: self.param.clone(),
                code: Some(Cow::Owned(self.code.clone())),
            },
        }
    }
}

/// How a finished task ended, as every client face renders it: from the terminal [`Event`]
/// of a running task ([`Ending::from_event`]) or from a stored record ([`TaskRecord::ending`]),
/// so a stream or a blocking request that lost the event answers exactly as one that saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The result.
    Completed(TaskResult),
    /// The upstream refused the content (decisions 5): streams end normally with the reason as
    /// content; blocking requests answer the 400 `content_policy_violation` envelope.
    ContentViolation {
        /// The upstream's reason.
        reason: String,
    },
    /// The task failed with this error.
    Failed(StoredError),
}

/// The prefix of a content violation's stored message (the error's message text).
const VIOLATION_PREFIX: &str = "Content policy violation: ";

impl Ending {
    /// The ending a terminal event announces; `None` for any other event.
    pub fn from_event(event: &Event) -> Option<Ending> {
        match event {
            Event::Completed(result) => Some(Ending::Completed(result.clone())),
            Event::ContentViolation { reason } => {
                Some(Ending::ContentViolation { reason: reason.clone() })
            }
            Event::Failed(err) => Some(Ending::Failed(StoredError::from(err))),
            _ => None,
        }
    }

    /// What a blocking request answers: the result, or the error (content violations
    /// included, as the 400 `content_policy_violation`).
    pub fn into_result(self) -> Result<TaskResult, StoredError> {
        match self {
            Ending::Completed(result) => Ok(result),
            Ending::ContentViolation { reason } => {
                Err(StoredError::from(&Error::ContentPolicy { reason }))
            }
            Ending::Failed(err) => Err(err),
        }
    }
}

/// A stored record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes are not a record: not JSON, truncated, or fields of the wrong shape.
    Malformed(String),
    /// A record of a version this build does not read.
    UnsupportedVersion(u64),
    /// A field is well-formed but its value is not valid (anymore): an unknown model or style,
    /// an id that no longer parses, a broken storyboard, an unknown media format.
    InvalidField {
        /// The field, as a path (`request.model`, `request.style`, `id`, ...).
        field: &'static str,
        /// The stored value (its first 80 characters).
        value: String,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Malformed(detail) => write!(f, "malformed task record: {detail}"),
            RecordError::UnsupportedVersion(v) => {
                let supported = repr::VERSION;
                write!(f, "task record version {v} is not supported (this build reads {supported})")
            }
            RecordError::InvalidField { field, value } => {
                write!(f, "task record field {field} is invalid: {value:?}")
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// One task, as the task store keeps it.
///
/// Contract: made by [`TaskRecord::new`] when the task is accepted (before any upstream call),
/// then changed only by [`TaskRecord::apply`] with the task's events in order, by the shell
/// setting [`TaskRecord::checkpoint`] when the machine asks to persist, and by
/// [`TaskRecord::drop_media`] once the upstream holds the media. A finished record
/// ([`TaskRecord::is_finished`]) no longer changes.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// The task id.
    pub id: TaskId,
    /// What the task produces (`task_type`).
    pub kind: TaskKind,
    /// The model id the task is shown under: the one the client named
    /// ([`ClientCall::client_model`]).
    pub model: String,
    /// How the client asked to be answered.
    pub mode: ResponseMode,
    /// The prompt as the client wrote it (`prompt` in task JSON).
    pub client_prompt: String,
    /// The canonical request.
    pub request: GenerationRequest,
    /// Processing, completed or failed.
    pub status: TaskStatus,
    /// 0 to 100, never decreasing; 100 once completed.
    pub progress: f32,
    /// The result, once completed.
    pub result: Option<TaskResult>,
    /// What the client is told, once failed.
    pub error: Option<StoredError>,
    /// When the task was accepted, unix milliseconds.
    pub created_at_ms: u64,
    /// When the record last changed, unix milliseconds (never decreasing).
    pub updated_at_ms: u64,
    /// When the task finished, unix milliseconds.
    pub completed_at_ms: Option<u64>,
    /// The upstream machine's checkpoint, opaque to the record and the shell.
    pub checkpoint: Option<String>,
}

impl TaskRecord {
    /// A new, processing record for an accepted call at `now_ms` (unix milliseconds).
    pub fn new(id: TaskId, call: &ClientCall, now_ms: u64) -> Self {
        TaskRecord {
            id,
            kind: call.request.operation.task_kind(),
            model: call.client_model.to_owned(),
            mode: call.mode,
            client_prompt: call.client_prompt.clone(),
            request: call.request.clone(),
            status: TaskStatus::Processing,
            progress: 0.0,
            result: None,
            error: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            completed_at_ms: None,
            checkpoint: None,
        }
    }

    /// Follows one event at `now_ms`. Returns `true` for a durable transition (the task
    /// ended: the store must persist it before anyone is told), `false` for a mere update
    /// (progress, steps), whose write the store may defer or coalesce.
    ///
    /// - progress events raise `progress` (clamped to 0-100; lower or non-finite values are
    ///   ignored: progress never goes backwards);
    /// - [`Event::Completed`]: completed, progress 100, the result;
    /// - [`Event::ContentViolation`]: failed with `"Content policy violation: <reason>"`
    ///   (decisions 5; status 400, code `content_policy_violation`);
    /// - [`Event::Failed`]: failed with the error's status, message, code and param;
    /// - every other event only touches `updated_at_ms`.
    ///
    /// A finished record ignores further events and returns `false`.
    pub fn apply(&mut self, now_ms: u64, event: &Event) -> bool {
        if self.is_finished() {
            return false;
        }
        self.updated_at_ms = self.updated_at_ms.max(now_ms);
        match event {
            Event::VideoProgress { percent, .. }
            | Event::ImageProgress { percent }
            | Event::EstimatedProgress { percent } => {
                if percent.is_finite() {
                    self.progress = self.progress.max(percent.clamp(0.0, 100.0));
                }
                false
            }
            Event::Completed(result) => {
                self.status = TaskStatus::Completed;
                self.progress = 100.0;
                self.result = Some(result.clone());
                self.completed_at_ms = Some(self.updated_at_ms);
                true
            }
            Event::ContentViolation { reason } => {
                self.fail(&Error::ContentPolicy { reason: reason.clone() });
                true
            }
            Event::Failed(err) => {
                self.fail(err);
                true
            }
            Event::Started(_)
            | Event::UploadingImage
            | Event::ImageUploaded
            | Event::StoryboardDetected
            | Event::Submitting
            | Event::ImageHeartbeat { .. }
            | Event::Retrying { .. }
            | Event::TokenDisabled { .. }
            | Event::Character(_) => false,
        }
    }

    fn fail(&mut self, err: &Error) {
        self.status = TaskStatus::Failed;
        self.error = Some(StoredError::from(err));
        self.completed_at_ms = Some(self.updated_at_ms);
    }

    /// What `GET /v1/tasks/{id}` shows, for [`render::task_json`](crate::render::task_json).
    pub fn view(&self) -> TaskView {
        TaskView {
            id: self.id.clone(),
            kind: self.kind,
            status: self.status,
            progress: self.progress,
            model: self.model.clone(),
            prompt: self.client_prompt.clone(),
            result: self.result.clone(),
            error_message: self.error.as_ref().map(|e| e.message.clone()),
            created_at_ms: self.created_at_ms,
            completed_at_ms: self.completed_at_ms,
        }
    }

    /// How the task ended; `None` while it is processing.
    pub fn ending(&self) -> Option<Ending> {
        match self.status {
            TaskStatus::Processing => None,
            TaskStatus::Completed => match &self.result {
                Some(result) => Some(Ending::Completed(result.clone())),
                None => Some(Ending::Failed(StoredError::from(&Error::Internal))),
            },
            TaskStatus::Failed => {
                let err = self.error.clone().unwrap_or_else(|| StoredError::from(&Error::Internal));
                match err.message.strip_prefix(VIOLATION_PREFIX) {
                    Some(reason) if err.code == "content_policy_violation" => {
                        Some(Ending::ContentViolation { reason: reason.to_owned() })
                    }
                    _ => Some(Ending::Failed(err)),
                }
            }
        }
    }

    /// Whether the task has ended (completed or failed).
    pub fn is_finished(&self) -> bool {
        self.status != TaskStatus::Processing
    }

    /// Replaces every inline media of the request (input image, inline video) with an empty
    /// marker (same format, no bytes), so the record stays small. URLs stay.
    ///
    /// Call it only after the upstream acknowledged the upload (the machine's checkpoint says
    /// the task is accepted, issue 5): a resumed machine then polls and never uploads again,
    /// so it does not need the media. A record resumed *before* acceptance with its media
    /// dropped cannot be run again; [`TaskRecord::media_dropped`] tells the shell, which
    /// should fail such a task rather than upload empty bytes.
    pub fn drop_media(&mut self) {
        if let Some(media) = inline_media_mut(&mut self.request.operation) {
            media.bytes = Bytes::new();
        }
    }

    /// Whether [`TaskRecord::drop_media`] emptied inline media of this record. (Translated
    /// requests never hold empty media, so an empty one is the marker.)
    pub fn media_dropped(&self) -> bool {
        inline_media(&self.request.operation).is_some_and(|m| m.bytes.is_empty())
    }

    /// The stored form: JSON, version 1. A non-finite progress is written as 0 and an
    /// out-of-range one clamped, so every record reads back.
    pub fn to_bytes(&self) -> Vec<u8> {
        repr::encode(self)
    }

    /// Reads [`TaskRecord::to_bytes`] back, validating every field; any other input (garbage,
    /// truncation, another version, a model or id that no longer parses) is a
    /// [`RecordError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        repr::decode(bytes)
    }
}

/// The inline media of an operation (each has at most one), as a mutable borrow.
fn inline_media_mut(op: &mut Operation) -> Option<&mut Media> {
    match op {
        Operation::ImageToImage { image, .. }
        | Operation::ImageToVideo { image, .. }
        | Operation::Storyboard { image: Some(image), .. }
        | Operation::CharacterCreate {
            source: CharacterSource::Video(VideoInput::Inline(image)),
            ..
        }
        | Operation::CharacterVideo { video: VideoInput::Inline(image), .. } => Some(image),
        Operation::TextToImage { .. }
        | Operation::TextToVideo { .. }
        | Operation::Remix { .. }
        | Operation::Storyboard { image: None, .. }
        | Operation::Extension { .. }
        | Operation::PromptEnhance { .. }
        | Operation::CharacterCreate { .. }
        | Operation::CharacterVideo { .. } => None,
    }
}

/// The inline media of an operation, if it has one.
fn inline_media(op: &Operation) -> Option<&Media> {
    match op {
        Operation::ImageToImage { image, .. }
        | Operation::ImageToVideo { image, .. }
        | Operation::Storyboard { image: Some(image), .. }
        | Operation::CharacterCreate {
            source: CharacterSource::Video(VideoInput::Inline(image)),
            ..
        }
        | Operation::CharacterVideo { video: VideoInput::Inline(image), .. } => Some(image),
        Operation::TextToImage { .. }
        | Operation::TextToVideo { .. }
        | Operation::Remix { .. }
        | Operation::Storyboard { image: None, .. }
        | Operation::Extension { .. }
        | Operation::PromptEnhance { .. }
        | Operation::CharacterCreate { .. }
        | Operation::CharacterVideo { .. } => None,
    }
}
