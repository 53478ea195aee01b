//! Client request -> one canonical [`GenerationRequest`].
//!
//! Two faces translate here: the eight dedicated endpoints ([`dedicated`]) and the unified
//! `/v1/chat/completions` ([`chat`]). Both end in the same operation builders, so a chat
//! request and the matching dedicated request produce equal [`GenerationRequest`]s.
//!
//! ## Chat dispatch (sora-backend.md 6.6, as amended by decisions 7-11)
//!
//! 1. `model` must name a model we serve (`Invalid model: X`).
//! 2. The last message's content gives the prompt (string, or the last text part) and media
//!    parts; media parts override the top-level `image` / `video`.
//! 3. By the model's family:
//!    - prompt-enhance: the prompt is enhanced;
//!    - `avatar-create`: with a video, a character from it; else a `gen_...` id in the prompt
//!      makes a character from that generation; else an error;
//!    - plain video models: an explicit `remix_target_id`, or a share link / `s_<32 hex>` in
//!      the prompt, makes a remix (decisions 9: only plain video models remix); else a video
//!      with a prompt makes a character video, a video alone a character (the older
//!      original's rules, which the dedicated character endpoints mirror); else the main
//!      flow: `{style}` extraction, then a storyboard if the prompt has shot markers, then
//!      image-to-video or text-to-video;
//!    - extension models: a `gen_...` id and the rest of the prompt extend that generation;
//!    - image models: image-to-image with an image, else text-to-image. Prompts for images
//!      are sent as written (styles and remix ids apply to video only).
//!
//! Inputs a model cannot use (an image for an extension, a video for an image model, ...)
//! are 400s that say so, never silently dropped.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::catalog::{self, Model, ModelFamily, Style};
use crate::error::{echo, Error};
use crate::prompt::{extract_style, GenerationId, RemixId, Storyboard};
use crate::request::{
    CharacterSource, ClientCall, GenerationRequest, Media, Operation, ResponseMode, Timestamps,
    VideoInput,
};
use crate::wire::{self, bool_field, decode_body, string_field, ChatBody, DedicatedBody};

pub use crate::wire::Limits;

/// A dedicated endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/images/generate`: text to image.
    ImagesGenerate,
    /// `POST /v1/images/transform`: image to image.
    ImagesTransform,
    /// `POST /v1/videos/generate`: text to video (a storyboard prompt is honoured too).
    VideosGenerate,
    /// `POST /v1/videos/transform`: image to video.
    VideosTransform,
    /// `POST /v1/videos/remix`: continue a published video.
    VideosRemix,
    /// `POST /v1/videos/storyboard`: multi-shot video.
    VideosStoryboard,
    /// `POST /v1/characters/create`: a character from a video.
    CharactersCreate,
    /// `POST /v1/characters/generate`: a character from a video, then a video with it.
    CharactersGenerate,
}

/// A known body field; which endpoint accepts which is [`Endpoint::accepts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Prompt,
    Model,
    Image,
    Video,
    RemixTargetId,
    Style,
    Timestamps,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Prompt => "prompt",
            Field::Model => "model",
            Field::Image => "image",
            Field::Video => "video",
            Field::RemixTargetId => "remix_target_id",
            Field::Style => "style",
            Field::Timestamps => "timestamps",
        }
    }

    /// Where to send this field instead, for the "not accepted" message.
    fn hint(self) -> &'static str {
        match self {
            Field::Image => {
                "; to start from an image use /v1/images/transform or /v1/videos/transform"
            }
            Field::Video => {
                "; to use a video send it to /v1/characters/create or /v1/characters/generate"
            }
            Field::RemixTargetId => "; to remix use /v1/videos/remix",
            Field::Style => "; styles apply to video endpoints only",
            Field::Prompt => "; to generate a video with the character use /v1/characters/generate",
            Field::Timestamps => "; timestamps apply to the character endpoints",
            Field::Model => "",
        }
    }
}

impl Endpoint {
    /// Every dedicated endpoint.
    pub const ALL: [Endpoint; 8] = [
        Endpoint::ImagesGenerate,
        Endpoint::ImagesTransform,
        Endpoint::VideosGenerate,
        Endpoint::VideosTransform,
        Endpoint::VideosRemix,
        Endpoint::VideosStoryboard,
        Endpoint::CharactersCreate,
        Endpoint::CharactersGenerate,
    ];

