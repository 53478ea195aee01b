//! The stored form of a [`TaskRecord`]: private serde mirrors of the public types, so the
//! public types keep their shapes and carry no serde derives.
//!
//! Version 1, one JSON object:
//!
//! ```text
//! {"v":1,"id":"task_…","kind":"video","model":"sora2-landscape-10s","mode":"stream",
//!  "client_prompt":"…","request":{"model":"…","operation":{"image_to_video":{"prompt":"…",
//!  "image":{"format":"png","base64":"…"},"style":"anime"}}},"status":"processing",
//!  "progress":45.5,"result":null,"error":null,"created_at_ms":…,"updated_at_ms":…,
//!  "completed_at_ms":null,"checkpoint":"<the machine's opaque text>"}
//! ```
//!
//! Enums are externally tagged (`{"variant":{…}}`), so serde never buffers a variant's content
//! (with megabytes of base64 inside) before decoding it. Catalog entries and prompt ids are
//! stored as their text and validated again on load.

use std::fmt;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{RecordError, StoredError, TaskRecord};
use crate::catalog::{self, Style};
use crate::prompt::{GenerationId, RemixId, Storyboard};
use crate::request::{
    CharacterSource, GenerationRequest, Media, MediaFormat, Operation, ResponseMode, TaskKind,
    Timestamps, VideoInput,
};
use crate::task::{CharacterCard, TaskId, TaskResult, TaskStatus};

/// The version this build writes and the only one it reads.
pub(super) const VERSION: u64 = 1;

// === the record ===

#[derive(Serialize, Deserialize)]
pub(super) struct RecordRepr {
    v: u64,
    id: String,
    kind: String,
    model: String,
    mode: String,
    client_prompt: String,
    request: RequestRepr,
    status: String,
    progress: f32,
    result: Option<ResultRepr>,
    error: Option<ErrorRepr>,
    created_at_ms: u64,
    updated_at_ms: u64,
    completed_at_ms: Option<u64>,
    checkpoint: Option<String>,
}

/// Just the version, to tell an old or new record from a broken one.
#[derive(Deserialize)]
struct VersionOnly {
    v: u64,
}

/// Serialises a record. Media bytes are shared (`Bytes`), not copied, and base64-encoded
/// straight into the output.
pub(super) fn encode(rec: &TaskRecord) -> Vec<u8> {
    let progress = if rec.progress.is_finite() { rec.progress.clamp(0.0, 100.0) } else { 0.0 };
    let repr = RecordRepr {
        v: VERSION,
        id: rec.id.as_str().to_owned(),
        kind: rec.kind.as_str().to_owned(),
        model: rec.model.clone(),
        mode: mode_str(rec.mode).to_owned(),
        client_prompt: rec.client_prompt.clone(),
        request: RequestRepr::of(&rec.request),
        status: rec.status.as_str().to_owned(),
        progress,
        result: rec.result.as_ref().map(ResultRepr::of),
        error: rec.error.as_ref().map(ErrorRepr::of),
        created_at_ms: rec.created_at_ms,
        updated_at_ms: rec.updated_at_ms,
        completed_at_ms: rec.completed_at_ms,
        checkpoint: rec.checkpoint.clone(),
    };
    // The mirror holds strings, integers, a finite float, and maps with string keys, which
    // serde_json always serialises; the fallback is never taken.
    serde_json::to_vec(&repr).unwrap_or_default()
}

/// Parses and validates a record.
pub(super) fn decode(bytes: &[u8]) -> Result<TaskRecord, RecordError> {
    let repr: RecordRepr = match serde_json::from_slice(bytes) {
        Ok(repr) => repr,
        Err(err) => {
            // A record of another version may have another shape: say so rather than
            // reporting the first field that differs.
            return Err(match serde_json::from_slice::<VersionOnly>(bytes) {
                Ok(VersionOnly { v }) if v != VERSION => RecordError::UnsupportedVersion(v),
                _ => RecordError::Malformed(err.to_string()),
            });
        }
    };
    if repr.v != VERSION {
        return Err(RecordError::UnsupportedVersion(repr.v));
    }
    let request = repr.request.into_request()?;
    let kind = parse_kind(&repr.kind).ok_or_else(|| invalid("kind", &repr.kind))?;
    if kind != request.operation.task_kind() {
        return Err(invalid("kind", &repr.kind));
    }
    if !(repr.progress.is_finite() && (0.0..=100.0).contains(&repr.progress)) {
        return Err(invalid("progress", &repr.progress.to_string()));
    }
    Ok(TaskRecord {
        id: TaskId::parse(&repr.id).map_err(|_| invalid("id", &repr.id))?,
        kind,
        model: repr.model,
        mode: parse_mode(&repr.mode).ok_or_else(|| invalid("mode", &repr.mode))?,
        client_prompt: repr.client_prompt,
        request,
        status: parse_status(&repr.status).ok_or_else(|| invalid("status", &repr.status))?,
        progress: repr.progress,
        result: repr.result.map(ResultRepr::into_result),
        error: repr.error.map(ErrorRepr::into_error).transpose()?,
        created_at_ms: repr.created_at_ms,
        updated_at_ms: repr.updated_at_ms,
        completed_at_ms: repr.completed_at_ms,
        checkpoint: repr.checkpoint,
    })
}

