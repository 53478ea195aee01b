//! Client-facing request shapes, decoded with precise errors.
//!
//! Bodies are decoded in two steps. First the JSON object is split into its known fields as
//! borrowed raw JSON ([`DedicatedBody`], [`ChatBody`]): unknown fields are ignored, a duplicate
//! known field or a body that is not an object is an error. Then each field is read with the
//! type it must have, so a wrong type is an error that names the field (`param`) and says what
//! to send. Strings are borrowed from the request body wherever JSON escapes allow it, so a
//! 10 MB base64 image is never copied before it is decoded: decoding writes the one copy of
//! the media the gateway makes.

mod media;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::Error;

pub use media::{decode_image, decode_video, Limits};

/// The JSON body of a dedicated endpoint (`/v1/images/*`, `/v1/videos/*`, `/v1/characters/*`),
/// as raw fields. Which fields an endpoint accepts is decided in [`crate::translate`].
#[derive(Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct DedicatedBody<'a> {
    /// `prompt`.
    #[serde(borrow)]
    pub prompt: Option<&'a RawValue>,
    /// `model`.
    #[serde(borrow)]
    pub model: Option<&'a RawValue>,
    /// `image`: base64 or a `data:image/...;base64,` URI.
    #[serde(borrow)]
    pub image: Option<&'a RawValue>,
    /// `video`: base64, a data URI, or an http(s) URL.
    #[serde(borrow)]
    pub video: Option<&'a RawValue>,
    /// `remix_target_id`.
    #[serde(borrow)]
    pub remix_target_id: Option<&'a RawValue>,
    /// `style`.
    #[serde(borrow)]
    pub style: Option<&'a RawValue>,
    /// `timestamps`: `"start,end"` seconds.
    #[serde(borrow)]
    pub timestamps: Option<&'a RawValue>,
    /// `stream`.
    #[serde(borrow)]
    pub stream: Option<&'a RawValue>,
    /// `async_mode`.
    #[serde(borrow)]
    pub async_mode: Option<&'a RawValue>,
}

/// The JSON body of `/v1/chat/completions`, as raw fields.
#[derive(Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct ChatBody<'a> {
    /// `model`.
    #[serde(borrow)]
    pub model: Option<&'a RawValue>,
    /// `messages`.
    #[serde(borrow)]
    pub messages: Option<&'a RawValue>,
    /// `stream`.
    #[serde(borrow)]
    pub stream: Option<&'a RawValue>,
    /// `async_mode` (our extension: the chat face can answer with a task handle too).
    #[serde(borrow)]
    pub async_mode: Option<&'a RawValue>,
    /// Top-level `image`.
    #[serde(borrow)]
    pub image: Option<&'a RawValue>,
    /// Top-level `video`.
    #[serde(borrow)]
    pub video: Option<&'a RawValue>,
    /// Top-level `remix_target_id`.
    #[serde(borrow)]
    pub remix_target_id: Option<&'a RawValue>,
}

/// One message of `messages`: only `content` is read (the last message's role is ignored).
#[derive(Debug, Default, Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

/// One part of a multimodal `content` array.
#[derive(Debug, Default, Deserialize)]
struct RawPart<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    image_url: Option<&'a RawValue>,
    #[serde(borrow)]
    video_url: Option<&'a RawValue>,
}

/// `{"url": ...}` inside an `image_url` or `video_url` part.
#[derive(Debug, Default, Deserialize)]
struct RawUrl<'a> {
    #[serde(borrow)]
    url: Option<&'a RawValue>,
}

/// The content of the last chat message, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChatContent<'a> {
    /// The prompt: the string content, or the last text part.
    pub prompt: Option<Cow<'a, str>>,
    /// The first text part that contains a remix id, if the content had parts.
    pub remix_source: Option<Cow<'a, str>>,
    /// The last `image_url` part's URL.
    pub image_url: Option<Cow<'a, str>>,
    /// The last `video_url` part's URL.
    pub video_url: Option<Cow<'a, str>>,
}

/// Splits a body into the known fields of `T`; anything but a JSON object is an error.
pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|err| {
        let detail =
            if err.is_data() && body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                "expected a JSON object".to_owned()
            } else {
                err.to_string()
            };
        Error::MalformedJson { detail }
    })
}

// === typed field access ===

/// A string field; `null` and absent are `None`. Borrows unless the JSON string has escapes.
pub fn string_field<'a>(
    raw: Option<&'a RawValue>,
    param: &'static str,
) -> Result<Option<Cow<'a, str>>, Error> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    if !text.starts_with('"') {
        return Err(Error::invalid(
            param,
            format!("{param} must be a string, not {}", json_kind(text)),
        ));
    }
    match serde_json::from_str::<&'a str>(text) {
        Ok(s) => Ok(Some(Cow::Borrowed(s))),
        Err(_) => serde_json::from_str::<String>(text)
            .map(|s| Some(Cow::Owned(s)))
            .map_err(|e| Error::invalid(param, format!("{param} is not a valid string: {e}"))),
    }
}