    /// The path, under `/v1`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ImagesGenerate => "/v1/images/generate",
            Endpoint::ImagesTransform => "/v1/images/transform",
            Endpoint::VideosGenerate => "/v1/videos/generate",
            Endpoint::VideosTransform => "/v1/videos/transform",
            Endpoint::VideosRemix => "/v1/videos/remix",
            Endpoint::VideosStoryboard => "/v1/videos/storyboard",
            Endpoint::CharactersCreate => "/v1/characters/create",
            Endpoint::CharactersGenerate => "/v1/characters/generate",
        }
    }

    /// The endpoint at this path, if any.
    pub fn from_path(path: &str) -> Option<Self> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    fn accepts(self, field: Field) -> bool {
        use Field::*;
        let fields: &[Field] = match self {
            Endpoint::ImagesGenerate => &[Prompt, Model],
            Endpoint::ImagesTransform => &[Prompt, Model, Image],
            Endpoint::VideosGenerate => &[Prompt, Model, Style],
            Endpoint::VideosTransform | Endpoint::VideosStoryboard => {
                &[Prompt, Model, Style, Image]
            }
            Endpoint::VideosRemix => &[Prompt, Model, Style, RemixTargetId],
            Endpoint::CharactersCreate => &[Model, Video, Timestamps],
            Endpoint::CharactersGenerate => &[Prompt, Model, Video, Timestamps],
        };
        fields.contains(&field)
    }
}

/// Translates the body of a dedicated endpoint.
pub fn dedicated(endpoint: Endpoint, body: &[u8], limits: &Limits) -> Result<ClientCall, Error> {
    let body: DedicatedBody<'_> = decode_body(body)?;
    let fields = [
        (Field::Prompt, body.prompt),
        (Field::Model, body.model),
        (Field::Image, body.image),
        (Field::Video, body.video),
        (Field::RemixTargetId, body.remix_target_id),
        (Field::Style, body.style),
        (Field::Timestamps, body.timestamps),
    ];
    for (field, raw) in fields {
        if !endpoint.accepts(field) && raw.is_some_and(|r| r.get() != "null") {
            return Err(Error::invalid(
                field.name(),
                format!("{} is not accepted by {}{}", field.name(), endpoint.path(), field.hint()),
            ));
        }
    }
    let mode = ResponseMode::from_flags(
        bool_field(body.stream, "stream")?,
        bool_field(body.async_mode, "async_mode")?,
    );
    let prompt = string_field(body.prompt, "prompt")?;
    let client_prompt = prompt.as_deref().unwrap_or_default().to_owned();
    let model_id = string_field(body.model, "model")?;
    let image = || -> Result<Option<Media>, Error> {
        string_field(body.image, "image")?
            .map(|t| wire::decode_image(&t, "image", limits))
            .transpose()
    };
    let required_image = || image()?.ok_or_else(|| Error::missing("image"));
    let required_video = || -> Result<VideoInput, Error> {
        let text = string_field(body.video, "video")?.ok_or_else(|| Error::missing("video"))?;
        wire::decode_video(&text, "video", limits)
    };
    let the_prompt = || required_prompt(prompt.as_deref(), "prompt", limits);
    let timestamps = || timestamps(body.timestamps);

    let (model, operation) = match endpoint {
        Endpoint::ImagesGenerate | Endpoint::ImagesTransform => {
            let model = model_of(model_id, catalog::DEFAULT_IMAGE_MODEL, ModelFamily::Image)?;
            let prompt = the_prompt()?;
            let image =
                if endpoint == Endpoint::ImagesTransform { Some(required_image()?) } else { None };
            (model, image_op(prompt, image))
        }
        Endpoint::VideosGenerate | Endpoint::VideosTransform | Endpoint::VideosStoryboard => {
            let model = model_of(model_id, catalog::DEFAULT_VIDEO_MODEL, ModelFamily::Video)?;
            let text = with_style(style_field(body.style)?, the_prompt()?);
            let image = match endpoint {
                Endpoint::VideosTransform => Some(required_image()?),
                Endpoint::VideosStoryboard => image()?,
                _ => None,
            };
            let op = video_op(&text, image, "prompt")?;
            if endpoint == Endpoint::VideosStoryboard && !matches!(op, Operation::Storyboard { .. })
            {
                return Err(Error::InvalidStoryboard {
                    param: "prompt".into(),
                    message: "prompt is not a storyboard: write each shot as [<seconds>s]<scene>, e.g. [5.0s]The cat jumps out of the plane [5.0s]The cat lands".into(),
                });
            }
            (model, op)
        }
        Endpoint::VideosRemix => {
            let model = model_of(model_id, catalog::DEFAULT_VIDEO_MODEL, ModelFamily::Video)?;
            let prompt = the_prompt()?;
            let target = string_field(body.remix_target_id, "remix_target_id")?
                .ok_or_else(|| Error::missing("remix_target_id"))?;
            let target = remix_target(&target)?;
            (model, remix_op(&with_style(style_field(body.style)?, prompt), target, "prompt")?)
        }
        Endpoint::CharactersCreate => {
            if let Some(id) = model_id.filter(|id| id != catalog::AVATAR_CREATE_MODEL) {
                return Err(Error::WrongModelKind {
                    model: echo(&id),
                    expected: "avatar-create (the only model of /v1/characters/create)",
                });
            }
            let source = CharacterSource::Video(required_video()?);
            (
                catalog::avatar_create(),
                Operation::CharacterCreate { source, timestamps: timestamps()? },
            )
        }
        Endpoint::CharactersGenerate => {
            let model = model_of(model_id, catalog::DEFAULT_VIDEO_MODEL, ModelFamily::Video)?;
            let prompt = the_prompt()?;
            let video = required_video()?;
            (model, Operation::CharacterVideo { prompt, video, timestamps: timestamps()? })
        }
    };
    let client_model = model.id;
    Ok(ClientCall {
        request: GenerationRequest { model, operation },
        mode,
        client_prompt,
        client_model,
    })
}

