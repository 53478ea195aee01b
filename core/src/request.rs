//! The canonical generation request: what a client asked for, independent of the endpoint it
//! used and of the upstream that will run it.
//!
//! Every client face (the dedicated endpoints, `/v1/chat/completions`) translates into exactly
//! one [`GenerationRequest`]; the task engine and every upstream adapter read only this type.
//! A chat request and the matching dedicated request produce equal values.

use bytes::Bytes;

use crate::catalog::{Model, Style};
use crate::prompt::{GenerationId, RemixId, Storyboard};

/// Decoded media bytes sent inline by the client.
#[derive(Clone, PartialEq, Eq)]
pub struct Media {
    /// The decoded bytes (the one copy of the media the gateway makes).
    pub bytes: Bytes,
    /// The sniffed format.
    pub format: MediaFormat,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never dump megabytes of media into a log line.
        f.debug_struct("Media")
            .field("format", &self.format)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A media format recognised from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaFormat {
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// GIF image.
    Gif,
    /// WebP image.
    Webp,
    /// MP4 / QuickTime (ISO base media) video.
    Mp4,
    /// WebM / Matroska video.
    Webm,
}

impl MediaFormat {
    /// Recognises the format from the first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some(MediaFormat::Png),
            [0xff, 0xd8, 0xff, ..] => Some(MediaFormat::Jpeg),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(MediaFormat::Gif),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => {
                Some(MediaFormat::Webp)
            }
            [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some(MediaFormat::Mp4),
            [0x1a, 0x45, 0xdf, 0xa3, ..] => Some(MediaFormat::Webm),
            _ => None,
        }
    }

    /// The format's usual name: `PNG`, `JPEG`, `GIF`, `WebP`, `MP4`, `WebM`.
    pub fn name(self) -> &'static str {
        match self {
            MediaFormat::Png => "PNG",
            MediaFormat::Jpeg => "JPEG",
            MediaFormat::Gif => "GIF",
            MediaFormat::Webp => "WebP",
            MediaFormat::Mp4 => "MP4",
            MediaFormat::Webm => "WebM",
        }
    }

    /// Whether this is an image format.
    pub fn is_image(self) -> bool {
        matches!(self, MediaFormat::Png | MediaFormat::Jpeg | MediaFormat::Gif | MediaFormat::Webp)
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            MediaFormat::Png => "image/png",
            MediaFormat::Jpeg => "image/jpeg",
            MediaFormat::Gif => "image/gif",
            MediaFormat::Webp => "image/webp",
            MediaFormat::Mp4 => "video/mp4",
            MediaFormat::Webm => "video/webm",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            MediaFormat::Png => "png",
            MediaFormat::Jpeg => "jpg",
            MediaFormat::Gif => "gif",
            MediaFormat::Webp => "webp",
            MediaFormat::Mp4 => "mp4",
            MediaFormat::Webm => "webm",
        }
    }
}

/// A video the client supplied: inline bytes, or an `http(s)` URL the gateway fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    /// Decoded inline video.
    Inline(Media),
    /// A URL to download (the shell applies its fetch policy: scheme, size, address limits).
    Url(String),
}

/// Where a character is created from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharacterSource {
    /// A video the client sent.
    Video(VideoInput),
    /// An earlier generation (`gen_...`).
    Generation(GenerationId),
}

/// A clip range, for character extraction (`"0,3"`: seconds 0 to 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamps {
    /// Start, in milliseconds.
    pub start_ms: u32,
    /// End, in milliseconds (after `start_ms`).
    pub end_ms: u32,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Text to image.
    TextToImage {
        /// The prompt.
        prompt: String,
    },
    /// Image to image.
    ImageToImage {
        /// The prompt.
        prompt: String,
        /// The source image.
        image: Media,
    },
    /// Text to video.
    TextToVideo {
        /// The prompt, directives removed.
        prompt: String,
        /// The style, if one was chosen.
        style: Option<&'static Style>,
    },
    /// Image to video.
    ImageToVideo {
        /// The prompt, directives removed.
        prompt: String,
        /// The first frame.
        image: Media,
        /// The style, if one was chosen.
        style: Option<&'static Style>,
    },
    /// A new video continuing a published one.
    Remix {
        /// The prompt, remix references and style removed.
        prompt: String,
        /// The published video to continue.
        target: RemixId,
        /// The style, if one was chosen.
        style: Option<&'static Style>,
    },
    /// A multi-shot video.
    Storyboard {
        /// The parsed shots.
        storyboard: Storyboard,
        /// An image the video starts from, if one was sent.
        image: Option<Media>,
        /// The style, if one was chosen.
        style: Option<&'static Style>,
    },
    /// Extends an earlier generation.
    Extension {
        /// What happens next.
        prompt: String,
        /// The generation to extend.
        generation: GenerationId,
    },
    /// Rewrites a prompt.
    PromptEnhance {
        /// The prompt to expand.
        prompt: String,
    },
    /// Creates a character (cameo) and returns its card.
    CharacterCreate {
        /// The video or generation the character comes from.
        source: CharacterSource,
        /// The clip range to extract from, if given.
        timestamps: Option<Timestamps>,
    },
    /// Creates a temporary character from a video, generates `@username prompt` with it, and
    /// deletes the character again.
    CharacterVideo {
        /// The prompt (the character's mention is added upstream).
        prompt: String,
        /// The video the character comes from.
        video: VideoInput,
        /// The clip range to extract from, if given.
        timestamps: Option<Timestamps>,
    },
}