/// A boolean field; `null` and absent are `false`.
pub fn bool_field(raw: Option<&RawValue>, param: &'static str) -> Result<bool, Error> {
    match raw.map(RawValue::get) {
        None | Some("null") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Error::invalid(
            param,
            format!("{param} must be true or false, not {}", json_kind(other)),
        )),
    }
}

/// The JSON type of a raw value, in words, for error messages.
fn json_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Reads the content of the last message of `messages` (sora-backend.md 6.6).
///
/// A string content is the prompt. An array is read part by part, in order: the last `text`
/// part wins as the prompt, the first text part containing a remix id is kept for remix
/// detection, the last `image_url` and `video_url` parts are kept. Parts of other types are
/// ignored (OpenAI adds part types over time); a part that is not an object, or a known part
/// with the wrong shape, is an error.
pub fn chat_content<'a>(
    messages: Option<&'a RawValue>,
    contains_remix_id: impl Fn(&str) -> bool,
) -> Result<ChatContent<'a>, Error> {
    const P: &str = "messages";
    let raw = match messages {
        Some(raw) if raw.get() != "null" => raw,
        _ => return Err(Error::missing(P)),
    };
    let list: Vec<&'a RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| Error::invalid(P, "messages must be an array of message objects"))?;
    let last = list.last().ok_or_else(|| Error::invalid(P, "messages must not be empty"))?;
    let message: RawMessage<'a> = serde_json::from_str(last.get()).map_err(|_| {
        Error::invalid(P, "the last message must be an object with role and content")
    })?;
    let content = match message.content {
        Some(c) if c.get() != "null" => c,
        _ => return Err(Error::invalid(P, "the last message has no content")),
    };
    let mut out = ChatContent::default();
    match content.get().as_bytes().first() {
        Some(b'"') => out.prompt = string_field(Some(content), P)?,
        Some(b'[') => {
            let parts: Vec<&'a RawValue> = serde_json::from_str(content.get())
                .map_err(|e| Error::invalid(P, format!("Invalid content format: {e}")))?;
            for (i, part) in parts.into_iter().enumerate() {
                read_part(&mut out, i, part, &contains_remix_id)?;
            }
        }
        _ => {
            return Err(Error::invalid(
                P,
                "Invalid content format: content must be a string or an array of content parts",
            ))
        }
    }
    Ok(out)
}

fn read_part<'a>(
    out: &mut ChatContent<'a>,
    index: usize,
    part: &'a RawValue,
    contains_remix_id: &impl Fn(&str) -> bool,
) -> Result<(), Error> {
    const P: &str = "messages";
    let bad = |what: &str| Error::invalid(P, format!("content part {index}: {what}"));
    let part: RawPart<'a> =
        serde_json::from_str(part.get()).map_err(|_| bad("must be an object with a \"type\""))?;
    let kind = string_field(part.kind, P).map_err(|_| bad("\"type\" must be a string"))?;
    match kind.as_deref() {
        Some("text") => {
            let text = string_field(part.text, P)
                .map_err(|_| bad("\"text\" must be a string"))?
                .ok_or_else(|| bad("a text part needs \"text\""))?;
            if out.remix_source.is_none() && contains_remix_id(&text) {
                out.remix_source = Some(text.clone());
            }
            out.prompt = Some(text);
        }
        Some("image_url") => {
            out.image_url = Some(part_url(part.image_url, "image_url").map_err(|e| bad(&e))?)
        }
        Some("video_url") => {
            out.video_url = Some(part_url(part.video_url, "video_url").map_err(|e| bad(&e))?)
        }
        Some(_) => {}
        None => return Err(bad("must have a \"type\"")),
    }
    Ok(())
}