/// Translates a `/v1/chat/completions` body.
pub fn chat(body: &[u8], limits: &Limits) -> Result<ClientCall, Error> {
    let body: ChatBody<'_> = decode_body(body)?;
    let model_id = string_field(body.model, "model")?.ok_or_else(|| Error::missing("model"))?;
    let model =
        catalog::model(&model_id).ok_or_else(|| Error::InvalidModel { model: echo(&model_id) })?;
    let named = model;
    let content = wire::chat_content(body.messages, |text| RemixId::find(text).is_some())?;
    let mode = ResponseMode::from_flags(
        bool_field(body.stream, "stream")?,
        bool_field(body.async_mode, "async_mode")?,
    );
    let prompt = content.prompt.as_deref();
    let client_prompt = prompt.unwrap_or_default().to_owned();

    // Media parts override the top-level fields; errors name where the value came from.
    let image_text = match content.image_url {
        Some(url) => Some((url, "messages")),
        None => string_field(body.image, "image")?.map(|t| (t, "image")),
    };
    let video_text = match content.video_url {
        Some(url) => Some((url, "messages")),
        None => string_field(body.video, "video")?.map(|t| (t, "video")),
    };
    let explicit_remix = string_field(body.remix_target_id, "remix_target_id")?;
    let image = || -> Result<Option<Media>, Error> {
        image_text.as_ref().map(|(t, p)| wire::decode_image(t, p, limits)).transpose()
    };
    let video = || -> Result<Option<VideoInput>, Error> {
        video_text.as_ref().map(|(t, p)| wire::decode_video(t, p, limits)).transpose()
    };
    let unused = |what: Option<&(Cow<'_, str>, &'static str)>, name: &str| -> Result<(), Error> {
        match what {
            Some((_, param)) => {
                Err(Error::invalid(*param, format!("{name} is not used by model {}", model.id)))
            }
            None => Ok(()),
        }
    };
    let no_remix = || match explicit_remix {
        Some(_) => Err(Error::invalid(
            "remix_target_id",
            format!(
                "remix_target_id is not used by model {}; remix needs a plain video model",
                model.id
            ),
        )),
        None => Ok(()),
    };
    // A chat without text is answered like a blank message, not as "messages is required".
    let the_prompt = || required_prompt(Some(prompt.unwrap_or_default()), "messages", limits);

    let (model, operation) = match model.kind.family() {
        ModelFamily::PromptEnhance => {
            unused(image_text.as_ref(), "an image")?;
            unused(video_text.as_ref(), "a video")?;
            no_remix()?;
            (model, Operation::PromptEnhance { prompt: the_prompt()? })
        }
        ModelFamily::AvatarCreate => {
            unused(image_text.as_ref(), "an image")?;
            no_remix()?;
            let source =
                match (video()?, prompt.and_then(GenerationId::find)) {
                    (Some(video), _) => CharacterSource::Video(video),
                    (None, Some(generation)) => CharacterSource::Generation(generation),
                    (None, None) => return Err(Error::invalid(
                        "video",
                        "avatar-create needs a video, or a generation id (gen_xxx) in the prompt",
                    )),
                };
            (catalog::avatar_create(), Operation::CharacterCreate { source, timestamps: None })
        }
        ModelFamily::Extension => {
            unused(image_text.as_ref(), "an image")?;
            unused(video_text.as_ref(), "a video")?;
            no_remix()?;
            (model, extension_op(prompt.unwrap_or_default(), limits)?)
        }
        ModelFamily::Image => {
            unused(video_text.as_ref(), "a video")?;
            no_remix()?;
            (model, image_op(the_prompt()?, image()?))
        }
        ModelFamily::Video => {
            let remix = match explicit_remix {
                Some(text) => Some(remix_target(&text)?),
                None => content.remix_source.as_deref().or(prompt).and_then(RemixId::find),
            };
            if let Some(target) = remix {
                unused(image_text.as_ref(), "an image together with remix")?;
                unused(video_text.as_ref(), "a video together with remix")?;
                (model, remix_op(&the_prompt()?, target, "messages")?)
            } else if let Some(video) = video()? {
                unused(image_text.as_ref(), "an image together with a video")?;
                match prompt.filter(|p| !p.trim().is_empty()) {
                    Some(_) => {
                        let prompt = the_prompt()?;
                        (model, Operation::CharacterVideo { prompt, video, timestamps: None })
                    }
                    None => (
                        catalog::avatar_create(),
                        Operation::CharacterCreate {
                            source: CharacterSource::Video(video),
                            timestamps: None,
                        },
                    ),
                }
            } else {
                (model, video_op(&the_prompt()?, image()?, "messages")?)
            }
        }
    };
    let client_model = named.id;
    Ok(ClientCall {
        request: GenerationRequest { model, operation },
        mode,
        client_prompt,
        client_model,
    })
}