fn invalid(field: &'static str, value: &str) -> RecordError {
    // Echo a bounded prefix: a stored value may be long (a storyboard, a prompt).
    let value: String = value.chars().take(80).collect();
    RecordError::InvalidField { field, value }
}

// === small enums as text ===

fn mode_str(mode: ResponseMode) -> &'static str {
    match mode {
        ResponseMode::Blocking => "blocking",
        ResponseMode::Stream => "stream",
        ResponseMode::Async => "async",
    }
}

fn parse_mode(text: &str) -> Option<ResponseMode> {
    [ResponseMode::Blocking, ResponseMode::Stream, ResponseMode::Async]
        .into_iter()
        .find(|m| mode_str(*m) == text)
}

fn parse_kind(text: &str) -> Option<TaskKind> {
    [TaskKind::Image, TaskKind::Video, TaskKind::Character, TaskKind::Enhance]
        .into_iter()
        .find(|k| k.as_str() == text)
}

fn parse_status(text: &str) -> Option<TaskStatus> {
    [TaskStatus::Processing, TaskStatus::Completed, TaskStatus::Failed]
        .into_iter()
        .find(|s| s.as_str() == text)
}

const FORMATS: [MediaFormat; 6] = [
    MediaFormat::Png,
    MediaFormat::Jpeg,
    MediaFormat::Gif,
    MediaFormat::Webp,
    MediaFormat::Mp4,
    MediaFormat::Webm,
];

fn format_str(format: MediaFormat) -> &'static str {
    match format {
        MediaFormat::Png => "png",
        MediaFormat::Jpeg => "jpeg",
        MediaFormat::Gif => "gif",
        MediaFormat::Webp => "webp",
        MediaFormat::Mp4 => "mp4",
        MediaFormat::Webm => "webm",
    }
}

// === the request ===

#[derive(Serialize, Deserialize)]
struct RequestRepr {
    /// The catalog id of the model that runs the request.
    model: String,
    operation: OpRepr,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OpRepr {
    TextToImage {
        prompt: String,
    },
    ImageToImage {
        prompt: String,
        image: MediaRepr,
    },
    TextToVideo {
        prompt: String,
        style: Option<String>,
    },
    ImageToVideo {
        prompt: String,
        image: MediaRepr,
        style: Option<String>,
    },
    Remix {
        prompt: String,
        target: String,
        style: Option<String>,
    },
    Storyboard {
        /// [`Storyboard::render_client`], parsed again on load.
        storyboard: String,
        image: Option<MediaRepr>,
        style: Option<String>,
    },
    Extension {
        prompt: String,
        generation: String,
    },
    PromptEnhance {
        prompt: String,
    },
    CharacterCreate {
        source: SourceRepr,
        timestamps: Option<TimestampsRepr>,
    },
    CharacterVideo {
        prompt: String,
        video: VideoRepr,
        timestamps: Option<TimestampsRepr>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum VideoRepr {
    Inline(MediaRepr),
    Url(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SourceRepr {
    Video(VideoRepr),
    Generation(String),
}

#[derive(Serialize, Deserialize)]
struct TimestampsRepr {
    start_ms: u32,
    end_ms: u32,
}

#[derive(Serialize, Deserialize)]
struct MediaRepr {
    format: String,
    /// Standard base64 of the bytes; empty once the media was dropped.
    base64: Base64Bytes,
}

/// Bytes stored as standard base64: encoded straight into the output, decoded straight from
/// the input text (one pass each way, no intermediate string).
struct Base64Bytes(Bytes);

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(&self.0, &STANDARD))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct B64Visitor;
        impl Visitor<'_> for B64Visitor {
            type Value = Base64Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a standard base64 string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Base64Bytes, E> {
                STANDARD
                    .decode(text)
                    .map(|bytes| Base64Bytes(Bytes::from(bytes)))
                    .map_err(|err| E::custom(format_args!("invalid base64: {err}")))
            }
        }
        deserializer.deserialize_str(B64Visitor)
    }
}

impl MediaRepr {
    fn of(media: &Media) -> Self {
        MediaRepr {
            format: format_str(media.format).to_owned(),
            base64: Base64Bytes(media.bytes.clone()),
        }
    }