/// `image_url`/`video_url` as `{"url": "..."}` or, as some clients send it, a bare string.
fn part_url<'a>(raw: Option<&'a RawValue>, name: &'static str) -> Result<Cow<'a, str>, String> {
    let article = if name.starts_with('i') { "an" } else { "a" };
    let need = || format!("{article} {name} part needs {{\"url\": \"...\"}}");
    let raw = raw.ok_or_else(need)?;
    if raw.get().starts_with('"') {
        return string_field(Some(raw), name).map_err(|e| e.message())?.ok_or_else(need);
    }
    let obj: RawUrl<'a> = serde_json::from_str(raw.get()).map_err(|_| need())?;
    string_field(obj.url, name).map_err(|_| need())?.ok_or_else(need)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(json: &str) -> Result<ChatContent<'_>, Error> {
        let body: ChatBody<'_> = decode_body(json.as_bytes())?;
        chat_content(body.messages, |t| t.contains("s_"))
    }

    #[test]
    fn body_must_be_an_object() {
        for bad in ["[]", "1", "\"x\"", "null", " [1]"] {
            let err = decode_body::<ChatBody<'_>>(bad.as_bytes()).unwrap_err();
            assert_eq!(
                err,
                Error::MalformedJson { detail: "expected a JSON object".into() },
                "{bad}"
            );
        }
        for bad in ["", "{", "{\"model\":}", "{\"a\":1}x", "\u{0}"] {
            let err = decode_body::<ChatBody<'_>>(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::MalformedJson { .. }), "{bad}: {err:?}");
        }
    }

    #[test]
    fn duplicate_known_fields_are_rejected_unknown_ignored() {
        let err = decode_body::<ChatBody<'_>>(br#"{"model":"a","model":"b"}"#).unwrap_err();
        assert!(err.message().contains("duplicate field `model`"), "{err}");
        assert!(decode_body::<ChatBody<'_>>(br#"{"temperature":1,"n":[1,{}]}"#).is_ok());
    }

    #[test]
    fn typed_fields_name_the_param() {
        let body: DedicatedBody<'_> =
            decode_body(br#"{"prompt":5,"stream":"yes","model":null,"style":"a\nb"}"#).unwrap();
        let err = string_field(body.prompt, "prompt").unwrap_err();
        assert_eq!(
            (err.param(), err.message().as_str()),
            (Some("prompt"), "prompt must be a string, not a number")
        );
        let err = bool_field(body.stream, "stream").unwrap_err();
        assert_eq!(err.message(), "stream must be true or false, not a string");
        assert_eq!(string_field(body.model, "model").unwrap(), None);
        assert_eq!(string_field(body.style, "style").unwrap().as_deref(), Some("a\nb"));
        assert!(!bool_field(None, "stream").unwrap());
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let body: DedicatedBody<'_> = decode_body(br#"{"image":"QUJD"}"#).unwrap();
        assert!(matches!(string_field(body.image, "image").unwrap(), Some(Cow::Borrowed("QUJD"))));
    }

    #[test]
    fn string_content_is_the_prompt() {
        let c = chat(
            r#"{"messages":[{"role":"system","content":"x"},{"role":"user","content":"a cat"}]}"#,
        )
        .unwrap();
        assert_eq!(c.prompt.as_deref(), Some("a cat"));
    }

    #[test]
    fn parts_last_text_wins_first_remix_text_kept() {
        let c = chat(
            r#"{"messages":[{"role":"user","content":[
                {"type":"text","text":"see s_1"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},
                {"type":"text","text":"second s_2"},
                {"type":"text","text":"last"},
                {"type":"input_audio","input_audio":{}},
                {"type":"video_url","video_url":"https://example.com/v.mp4"}
            ]}]}"#,
        )
        .unwrap();
        assert_eq!(c.prompt.as_deref(), Some("last"));
        assert_eq!(c.remix_source.as_deref(), Some("see s_1"));
        assert_eq!(c.image_url.as_deref(), Some("data:image/png;base64,AAAA"));
        assert_eq!(c.video_url.as_deref(), Some("https://example.com/v.mp4"));
    }

    #[test]
    fn broken_messages_are_precise() {
        let cases = [
            (r#"{}"#, "messages is required"),
            (r#"{"messages":null}"#, "messages is required"),
            (r#"{"messages":[]}"#, "messages must not be empty"),
            (r#"{"messages":{}}"#, "messages must be an array of message objects"),
            (r#"{"messages":["hi"]}"#, "the last message must be an object with role and content"),
            (r#"{"messages":[{"role":"user"}]}"#, "the last message has no content"),
            (
                r#"{"messages":[{"content":5}]}"#,
                "Invalid content format: content must be a string or an array of content parts",
            ),
            (
                r#"{"messages":[{"content":[1]}]}"#,
                "content part 0: must be an object with a \"type\"",
            ),
            (
                r#"{"messages":[{"content":[{"text":"x"}]}]}"#,
                "content part 0: must have a \"type\"",
            ),
            (
                r#"{"messages":[{"content":[{"type":"text","text":3}]}]}"#,
                "content part 0: \"text\" must be a string",
            ),
            (
                r#"{"messages":[{"content":[{"type":"text"}]}]}"#,
                "content part 0: a text part needs \"text\"",
            ),
            (
                r#"{"messages":[{"content":[{"type":"image_url","image_url":{}}]}]}"#,
                "content part 0: an image_url part needs {\"url\": \"...\"}",
            ),
            (
                r#"{"messages":[{"content":[{"type":"video_url","video_url":7}]}]}"#,
                "content part 0: a video_url part needs {\"url\": \"...\"}",
            ),
        ];
        for (json, message) in cases {
            let err = chat(json).unwrap_err();
            assert_eq!(
                (err.param(), err.message().as_str()),
                (Some("messages"), message),
                "{json}"
            );
        }
    }
}
