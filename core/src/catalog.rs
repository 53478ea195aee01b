//! The model and style tables (sora-backend.md 6.3 and 6.4, decisions 11).
//!
//! Every model id the gateway serves, in `/v1/models` order, with what a generation on it
//! needs: its kind, orientation, image size or video length, the upstream model and size, and
//! whether it needs a Pro account. Lookups are by exact id for models and case-insensitive for
//! styles.
//!
//! ```
//! use sora2api_core::catalog::{self, ModelKind, Orientation};
//!
//! let m = catalog::model("sora2pro-hd-portrait-15s").unwrap();
//! assert!(m.requires_pro);
//! assert!(matches!(m.kind, ModelKind::Video(v) if v.seconds == 15 && v.orientation == Orientation::Portrait));
//! assert_eq!(catalog::models().len(), 31);
//! assert_eq!(catalog::style("ANIME").unwrap().display_name, "Anime");
//! ```

use std::fmt;

/// Picture orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Orientation {
    /// Width equals height.
    Square,
    /// Wider than high.
    Landscape,
    /// Higher than wide.
    Portrait,
}

impl Orientation {
    /// The lower-case name used upstream and in descriptions.
    pub fn as_str(self) -> &'static str {
        match self {
            Orientation::Square => "square",
            Orientation::Landscape => "landscape",
            Orientation::Portrait => "portrait",
        }
    }
}

/// The upstream video model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamModel {
    /// `sy_8`: Sora 2 standard.
    Sy8,
    /// `sy_ore`: Sora 2 Pro.
    SyOre,
}

impl UpstreamModel {
    /// The upstream `model` value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamModel::Sy8 => "sy_8",
            UpstreamModel::SyOre => "sy_ore",
        }
    }
}

/// The upstream video size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamSize {
    /// `small`: standard resolution.
    Small,
    /// `large`: Pro HD.
    Large,
}

impl UpstreamSize {
    /// The upstream `size` value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamSize::Small => "small",
            UpstreamSize::Large => "large",
        }
    }
}

/// An image model's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageSpec {
    /// Orientation.
    pub orientation: Orientation,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
}

/// A video model's output and upstream parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideoSpec {
    /// Orientation.
    pub orientation: Orientation,
    /// Length in seconds.
    pub seconds: u16,
    /// Upstream model.
    pub upstream_model: UpstreamModel,
    /// Upstream size.
    pub size: UpstreamSize,
}

impl VideoSpec {
    /// Upstream `n_frames`: 30 per second.
    pub fn n_frames(&self) -> u32 {
        u32::from(self.seconds) * 30
    }
}

/// How much a prompt-enhance model expands the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpansionLevel {
    /// `short`.
    Short,
    /// `medium`.
    Medium,
    /// `long`.
    Long,
}

impl ExpansionLevel {
    /// The upstream `expansion_level` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpansionLevel::Short => "short",
            ExpansionLevel::Medium => "medium",
            ExpansionLevel::Long => "long",
        }
    }
}

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// Text or image to image.
    Image(ImageSpec),
    /// Text or image to video, remix and storyboard.
    Video(VideoSpec),
    /// Extends an earlier generation (`gen_...`) by this many seconds.
    Extension {
        /// `extension_duration_s`.
        seconds: u16,
    },
    /// Rewrites a prompt for a video of this length.
    PromptEnhance {
        /// `expansion_level`.
        level: ExpansionLevel,
        /// `duration_s`.
        seconds: u16,
    },
    /// Creates a character (cameo) from a video or a generation; portrait, 300 frames.
    AvatarCreate,
}

/// The family of a [`ModelKind`], for "wrong kind of model" checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFamily {
    /// Image models.
    Image,
    /// Plain video models.
    Video,
    /// Extension models.
    Extension,
    /// Prompt-enhance models.
    PromptEnhance,
    /// `avatar-create`.
    AvatarCreate,
}

impl ModelKind {
    /// The family of this kind.
    pub fn family(&self) -> ModelFamily {
        match self {
            ModelKind::Image(_) => ModelFamily::Image,
            ModelKind::Video(_) => ModelFamily::Video,
            ModelKind::Extension { .. } => ModelFamily::Extension,
            ModelKind::PromptEnhance { .. } => ModelFamily::PromptEnhance,
            ModelKind::AvatarCreate => ModelFamily::AvatarCreate,
        }
    }
}

/// One servable model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Model {
    /// The client-facing id.
    pub id: &'static str,
    /// What it does.
    pub kind: ModelKind,
    /// Whether only a token of a Pro account may run it (decisions 11: every 25 s model too).
    pub requires_pro: bool,
}