// === operation builders shared by both faces ===

fn image_op(prompt: String, image: Option<Media>) -> Operation {
    match image {
        Some(image) => Operation::ImageToImage { prompt, image },
        None => Operation::TextToImage { prompt },
    }
}

/// The video main flow: `{style}`, then storyboard detection, then image- or text-to-video.
fn video_op(text: &str, image: Option<Media>, param: &'static str) -> Result<Operation, Error> {
    let (clean, style) = extract_style(text);
    match Storyboard::parse(&clean) {
        Ok(Some(storyboard)) => Ok(Operation::Storyboard { storyboard, image, style }),
        Err(err) => Err(Error::InvalidStoryboard { param: param.into(), message: err.to_string() }),
        Ok(None) => {
            let prompt = non_blank(&clean, param)?;
            Ok(match image {
                Some(image) => Operation::ImageToVideo { prompt, image, style },
                None => Operation::TextToVideo { prompt, style },
            })
        }
    }
}

/// Remix: share links and ids leave the prompt, then `{style}` is extracted.
fn remix_op(text: &str, target: RemixId, param: &'static str) -> Result<Operation, Error> {
    let (clean, style) = extract_style(&RemixId::strip_from(text));
    let prompt = clean.trim();
    if prompt.is_empty() {
        return Err(Error::invalid(
            param,
            "a remix needs a prompt that describes the change, besides the share link",
        ));
    }
    Ok(Operation::Remix { prompt: prompt.to_owned(), target, style })
}

fn extension_op(prompt: &str, limits: &Limits) -> Result<Operation, Error> {
    let generation = GenerationId::find(prompt).ok_or_else(|| {
        Error::invalid(
            "messages",
            "Video extension models need a generation_id (gen_xxx) in the prompt. Example: gen_xxx meteor shower",
        )
    })?;
    let rest = GenerationId::strip_from(prompt);
    if rest.trim().is_empty() {
        return Err(Error::invalid(
            "messages",
            "Video extension models need an extension prompt. Example: gen_xxx meteor shower",
        ));
    }
    let prompt = required_prompt(Some(&rest), "messages", limits)?;
    Ok(Operation::Extension { prompt, generation })
}