    fn into_media(self, field: &'static str) -> Result<Media, RecordError> {
        let format = FORMATS
            .into_iter()
            .find(|f| format_str(*f) == self.format)
            .ok_or_else(|| invalid(field, &self.format))?;
        Ok(Media { bytes: self.base64.0, format })
    }
}

impl VideoRepr {
    fn of(video: &VideoInput) -> Self {
        match video {
            VideoInput::Inline(media) => VideoRepr::Inline(MediaRepr::of(media)),
            VideoInput::Url(url) => VideoRepr::Url(url.clone()),
        }
    }

    fn into_video(self, field: &'static str) -> Result<VideoInput, RecordError> {
        Ok(match self {
            VideoRepr::Inline(media) => VideoInput::Inline(media.into_media(field)?),
            VideoRepr::Url(url) => VideoInput::Url(url),
        })
    }
}

impl TimestampsRepr {
    fn of(t: Timestamps) -> Self {
        TimestampsRepr { start_ms: t.start_ms, end_ms: t.end_ms }
    }

    fn into_timestamps(self) -> Result<Timestamps, RecordError> {
        if self.start_ms < self.end_ms {
            Ok(Timestamps { start_ms: self.start_ms, end_ms: self.end_ms })
        } else {
            Err(invalid("request.timestamps", &format!("{},{}", self.start_ms, self.end_ms)))
        }
    }
}

fn style_id(style: Option<&'static Style>) -> Option<String> {
    style.map(|s| s.id.to_owned())
}

fn load_style(id: Option<String>) -> Result<Option<&'static Style>, RecordError> {
    id.map(|id| catalog::style(&id).ok_or_else(|| invalid("request.style", &id))).transpose()
}

fn load_remix(id: &str) -> Result<RemixId, RecordError> {
    RemixId::normalize(id).filter(|r| r.as_str() == id).ok_or_else(|| invalid("request.target", id))
}

fn load_generation(id: &str, field: &'static str) -> Result<GenerationId, RecordError> {
    GenerationId::find(id).filter(|g| g.as_str() == id).ok_or_else(|| invalid(field, id))
}

impl RequestRepr {
    fn of(req: &GenerationRequest) -> Self {
        let operation = match &req.operation {
            Operation::TextToImage { prompt } => OpRepr::TextToImage { prompt: prompt.clone() },
            Operation::ImageToImage { prompt, image } => {
                OpRepr::ImageToImage { prompt: prompt.clone(), image: MediaRepr::of(image) }
            }
            Operation::TextToVideo { prompt, style } => {
                OpRepr::TextToVideo { prompt: prompt.clone(), style: style_id(*style) }
            }
            Operation::ImageToVideo { prompt, image, style } => OpRepr::ImageToVideo {
                prompt: prompt.clone(),
                image: MediaRepr::of(image),
                style: style_id(*style),
            },
            Operation::Remix { prompt, target, style } => OpRepr::Remix {
                prompt: prompt.clone(),
                target: target.as_str().to_owned(),
                style: style_id(*style),
            },
            Operation::Storyboard { storyboard, image, style } => OpRepr::Storyboard {
                storyboard: storyboard.render_client(),
                image: image.as_ref().map(MediaRepr::of),
                style: style_id(*style),
            },
            Operation::Extension { prompt, generation } => OpRepr::Extension {
                prompt: prompt.clone(),
                generation: generation.as_str().to_owned(),
            },
            Operation::PromptEnhance { prompt } => OpRepr::PromptEnhance { prompt: prompt.clone() },
            Operation::CharacterCreate { source, timestamps } => OpRepr::CharacterCreate {
                source: match source {
                    CharacterSource::Video(video) => SourceRepr::Video(VideoRepr::of(video)),
                    CharacterSource::Generation(id) => {
                        SourceRepr::Generation(id.as_str().to_owned())
                    }
                },
                timestamps: timestamps.map(TimestampsRepr::of),
            },
            Operation::CharacterVideo { prompt, video, timestamps } => OpRepr::CharacterVideo {
                prompt: prompt.clone(),
                video: VideoRepr::of(video),
                timestamps: timestamps.map(TimestampsRepr::of),
            },
        };
        RequestRepr { model: req.model.id.to_owned(), operation }
    }