impl Model {
    /// The `/v1/models` description, as the original words it.
    pub fn description(&self) -> String {
        match self.kind {
            ModelKind::Image(i) => format!("Image generation - {}x{}", i.width, i.height),
            ModelKind::Video(v) => format!("Video generation - {}", v.orientation.as_str()),
            ModelKind::Extension { seconds } => {
                format!("Video generation - long video extension ({seconds}s)")
            }
            ModelKind::PromptEnhance { level, seconds } => {
                format!("Prompt_enhance generation - {} ({seconds}s)", level.as_str())
            }
            ModelKind::AvatarCreate => "Avatar_create generation - create avatar from video".into(),
        }
    }

    /// The video spec, for plain video models.
    pub fn video(&self) -> Option<&VideoSpec> {
        match &self.kind {
            ModelKind::Video(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

const fn image(id: &'static str, orientation: Orientation, width: u16, height: u16) -> Model {
    Model {
        id,
        kind: ModelKind::Image(ImageSpec { orientation, width, height }),
        requires_pro: false,
    }
}

const fn video(
    id: &'static str,
    orientation: Orientation,
    seconds: u16,
    upstream_model: UpstreamModel,
    size: UpstreamSize,
) -> Model {
    // Pro upstream models, and every 25 s model (decisions 11), need a Pro account.
    let requires_pro = matches!(upstream_model, UpstreamModel::SyOre) || seconds == 25;
    Model {
        id,
        kind: ModelKind::Video(VideoSpec { orientation, seconds, upstream_model, size }),
        requires_pro,
    }
}

const fn extension(id: &'static str, seconds: u16) -> Model {
    Model { id, kind: ModelKind::Extension { seconds }, requires_pro: false }
}

const fn enhance(id: &'static str, level: ExpansionLevel, seconds: u16) -> Model {
    Model { id, kind: ModelKind::PromptEnhance { level, seconds }, requires_pro: false }
}

use ExpansionLevel::{Long, Medium, Short};
use Orientation::{Landscape, Portrait, Square};
use UpstreamModel::{Sy8, SyOre};
use UpstreamSize::{Large, Small};

/// The 31 models of sora-backend.md 6.3, in `/v1/models` order.
static MODELS: [Model; 31] = [
    image("gpt-image", Square, 360, 360),
    image("gpt-image-landscape", Landscape, 540, 360),
    image("gpt-image-portrait", Portrait, 360, 540),
    video("sora2-landscape-10s", Landscape, 10, Sy8, Small),
    video("sora2-portrait-10s", Portrait, 10, Sy8, Small),
    video("sora2-landscape-15s", Landscape, 15, Sy8, Small),
    video("sora2-portrait-15s", Portrait, 15, Sy8, Small),
    extension("sora2-extension-10s", 10),
    extension("sora2-extension-15s", 15),
    video("sora2-landscape-25s", Landscape, 25, Sy8, Small),
    video("sora2-portrait-25s", Portrait, 25, Sy8, Small),
    video("sora2pro-landscape-10s", Landscape, 10, SyOre, Small),
    video("sora2pro-portrait-10s", Portrait, 10, SyOre, Small),
    video("sora2pro-landscape-15s", Landscape, 15, SyOre, Small),
    video("sora2pro-portrait-15s", Portrait, 15, SyOre, Small),
    video("sora2pro-landscape-25s", Landscape, 25, SyOre, Small),
    video("sora2pro-portrait-25s", Portrait, 25, SyOre, Small),
    video("sora2pro-hd-landscape-10s", Landscape, 10, SyOre, Large),
    video("sora2pro-hd-portrait-10s", Portrait, 10, SyOre, Large),
    video("sora2pro-hd-landscape-15s", Landscape, 15, SyOre, Large),
    video("sora2pro-hd-portrait-15s", Portrait, 15, SyOre, Large),
    enhance("prompt-enhance-short-10s", Short, 10),
    enhance("prompt-enhance-short-15s", Short, 15),
    enhance("prompt-enhance-short-20s", Short, 20),
    enhance("prompt-enhance-medium-10s", Medium, 10),
    enhance("prompt-enhance-medium-15s", Medium, 15),
    enhance("prompt-enhance-medium-20s", Medium, 20),
    enhance("prompt-enhance-long-10s", Long, 10),
    enhance("prompt-enhance-long-15s", Long, 15),
    enhance("prompt-enhance-long-20s", Long, 20),
    Model { id: "avatar-create", kind: ModelKind::AvatarCreate, requires_pro: false },
];

/// The default model of the image endpoints.
pub const DEFAULT_IMAGE_MODEL: &str = "gpt-image";
/// The default model of the video and character endpoints.
pub const DEFAULT_VIDEO_MODEL: &str = "sora2-landscape-10s";
/// The model a character-creation task is recorded under.
pub const AVATAR_CREATE_MODEL: &str = "avatar-create";

/// Every model, in `/v1/models` order.
pub fn models() -> &'static [Model] {
    &MODELS
}

/// The `avatar-create` model, which every character-creation request runs under.
pub fn avatar_create() -> &'static Model {
    &MODELS[30]
}

/// The model with exactly this id.
pub fn model(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id)
}

/// A video style (sora-backend.md 6.4, client-api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Style {
    /// The lower-case id sent upstream as `style_id`.
    pub id: &'static str,
    /// The display name.
    pub display_name: &'static str,
    /// What it means.
    pub meaning: &'static str,
}

