//! Task identity, the events a task emits as it advances, and its result.
//!
//! These types are the seam between the per-task state machine (which emits [`Event`]s) and
//! the client faces (which render them as SSE chunks, a `chat.completion`, or task JSON). They
//! say nothing about which upstream runs the task.

use std::fmt;

use crate::error::Error;
use crate::request::TaskKind;

/// Our task id: `task_` + 26 lowercase Crockford base32 characters, time-ordered
/// (48 bits of unix milliseconds, then 80 random bits, as in a ULID).
///
/// ```
/// use sora2api_core::task::TaskId;
///
/// let id = TaskId::new(1_700_000_000_000, 42);
/// assert_eq!(id.as_str().len(), 31);
/// assert_eq!(TaskId::parse(id.as_str()), Ok(id.clone()));
/// assert!(TaskId::new(1, 0) < TaskId::new(2, 0), "ids sort by creation time");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(String);

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const PREFIX: &str = "task_";

impl TaskId {
    /// Builds the id from the creation time and 80 bits of randomness (higher bits ignored).
    pub fn new(unix_ms: u64, random: u128) -> Self {
        let value: u128 =
            (u128::from(unix_ms & 0xffff_ffff_ffff) << 80) | (random & ((1u128 << 80) - 1));
        let mut out = String::with_capacity(PREFIX.len() + 26);
        out.push_str(PREFIX);
        for i in (0..26).rev() {
            let digit = ((value >> (i * 5)) & 0x1f) as usize;
            out.push(char::from(CROCKFORD[digit]));
        }
        TaskId(out)
    }

    /// Parses an id from a path segment. Anything not of our form is [`Error::InvalidTaskId`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let body = text.strip_prefix(PREFIX).ok_or(Error::InvalidTaskId)?;
        let ok = body.len() == 26
            && body.bytes().all(|b| CROCKFORD.contains(&b))
            // 26 digits carry 130 bits; a 128-bit id starts with 0..=7.
            && body.as_bytes().first().is_some_and(|b| (b'0'..=b'7').contains(b));
        if ok {
            Ok(TaskId(text.to_owned()))
        } else {
            Err(Error::InvalidTaskId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The creation time encoded in the id, in unix milliseconds.
    pub fn unix_ms(&self) -> u64 {
        let mut value: u64 = 0;
        for b in self.0.bytes().skip(PREFIX.len()).take(10) {
            let digit = CROCKFORD.iter().position(|c| *c == b).unwrap_or(0) as u64;
            value = (value << 5) | digit;
        }
        // 26 digits carry 130 bits with the top 2 zero, so the first 10 digits (bits 129..80)
        // are exactly the 48 bits of milliseconds.
        value
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task's status as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Not finished yet.
    Processing,
    /// Finished with a result.
    Completed,
    /// Finished without a result.
    Failed,
}

impl TaskStatus {
    /// The `status` value of task JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Processing => "processing",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
        }
    }
}

/// A created character (cameo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterCard {
    /// The handle, without `@`.
    pub username: String,
    /// The display name.
    pub display_name: String,
    /// The upstream character id.
    pub character_id: String,
    /// The upstream cameo id.
    pub cameo_id: String,
    /// The avatar image URL.
    pub profile_asset_url: String,
    /// The generation it was made from, if it was made from one.
    pub source_generation_id: Option<String>,
}

/// What a completed task produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskResult {
    /// Image URLs.
    Images(Vec<String>),
    /// Video URLs (normally one).
    Videos(Vec<String>),
    /// A character card.
    Character(CharacterCard),
    /// An enhanced prompt.
    EnhancedPrompt(String),
}

/// Which flow a task runs, for the opening progress message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Image or video generation (text, image, storyboard); `with_image` when an image is
    /// uploaded first.
    Generation {
        /// Whether an input image is uploaded first.
        with_image: bool,
    },
    /// Remix of a published video.
    Remix,
    /// Extension of a generation.
    Extension {
        /// The generation extended.
        generation_id: String,
        /// Seconds added.
        seconds: u16,
    },
    /// Character creation, from a video (`None`) or from a generation.
    Character {
        /// The generation the character comes from, if any.
        from_generation: Option<String>,
    },
    /// Character creation followed by a video with it.
    CharacterVideo,
    /// Prompt enhancement.
    Enhance,
}

