//! Characters, also called cameos (2.8): upload a clip (or pick a generation), poll the cameo,
//! upload its avatar, finalize, make it public, and delete it again.

use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

use super::config::UpstreamConfig;
use super::decode::{json, DecodeError, Lenient};
use super::headers::{app, backend, encode, json_body, request, Auth};
use super::http::{Method, UpstreamReply, UpstreamRequest};
use super::multipart::Multipart;
use crate::prompt::GenerationId;
use crate::request::{Media, Timestamps};

/// The clip range PY uses when the client gives none: seconds 0 to 3.
pub const DEFAULT_TIMESTAMPS: Timestamps = Timestamps { start_ms: 0, end_ms: 3000 };

/// Milliseconds as upstream seconds: an integer when whole, else a decimal.
#[derive(Clone, Copy)]
struct Seconds(u32);

impl Seconds {
    fn text(self) -> String {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            whole.to_string()
        } else {
            format!("{whole}.{frac:03}").trim_end_matches('0').to_owned()
        }
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_u32(self.0 / 1000)
        } else {
            s.serialize_f64(f64::from(self.0) / 1000.0)
        }
    }
}

fn multipart_post(
    cfg: &UpstreamConfig,
    auth: &Auth,
    path: &str,
    form: Multipart,
) -> UpstreamRequest {
    let headers = app(cfg, auth, &form.content_type());
    request(
        Method::Post,
        backend(cfg, path),
        headers,
        form.finish(),
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

fn json_call(
    cfg: &UpstreamConfig,
    auth: &Auth,
    method: Method,
    path: &str,
    body: Bytes,
) -> UpstreamRequest {
    request(
        method,
        backend(cfg, path),
        app(cfg, auth, "application/json"),
        body,
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

/// `POST /characters/upload`: a cameo from a video clip (P-APP, multipart).
///
/// Parts: `file` named `video.<ext>` with the video's real content type, then `timestamps`
/// as text `start,end` in seconds (`0,3` by default; fractions as decimals, `1.5,4`). Decode
/// the reply with [`super::decode_id`] (the cameo id).
pub fn characters_upload(
    cfg: &UpstreamConfig,
    auth: &Auth,
    video: &Media,
    timestamps: Option<Timestamps>,
    boundary_seed: u64,
) -> UpstreamRequest {
    let ts = timestamps.unwrap_or(DEFAULT_TIMESTAMPS);
    let mut form = Multipart::new(boundary_seed);
    form.file(
        "file",
        &format!("video.{}", video.format.extension()),
        video.format.mime(),
        &video.bytes,
    )
    .text("timestamps", &format!("{},{}", Seconds(ts.start_ms).text(), Seconds(ts.end_ms).text()));
    multipart_post(cfg, auth, "/characters/upload", form)
}

#[derive(Serialize)]
struct FromGenerationBody<'a> {
    generation_id: &'a str,
    character_id: Option<()>,
    timestamps: [Seconds; 2],
}

/// `POST /characters/from-generation`: a cameo from an earlier generation (P-APP).
/// Body `{"generation_id","character_id":null,"timestamps":[start,end]}` in seconds. Decode
/// the reply with [`super::decode_id`] (the cameo id).
pub fn characters_from_generation(
    cfg: &UpstreamConfig,
    auth: &Auth,
    generation: &GenerationId,
    timestamps: Option<Timestamps>,
) -> UpstreamRequest {
    let ts = timestamps.unwrap_or(DEFAULT_TIMESTAMPS);
    let body = FromGenerationBody {
        generation_id: generation.as_str(),
        character_id: None,
        timestamps: [Seconds(ts.start_ms), Seconds(ts.end_ms)],
    };
    json_call(cfg, auth, Method::Post, "/characters/from-generation", json_body(&body))
}

/// `GET /project_y/cameos/in_progress/{cameo_id}`: the cameo's processing state (P-APP).
/// Decode with [`decode_cameo_progress`].
pub fn cameo_in_progress(cfg: &UpstreamConfig, auth: &Auth, cameo_id: &str) -> UpstreamRequest {
    let path = format!("/project_y/cameos/in_progress/{}", encode(cameo_id));
    json_call(cfg, auth, Method::Get, &path, Bytes::new())
}

/// What a [`file_upload`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileUseCase {
    /// `profile`: a character's avatar (file name `profile.<ext>`).
    Profile,
    /// `inpaint_safe`: a reference image (file name `image.<ext>`).
    InpaintSafe,
}

impl FileUseCase {
    /// The `use_case` value.
    pub fn as_str(self) -> &'static str {
        match self {
            FileUseCase::Profile => "profile",
            FileUseCase::InpaintSafe => "inpaint_safe",
        }
    }
}

/// `POST /project_y/file/upload`: uploads an image file (P-APP, multipart).
///
/// Parts: `file` with the image's real content type (PY: `profile.webp`, `image/webp`), then
/// `use_case`. Decode with [`decode_file_upload`] (the asset pointer).
pub fn file_upload(
    cfg: &UpstreamConfig,
    auth: &Auth,
    image: &Media,
    use_case: FileUseCase,
    boundary_seed: u64,
) -> UpstreamRequest {
    let stem = match use_case {
        FileUseCase::Profile => "profile",
        FileUseCase::InpaintSafe => "image",
    };
    let mut form = Multipart::new(boundary_seed);
    form.file(
        "file",
        &format!("{stem}.{}", image.format.extension()),
        image.format.mime(),
        &image.bytes,
    )
    .text("use_case", use_case.as_str());
    multipart_post(cfg, auth, "/project_y/file/upload", form)
}

#[derive(Serialize)]
struct FinalizeBody<'a> {
    cameo_id: &'a str,
    username: &'a str,
    display_name: &'a str,
    profile_asset_pointer: &'a str,
    instruction_set: Option<()>,
    safety_instruction_set: Option<()>,
}