static STYLES: [Style; 10] = [
    Style { id: "festive", display_name: "Festive", meaning: "festive" },
    Style { id: "kakalaka", display_name: "🪐👺", meaning: "chaos" },
    Style { id: "news", display_name: "News", meaning: "news" },
    Style { id: "selfie", display_name: "Selfie", meaning: "selfie" },
    Style { id: "handheld", display_name: "Handheld", meaning: "handheld camera" },
    Style { id: "golden", display_name: "Golden", meaning: "golden" },
    Style { id: "anime", display_name: "Anime", meaning: "anime" },
    Style { id: "retro", display_name: "Retro", meaning: "retro" },
    Style { id: "nostalgic", display_name: "Vintage", meaning: "vintage" },
    Style { id: "comic", display_name: "Comic", meaning: "comic" },
];

/// Every style, in the table's order.
pub fn styles() -> &'static [Style] {
    &STYLES
}

/// The style with this id, ignoring ASCII case.
pub fn style(id: &str) -> Option<&'static Style> {
    STYLES.iter().find(|s| s.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, family, orientation, w, h or seconds, upstream model, size, pro, description)
    #[test]
    fn every_model_row() {
        type Row = (&'static str, &'static str, bool, &'static str);
        // (id, summary of kind, requires_pro, description)
        let rows: [Row; 31] = [
            ("gpt-image", "image square 360x360", false, "Image generation - 360x360"),
            ("gpt-image-landscape", "image landscape 540x360", false, "Image generation - 540x360"),
            ("gpt-image-portrait", "image portrait 360x540", false, "Image generation - 360x540"),
            (
                "sora2-landscape-10s",
                "video landscape 10s 300f sy_8 small",
                false,
                "Video generation - landscape",
            ),
            (
                "sora2-portrait-10s",
                "video portrait 10s 300f sy_8 small",
                false,
                "Video generation - portrait",
            ),
            (
                "sora2-landscape-15s",
                "video landscape 15s 450f sy_8 small",
                false,
                "Video generation - landscape",
            ),
            (
                "sora2-portrait-15s",
                "video portrait 15s 450f sy_8 small",
                false,
                "Video generation - portrait",
            ),
            (
                "sora2-extension-10s",
                "extension 10s",
                false,
                "Video generation - long video extension (10s)",
            ),
            (
                "sora2-extension-15s",
                "extension 15s",
                false,
                "Video generation - long video extension (15s)",
            ),
            (
                "sora2-landscape-25s",
                "video landscape 25s 750f sy_8 small",
                true,
                "Video generation - landscape",
            ),
            (
                "sora2-portrait-25s",
                "video portrait 25s 750f sy_8 small",
                true,
                "Video generation - portrait",
            ),
            (
                "sora2pro-landscape-10s",
                "video landscape 10s 300f sy_ore small",
                true,
                "Video generation - landscape",
            ),
            (
                "sora2pro-portrait-10s",
                "video portrait 10s 300f sy_ore small",
                true,
                "Video generation - portrait",
            ),
            (
                "sora2pro-landscape-15s",
                "video landscape 15s 450f sy_ore small",
                true,
                "Video generation - landscape",
            ),
            (
                "sora2pro-portrait-15s",
                "video portrait 15s 450f sy_ore small",
                true,
                "Video generation - portrait",
            ),
            (
                "sora2pro-landscape-25s",
                "video landscape 25s 750f sy_ore small",
                true,
                "Video generation - landscape",
            ),
            (
                "sora2pro-portrait-25s",
                "video portrait 25s 750f sy_ore small",
                true,
                "Video generation - portrait",
            ),
            (
                "sora2pro-hd-landscape-10s",
                "video landscape 10s 300f sy_ore large",
                true,
                "Video generation - landscape",
            ),
            (
                "sora2pro-hd-portrait-10s",
                "video portrait 10s 300f sy_ore large",
                true,
                "Video generation - portrait",
            ),
            (
                "sora2pro-hd-landscape-15s",
                "video landscape 15s 450f sy_ore large",
                true,
                "Video generation - landscape",
            ),
            (
                "sora2pro-hd-portrait-15s",
                "video portrait 15s 450f sy_ore large",
                true,
                "Video generation - portrait",
            ),
            (
                "prompt-enhance-short-10s",
                "enhance short 10s",
                false,
                "Prompt_enhance generation - short (10s)",
            ),
            (
                "prompt-enhance-short-15s",
                "enhance short 15s",
                false,
                "Prompt_enhance generation - short (15s)",
            ),
            (
                "prompt-enhance-short-20s",
                "enhance short 20s",
                false,
                "Prompt_enhance generation - short (20s)",
            ),
            (
                "prompt-enhance-medium-10s",
                "enhance medium 10s",
                false,
                "Prompt_enhance generation - medium (10s)",
            ),
            (
                "prompt-enhance-medium-15s",
                "enhance medium 15s",
                false,
                "Prompt_enhance generation - medium (15s)",
            ),
            (
                "prompt-enhance-medium-20s",
                "enhance medium 20s",
                false,
                "Prompt_enhance generation - medium (20s)",
            ),
            (
                "prompt-enhance-long-10s",
                "enhance long 10s",
                false,
                "Prompt_enhance generation - long (10s)",
            ),
            (
                "prompt-enhance-long-15s",
                "enhance long 15s",
                false,
                "Prompt_enhance generation - long (15s)",
            ),
            (
                "prompt-enhance-long-20s",
                "enhance long 20s",
                false,
                "Prompt_enhance generation - long (20s)",
            ),
            (
                "avatar-create",
                "avatar",
                false,
                "Avatar_create generation - create avatar from video",
            ),
        ];
        assert_eq!(models().len(), rows.len());
        for (m, (id, kind, pro, description)) in models().iter().zip(rows) {
            assert_eq!(m.id, id, "order of /v1/models");
            assert_eq!(summary(m), kind, "{id}");
            assert_eq!(m.requires_pro, pro, "{id}");
            assert_eq!(m.description(), description, "{id}");
            assert_eq!(model(id), Some(m));
        }
    }

    fn summary(m: &Model) -> String {
        match m.kind {
            ModelKind::Image(i) => {
                format!("image {} {}x{}", i.orientation.as_str(), i.width, i.height)
            }
            ModelKind::Video(v) => format!(
                "video {} {}s {}f {} {}",
                v.orientation.as_str(),
                v.seconds,
                v.n_frames(),
                v.upstream_model.as_str(),
                v.size.as_str()
            ),
            ModelKind::Extension { seconds } => format!("extension {seconds}s"),
            ModelKind::PromptEnhance { level, seconds } => {
                format!("enhance {} {seconds}s", level.as_str())
            }
            ModelKind::AvatarCreate => "avatar".into(),
        }
    }

    #[test]
    fn unknown_and_miscased_model_ids_are_not_found() {
        for id in ["", "invalid-model", "GPT-IMAGE", "sora2pro-hd-landscape-25s", "gpt-image "] {
            assert_eq!(model(id), None, "{id:?}");
        }
    }

    #[test]
    fn defaults_exist_and_have_their_kind() {
        assert_eq!(model(DEFAULT_IMAGE_MODEL).map(|m| m.kind.family()), Some(ModelFamily::Image));
        assert_eq!(model(DEFAULT_VIDEO_MODEL).map(|m| m.kind.family()), Some(ModelFamily::Video));
        assert_eq!(
            model(AVATAR_CREATE_MODEL).map(|m| m.kind.family()),
            Some(ModelFamily::AvatarCreate)
        );
        assert_eq!(avatar_create().id, AVATAR_CREATE_MODEL);
    }

    #[test]
    fn every_style_row() {
        let rows = [
            ("festive", "Festive", "festive"),
            ("kakalaka", "🪐👺", "chaos"),
            ("news", "News", "news"),
            ("selfie", "Selfie", "selfie"),
            ("handheld", "Handheld", "handheld camera"),
            ("golden", "Golden", "golden"),
            ("anime", "Anime", "anime"),
            ("retro", "Retro", "retro"),
            ("nostalgic", "Vintage", "vintage"),
            ("comic", "Comic", "comic"),
        ];
        assert_eq!(styles().len(), rows.len());
        for (s, (id, name, meaning)) in styles().iter().zip(rows) {
            assert_eq!((s.id, s.display_name, s.meaning), (id, name, meaning));
            assert_eq!(style(id), Some(s));
            assert_eq!(style(&id.to_uppercase()), Some(s), "case-insensitive");
        }
        assert_eq!(style("vintage"), None, "display names are not ids");
        assert_eq!(style(" anime"), None);
    }
}