// === field helpers ===

fn model_of(
    id: Option<Cow<'_, str>>,
    default: &str,
    family: ModelFamily,
) -> Result<&'static Model, Error> {
    let id = id.as_deref().unwrap_or(default);
    let model = catalog::model(id).ok_or_else(|| Error::InvalidModel { model: echo(id) })?;
    if model.kind.family() != family {
        let expected = match family {
            ModelFamily::Image => "an image model",
            _ => "a video model",
        };
        return Err(Error::WrongModelKind { model: echo(id), expected });
    }
    Ok(model)
}

fn required_prompt(
    prompt: Option<&str>,
    param: &'static str,
    limits: &Limits,
) -> Result<String, Error> {
    let prompt = prompt.ok_or_else(|| Error::missing(param))?;
    if prompt.len() > limits.max_prompt_bytes {
        return Err(Error::invalid(
            param,
            format!(
                "prompt is too long: {} bytes, the limit is {} bytes",
                prompt.len(),
                limits.max_prompt_bytes
            ),
        ));
    }
    non_blank(prompt, param)
}

fn non_blank(prompt: &str, param: &'static str) -> Result<String, Error> {
    let trimmed = prompt.trim();
    if trimmed.is_empty() {
        return Err(match param {
            "messages" => Error::invalid(param, "prompt is required: the last message has no text"),
            _ => Error::missing(param),
        });
    }
    Ok(trimmed.to_owned())
}

/// The `style` field: a known style id, any case (decisions 7).
fn style_field(raw: Option<&RawValue>) -> Result<Option<&'static Style>, Error> {
    let Some(id) = string_field(raw, "style")? else { return Ok(None) };
    catalog::style(id.trim()).map(Some).ok_or_else(|| {
        let known: Vec<&str> = catalog::styles().iter().map(|s| s.id).collect();
        Error::invalid(
            "style",
            format!("Invalid style: {}. Use one of: {}", echo(&id), known.join(", ")),
        )
    })
}

/// The dedicated endpoints turn `style` into a `{style}` prefix before the same extraction as
/// chat prompts (sora-backend.md 6.4).
fn with_style(style: Option<&'static Style>, prompt: String) -> String {
    match style {
        Some(style) => format!("{{{}}}{prompt}", style.id),
        None => prompt,
    }
}

fn remix_target(text: &str) -> Result<RemixId, Error> {
    RemixId::normalize(text).ok_or_else(|| {
        Error::invalid(
            "remix_target_id",
            "Invalid remix_target_id: send a Sora share link or an id like s_ followed by 32 lowercase hex digits",
        )
    })
}

/// `timestamps`: `"start,end"` in seconds (`"0,3"`), or `[start, end]`.
fn timestamps(raw: Option<&RawValue>) -> Result<Option<Timestamps>, Error> {
    const P: &str = "timestamps";
    let bad = || {
        Error::invalid(
            P,
            "timestamps must be \"start,end\" in seconds with start < end <= 3600, e.g. \"0,3\"",
        )
    };
    let Some(raw) = raw.filter(|r| r.get() != "null") else { return Ok(None) };
    let (start, end) = if raw.get().starts_with('[') {
        let pair: Vec<f64> = serde_json::from_str(raw.get()).map_err(|_| bad())?;
        match pair.as_slice() {
            [start, end] => (*start, *end),
            _ => return Err(bad()),
        }
    } else {
        let text = string_field(Some(raw), P)?.ok_or_else(bad)?;
        let (start, end) = text.split_once(',').ok_or_else(bad)?;
        (
            start.trim().parse::<f64>().map_err(|_| bad())?,
            end.trim().parse::<f64>().map_err(|_| bad())?,
        )
    };
    if !(start.is_finite() && end.is_finite() && 0.0 <= start && start < end && end <= 3600.0) {
        return Err(bad());
    }
    // In range 0..=3600 s, so the milliseconds fit a u32 exactly.
    let ms = |s: f64| (s * 1000.0).round() as u32;
    Ok(Some(Timestamps { start_ms: ms(start), end_ms: ms(end) }))
}

#[cfg(test)]
mod tests;