/// `POST /characters/finalize`: creates the character from a processed cameo (P-APP), with
/// null instruction sets as PY sends. Decode with [`decode_finalize`] (the character id).
pub fn characters_finalize(
    cfg: &UpstreamConfig,
    auth: &Auth,
    cameo_id: &str,
    username: &str,
    display_name: &str,
    profile_asset_pointer: &str,
) -> UpstreamRequest {
    let body = FinalizeBody {
        cameo_id,
        username,
        display_name,
        profile_asset_pointer,
        instruction_set: None,
        safety_instruction_set: None,
    };
    json_call(cfg, auth, Method::Post, "/characters/finalize", json_body(&body))
}

/// `POST /project_y/cameos/by_id/{cameo_id}/update_v2` with `{"visibility":"public"}`
/// (P-APP). Success is any 2xx; the body is not read.
pub fn cameo_update_v2(cfg: &UpstreamConfig, auth: &Auth, cameo_id: &str) -> UpstreamRequest {
    let path = format!("/project_y/cameos/by_id/{}/update_v2", encode(cameo_id));
    json_call(cfg, auth, Method::Post, &path, Bytes::from_static(br#"{"visibility":"public"}"#))
}

/// `POST /project_y/profile/username/check` with `{"username": …}` (P-APP, endpoint 7).
/// Decode with [`decode_username_available`]. A finalize whose answer was lost is known to
/// have happened when the username it claimed is no longer available.
pub fn username_check(cfg: &UpstreamConfig, auth: &Auth, username: &str) -> UpstreamRequest {
    let body = json_body(&serde_json::json!({ "username": username }));
    json_call(cfg, auth, Method::Post, "/project_y/profile/username/check", body)
}

#[derive(Deserialize)]
struct UsernameCheckReply {
    #[serde(default)]
    available: Lenient<bool>,
}

/// `{"available": bool}` of [`username_check`].
pub fn decode_username_available(reply: &UpstreamReply) -> Result<bool, DecodeError> {
    let r: UsernameCheckReply = json(reply, "an object")?;
    r.available.into_inner().ok_or(DecodeError::Missing { field: "available" })
}

/// `DELETE /project_y/characters/{character_id}` (P-APP). Success is 200 or 204.
pub fn delete_character(cfg: &UpstreamConfig, auth: &Auth, character_id: &str) -> UpstreamRequest {
    let path = format!("/project_y/characters/{}", encode(character_id));
    json_call(cfg, auth, Method::Delete, &path, Bytes::new())
}

/// The username to finalize with (2.8): the part of `username_hint` after its last `.`
/// (`character` without a hint), then three digits. `suffix` is the caller's random number
/// in 100–999; a value outside that range is reduced into it (`suffix % 900 + 100`).
pub fn character_username(username_hint: Option<&str>, suffix: u16) -> String {
    let hint = username_hint.map(str::trim).filter(|h| !h.is_empty()).unwrap_or("character");
    let base = hint.rsplit('.').next().filter(|b| !b.is_empty()).unwrap_or("character");
    let digits = if (100..=999).contains(&suffix) { suffix } else { suffix % 900 + 100 };
    format!("{base}{digits}")
}

// === Decoding ===

/// Where a cameo's processing stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameoProgress {
    /// Still processing: keep polling.
    Processing,
    /// `status == "failed"` (or GO's `error`).
    Failed {
        /// `status_message`, if any.
        message: Option<String>,
    },
    /// Done (`status_message == "Completed"` or `status == "finalized"`) with an avatar URL.
    Ready(CameoProfile),
}

/// A processed cameo: the hints for finalizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameoProfile {
    /// `display_name_hint`.
    pub display_name_hint: Option<String>,
    /// `username_hint`, such as `prefix.name`.
    pub username_hint: Option<String>,
    /// `profile_asset_url`: the avatar to download (without auth) and re-upload.
    pub profile_asset_url: String,
    /// `instruction_set_hint`, else `instruction_set`, when it is a string.
    pub instruction_set: Option<String>,
}