/// A step of the character flows (sora-backend.md 6.9.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharacterStep {
    /// Downloading the video from the client's URL.
    DownloadingVideo,
    /// Uploading the video upstream.
    UploadingVideo,
    /// Waiting for the upstream to extract the character from the video.
    ProcessingVideo,
    /// Waiting for the upstream to extract the character from a generation.
    ProcessingGeneration,
    /// The upstream recognised a character.
    Recognised {
        /// Display name.
        display_name: String,
        /// Handle, without `@`.
        username: String,
    },
    /// Downloading the avatar image.
    DownloadingAvatar,
    /// Uploading the avatar image.
    UploadingAvatar,
    /// Finalizing the character.
    Finalizing,
    /// Making the character public.
    SettingPublic,
    /// Character video: the video generation with the character starts.
    GeneratingVideo,
    /// Character video: deleting the temporary character.
    CleaningUp,
}

/// Something that happened to a task, in order. The state machine emits these; the client
/// faces render them (SSE progress text, task progress, the final answer).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The flow starts; always the first event.
    Started(Flow),
    /// The input image is being uploaded.
    UploadingImage,
    /// The input image reached the upstream.
    ImageUploaded,
    /// The prompt is a storyboard and goes to the storyboard API.
    StoryboardDetected,
    /// The generation request is being sent (remix and extension announce it).
    Submitting,
    /// Upstream video progress.
    VideoProgress {
        /// 0.0 to 100.0.
        percent: f32,
        /// The upstream status word (`queued`, `running`, ...).
        status: String,
    },
    /// Upstream image progress.
    ImageProgress {
        /// 0.0 to 100.0.
        percent: f32,
    },
    /// Progress estimated from elapsed time when the upstream reports none.
    EstimatedProgress {
        /// 0.0 to 100.0.
        percent: f32,
    },
    /// Still working on an image, this long since submission.
    ImageHeartbeat {
        /// Seconds since the task started.
        elapsed_secs: u64,
    },
    /// An attempt failed and the task tries again.
    Retrying {
        /// The attempt about to run (1-based).
        attempt: u32,
        /// The most attempts the task makes.
        max: u32,
        /// Why the previous attempt failed, in our words.
        reason: String,
    },
    /// The token was refused (401) and disabled; the task moves to another token.
    TokenDisabled {
        /// The token's id in the pool (never the secret).
        token_id: u64,
    },
    /// A character-flow step.
    Character(CharacterStep),
    /// The task finished with a result (terminal).
    Completed(TaskResult),
    /// The upstream refused the content (terminal; renders as a normal end, decisions 5).
    ContentViolation {
        /// The upstream's reason.
        reason: String,
    },
    /// The task failed (terminal).
    Failed(Error),
}

impl Event {
    /// Whether this event ends the task.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Completed(_) | Event::ContentViolation { .. } | Event::Failed(_))
    }
}

/// Everything task JSON (`GET /v1/tasks/{id}`) shows; the task engine keeps it current.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// The task id.
    pub id: TaskId,
    /// What the task produces.
    pub kind: TaskKind,
    /// Processing, completed or failed.
    pub status: TaskStatus,
    /// 0.0 to 100.0, never decreasing.
    pub progress: f32,
    /// The requested model id.
    pub model: String,
    /// The prompt as the client wrote it.
    pub prompt: String,
    /// The result, once completed.
    pub result: Option<TaskResult>,
    /// Why it failed, once failed.
    pub error_message: Option<String>,
    /// Creation time, unix milliseconds.
    pub created_at_ms: u64,
    /// Completion time, unix milliseconds, once finished.
    pub completed_at_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_encode_time() {
        for (ms, rnd) in [(0u64, 0u128), (1_732_000_000_123, u128::MAX), (0xffff_ffff_ffff, 12345)]
        {
            let id = TaskId::new(ms, rnd);
            assert!(id.as_str().starts_with("task_"));
            assert_eq!(id.as_str().len(), 31);
            assert_eq!(TaskId::parse(id.as_str()).as_ref(), Ok(&id));
            assert_eq!(id.unix_ms(), ms);
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        let good = TaskId::new(1_732_000_000_123, 99).as_str().to_owned();
        let bad = [
            String::new(),
            "task_".into(),
            good.to_uppercase(),
            good.replace("task_", "tsk_"),
            format!("{good}0"),
            good[..30].to_owned(),
            "task_../../../../etc/passwd00000".into(),
            format!("task_8{}", &good[6..]),
            format!("task_0{}", "u".repeat(25)),
        ];
        for b in bad {
            assert_eq!(TaskId::parse(&b), Err(Error::InvalidTaskId), "{b:?}");
        }
    }

    #[test]
    fn only_final_events_are_terminal() {
        assert!(Event::Completed(TaskResult::Images(vec![])).is_terminal());
        assert!(Event::Failed(Error::Internal).is_terminal());
        assert!(Event::ContentViolation { reason: "x".into() }.is_terminal());
        assert!(!Event::Submitting.is_terminal());
    }
}