/// The kind of result a task produces; also `task_type` in task JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Images.
    Image,
    /// A video.
    Video,
    /// A character card.
    Character,
    /// An enhanced prompt.
    Enhance,
}

impl TaskKind {
    /// The `task_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Image => "image",
            TaskKind::Video => "video",
            TaskKind::Character => "character",
            TaskKind::Enhance => "enhance",
        }
    }
}

impl Operation {
    /// The kind of result this operation produces.
    pub fn task_kind(&self) -> TaskKind {
        match self {
            Operation::TextToImage { .. } | Operation::ImageToImage { .. } => TaskKind::Image,
            Operation::TextToVideo { .. }
            | Operation::ImageToVideo { .. }
            | Operation::Remix { .. }
            | Operation::Storyboard { .. }
            | Operation::Extension { .. }
            | Operation::CharacterVideo { .. } => TaskKind::Video,
            Operation::CharacterCreate { .. } => TaskKind::Character,
            Operation::PromptEnhance { .. } => TaskKind::Enhance,
        }
    }

    /// A short stable name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::TextToImage { .. } => "text-to-image",
            Operation::ImageToImage { .. } => "image-to-image",
            Operation::TextToVideo { .. } => "text-to-video",
            Operation::ImageToVideo { .. } => "image-to-video",
            Operation::Remix { .. } => "remix",
            Operation::Storyboard { .. } => "storyboard",
            Operation::Extension { .. } => "extension",
            Operation::PromptEnhance { .. } => "prompt-enhance",
            Operation::CharacterCreate { .. } => "character-create",
            Operation::CharacterVideo { .. } => "character-video",
        }
    }
}

/// One canonical generation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRequest {
    /// The model that runs it (`avatar-create` for character creation).
    pub model: &'static Model,
    /// What to generate.
    pub operation: Operation,
}

impl GenerationRequest {
    /// Whether only a Pro account may run it.
    pub fn requires_pro(&self) -> bool {
        self.model.requires_pro
    }
}

/// How the client wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseMode {
    /// Wait for the result and answer with one JSON body.
    Blocking,
    /// Server-sent events as the task advances.
    Stream,
    /// Answer at once with the task id.
    Async,
}

impl ResponseMode {
    /// From the `stream` and `async_mode` flags; `async_mode` wins (`stream` is ignored then).
    pub fn from_flags(stream: bool, async_mode: bool) -> Self {
        match (stream, async_mode) {
            (_, true) => ResponseMode::Async,
            (true, false) => ResponseMode::Stream,
            (false, false) => ResponseMode::Blocking,
        }
    }
}

/// A translated client call: the canonical request plus how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCall {
    /// What to generate.
    pub request: GenerationRequest,
    /// How to answer.
    pub mode: ResponseMode,
    /// The prompt exactly as the client wrote it, for the task record (`prompt` in task JSON).
    /// Kept outside the request: two faces that ask for the same thing in different words
    /// produce equal requests.
    pub client_prompt: String,
    /// The model id the client named (or its endpoint's default): what its answers show as
    /// `model` (decisions 3). It differs from [`GenerationRequest::model`] where the request
    /// runs on another model, e.g. a chat request with only a video on a video model creates
    /// a character with `avatar-create`.
    pub client_model: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_formats() {
        let cases: [(&[u8], Option<MediaFormat>); 8] = [
            (b"\x89PNG\r\n\x1a\n....", Some(MediaFormat::Png)),
            (b"\xff\xd8\xff\xe0", Some(MediaFormat::Jpeg)),
            (b"GIF89a..", Some(MediaFormat::Gif)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(MediaFormat::Webp)),
            (b"\0\0\0\x18ftypmp42", Some(MediaFormat::Mp4)),
            (b"\x1a\x45\xdf\xa3....", Some(MediaFormat::Webm)),
            (b"hello world", None),
            (b"", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(MediaFormat::sniff(bytes), want);
        }
        assert!(MediaFormat::Png.is_image() && !MediaFormat::Mp4.is_image());
    }

    #[test]
    fn async_mode_wins_over_stream() {
        assert_eq!(ResponseMode::from_flags(true, true), ResponseMode::Async);
        assert_eq!(ResponseMode::from_flags(true, false), ResponseMode::Stream);
        assert_eq!(ResponseMode::from_flags(false, false), ResponseMode::Blocking);
    }

    #[test]
    fn media_debug_does_not_dump_bytes() {
        let m = Media { bytes: Bytes::from(vec![7u8; 1000]), format: MediaFormat::Png };
        assert_eq!(format!("{m:?}"), "Media { format: Png, len: 1000 }");
    }
}