impl CameoProfile {
    /// The display name to finalize with: the hint, or `Character`.
    pub fn display_name(&self) -> &str {
        self.display_name_hint.as_deref().unwrap_or("Character")
    }
}

#[derive(Deserialize)]
struct CameoReply {
    #[serde(default)]
    status: Lenient<String>,
    #[serde(default)]
    status_message: Lenient<String>,
    #[serde(default)]
    display_name_hint: Lenient<String>,
    #[serde(default)]
    username_hint: Lenient<String>,
    #[serde(default)]
    profile_asset_url: Lenient<String>,
    #[serde(default)]
    instruction_set_hint: Lenient<String>,
    #[serde(default)]
    instruction_set: Lenient<String>,
}

/// Decodes a `cameos/in_progress` reply. Done without an avatar URL counts as still
/// processing (the next step needs the URL); the caller's deadline ends that.
pub fn decode_cameo_progress(reply: &UpstreamReply) -> Result<CameoProgress, DecodeError> {
    let r: CameoReply = json(reply, "an object")?;
    let status = r.status.0.as_deref();
    if matches!(status, Some("failed" | "error")) {
        return Ok(CameoProgress::Failed { message: r.status_message.non_empty() });
    }
    let done = r.status_message.0.as_deref() == Some("Completed") || status == Some("finalized");
    Ok(match r.profile_asset_url.non_empty() {
        Some(profile_asset_url) if done => CameoProgress::Ready(CameoProfile {
            display_name_hint: r.display_name_hint.non_empty(),
            username_hint: r.username_hint.non_empty(),
            profile_asset_url,
            instruction_set: r
                .instruction_set_hint
                .non_empty()
                .or_else(|| r.instruction_set.non_empty()),
        }),
        _ => CameoProgress::Processing,
    })
}

#[derive(Deserialize)]
struct FileUploadReply {
    #[serde(default)]
    asset_pointer: Lenient<String>,
}

/// The `asset_pointer` (`sediment://file_…`) of a `file/upload` reply.
pub fn decode_file_upload(reply: &UpstreamReply) -> Result<String, DecodeError> {
    let r: FileUploadReply = json(reply, "an object")?;
    r.asset_pointer.non_empty().ok_or(DecodeError::Missing { field: "asset_pointer" })
}

#[derive(Deserialize)]
struct FinalizeReply {
    #[serde(default)]
    character: Lenient<Character>,
}

#[derive(Deserialize)]
struct Character {
    #[serde(default)]
    character_id: Lenient<String>,
}

/// The `character.character_id` of a `characters/finalize` reply.
pub fn decode_finalize(reply: &UpstreamReply) -> Result<String, DecodeError> {
    let r: FinalizeReply = json(reply, "an object")?;
    r.character
        .into_inner()
        .and_then(|c| c.character_id.non_empty())
        .ok_or(DecodeError::Missing { field: "character.character_id" })
}

#[cfg(test)]
mod tests;