    fn into_request(self) -> Result<GenerationRequest, RecordError> {
        let model =
            catalog::model(&self.model).ok_or_else(|| invalid("request.model", &self.model))?;
        let timestamps = |t: Option<TimestampsRepr>| t.map(TimestampsRepr::into_timestamps);
        let operation = match self.operation {
            OpRepr::TextToImage { prompt } => Operation::TextToImage { prompt },
            OpRepr::ImageToImage { prompt, image } => {
                Operation::ImageToImage { prompt, image: image.into_media("request.image")? }
            }
            OpRepr::TextToVideo { prompt, style } => {
                Operation::TextToVideo { prompt, style: load_style(style)? }
            }
            OpRepr::ImageToVideo { prompt, image, style } => Operation::ImageToVideo {
                prompt,
                image: image.into_media("request.image")?,
                style: load_style(style)?,
            },
            OpRepr::Remix { prompt, target, style } => {
                Operation::Remix { prompt, target: load_remix(&target)?, style: load_style(style)? }
            }
            OpRepr::Storyboard { storyboard, image, style } => Operation::Storyboard {
                storyboard: match Storyboard::parse(&storyboard) {
                    Ok(Some(parsed)) => parsed,
                    Ok(None) | Err(_) => return Err(invalid("request.storyboard", &storyboard)),
                },
                image: image.map(|m| m.into_media("request.image")).transpose()?,
                style: load_style(style)?,
            },
            OpRepr::Extension { prompt, generation } => Operation::Extension {
                prompt,
                generation: load_generation(&generation, "request.generation")?,
            },
            OpRepr::PromptEnhance { prompt } => Operation::PromptEnhance { prompt },
            OpRepr::CharacterCreate { source, timestamps: t } => Operation::CharacterCreate {
                source: match source {
                    SourceRepr::Video(video) => {
                        CharacterSource::Video(video.into_video("request.video")?)
                    }
                    SourceRepr::Generation(id) => CharacterSource::Generation(load_generation(
                        &id,
                        "request.source.generation",
                    )?),
                },
                timestamps: timestamps(t).transpose()?,
            },
            OpRepr::CharacterVideo { prompt, video, timestamps: t } => Operation::CharacterVideo {
                prompt,
                video: video.into_video("request.video")?,
                timestamps: timestamps(t).transpose()?,
            },
        };
        Ok(GenerationRequest { model, operation })
    }
}

// === result and error ===

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ResultRepr {
    Images(Vec<String>),
    Videos(Vec<String>),
    Character(CardRepr),
    EnhancedPrompt(String),
}

#[derive(Serialize, Deserialize)]
struct CardRepr {
    username: String,
    display_name: String,
    character_id: String,
    cameo_id: String,
    profile_asset_url: String,
    source_generation_id: Option<String>,
}

impl ResultRepr {
    fn of(result: &TaskResult) -> Self {
        match result {
            TaskResult::Images(urls) => ResultRepr::Images(urls.clone()),
            TaskResult::Videos(urls) => ResultRepr::Videos(urls.clone()),
            TaskResult::Character(c) => ResultRepr::Character(CardRepr {
                username: c.username.clone(),
                display_name: c.display_name.clone(),
                character_id: c.character_id.clone(),
                cameo_id: c.cameo_id.clone(),
                profile_asset_url: c.profile_asset_url.clone(),
                source_generation_id: c.source_generation_id.clone(),
            }),
            TaskResult::EnhancedPrompt(text) => ResultRepr::EnhancedPrompt(text.clone()),
        }
    }

    fn into_result(self) -> TaskResult {
        match self {
            ResultRepr::Images(urls) => TaskResult::Images(urls),
            ResultRepr::Videos(urls) => TaskResult::Videos(urls),
            ResultRepr::Character(c) => TaskResult::Character(CharacterCard {
                username: c.username,
                display_name: c.display_name,
                character_id: c.character_id,
                cameo_id: c.cameo_id,
                profile_asset_url: c.profile_asset_url,
                source_generation_id: c.source_generation_id,
            }),
            ResultRepr::EnhancedPrompt(text) => TaskResult::EnhancedPrompt(text),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ErrorRepr {
    status: u16,
    message: String,
    code: String,
    param: Option<String>,
}

impl ErrorRepr {
    fn of(err: &StoredError) -> Self {
        ErrorRepr {
            status: err.status,
            message: err.message.clone(),
            code: err.code.clone(),
            param: err.param.clone(),
        }
    }

    fn into_error(self) -> Result<StoredError, RecordError> {
        if !(400..=599).contains(&self.status) {
            return Err(invalid("error.status", &self.status.to_string()));
        }
        Ok(StoredError {
            status: self.status,
            message: self.message,
            code: self.code,
            param: self.param,
        })
    }
}
