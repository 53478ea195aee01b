//! Videos (2.4, 2.5): create (plain, image-to-video, remix, storyboard, extension), then
//! progress from `pending/v2` and the result from the drafts.
//!
//! Every create uses the chosen model's upstream model, size and `n_frames` (B8).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::config::UpstreamConfig;
use super::decode::{json, json_value, progress_percent, DecodeError, Lenient};
use super::headers::{
    app, app_sentinel, backend, create, encode, json_body, request, Auth, SentinelToken,
};
use super::http::{Method, UpstreamReply, UpstreamRequest};
use crate::catalog::{Style, UpstreamModel, VideoSpec};
use crate::prompt::{GenerationId, RemixId, Storyboard};

/// The upstream `model` value of a video spec: the configured standard model for `sy_8`
/// (`sy_8` or a dated id such as `sy_8_20251208`), `sy_ore` for Pro.
pub fn upstream_model<'a>(cfg: &'a UpstreamConfig, video: &VideoSpec) -> &'a str {
    match video.upstream_model {
        UpstreamModel::Sy8 => &cfg.standard_video_model,
        UpstreamModel::SyOre => UpstreamModel::SyOre.as_str(),
    }
}

/// What an `nf/create` video starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoSource<'a> {
    /// Text only.
    Text,
    /// A first frame uploaded with [`super::upload_image`].
    Image {
        /// The media id of the upload.
        upload_id: &'a str,
    },
    /// A published video to continue.
    Remix {
        /// The share id.
        target: &'a RemixId,
    },
}

#[derive(Serialize)]
struct UploadItem<'a> {
    kind: &'static str,
    upload_id: &'a str,
}

fn upload_items(upload_id: Option<&str>) -> Vec<UploadItem<'_>> {
    upload_id.map(|upload_id| UploadItem { kind: "upload", upload_id }).into_iter().collect()
}

#[derive(Serialize)]
struct CreateBody<'a> {
    kind: &'static str,
    prompt: &'a str,
    orientation: &'static str,
    size: &'static str,
    n_frames: u32,
    model: &'a str,
    inpaint_items: Vec<UploadItem<'a>>,
    style_id: Option<&'a str>,
}

#[derive(Serialize)]
struct RemixBody<'a> {
    kind: &'static str,
    prompt: &'a str,
    inpaint_items: [(); 0],
    remix_target_id: &'a str,
    cameo_ids: [(); 0],
    cameo_replacements: serde_json::Map<String, serde_json::Value>,
    model: &'a str,
    orientation: &'static str,
    size: &'static str,
    n_frames: u32,
    style_id: Option<&'a str>,
}

/// `POST /nf/create`: creates a video task (P-CREATE: the browser header set, the session
/// cookie when the token has one, the short timeout).
///
/// Plain and image-to-video send `kind, prompt, orientation, size, n_frames, model,
/// inpaint_items, style_id`; remix sends PY's remix body plus `size` (B8: PY drops it and
/// hard-codes `sy_8`). Decode the reply with [`super::decode_task_id`].
pub fn nf_create(
    cfg: &UpstreamConfig,
    auth: &Auth,
    sentinel: &SentinelToken,
    video: &VideoSpec,
    prompt: &str,
    source: VideoSource<'_>,
    style: Option<&Style>,
) -> UpstreamRequest {
    let model = upstream_model(cfg, video);
    let style_id = style.map(|s| s.id);
    let (orientation, size) = (video.orientation.as_str(), video.size.as_str());
    let body = match source {
        VideoSource::Text | VideoSource::Image { .. } => json_body(&CreateBody {
            kind: "video",
            prompt,
            orientation,
            size,
            n_frames: video.n_frames(),
            model,
            inpaint_items: upload_items(match source {
                VideoSource::Image { upload_id } => Some(upload_id),
                _ => None,
            }),
            style_id,
        }),
        VideoSource::Remix { target } => json_body(&RemixBody {
            kind: "video",
            prompt,
            inpaint_items: [],
            remix_target_id: target.as_str(),
            cameo_ids: [],
            cameo_replacements: serde_json::Map::new(),
            model,
            orientation,
            size,
            n_frames: video.n_frames(),
            style_id,
        }),
    };
    request(
        Method::Post,
        backend(cfg, "/nf/create"),
        create(cfg, auth, sentinel),
        body,
        cfg.short_timeout_ms,
        auth.proxy.clone(),
    )
}

#[derive(Serialize)]
struct StoryboardBody<'a> {
    kind: &'static str,
    prompt: &'a str,
    title: &'static str,
    orientation: &'static str,
    size: &'static str,
    n_frames: u32,
    storyboard_id: Option<()>,
    inpaint_items: Vec<UploadItem<'a>>,
    remix_target_id: Option<()>,
    model: &'a str,
    metadata: Option<()>,
    style_id: Option<&'a str>,
    cameo_ids: Option<()>,
    cameo_replacements: Option<()>,
    audio_caption: Option<()>,
    audio_transcript: Option<()>,
    video_caption: Option<()>,
}

/// `POST /nf/create/storyboard`: creates a storyboard video (P-APP with a sentinel).
///
/// The body of 2.4 with the chosen model, size and `n_frames` (B8), the prompt rendered by
/// [`Storyboard::render_upstream`], and an upload item when `upload_id` (a first frame) is
/// given. Decode the reply with [`super::decode_task_id`].
pub fn nf_create_storyboard(
    cfg: &UpstreamConfig,
    auth: &Auth,
    sentinel: &SentinelToken,
    video: &VideoSpec,
    storyboard: &Storyboard,
    upload_id: Option<&str>,
    style: Option<&Style>,
) -> UpstreamRequest {
    let prompt = storyboard.render_upstream();
    let body = StoryboardBody {
        kind: "video",
        prompt: &prompt,
        title: "Draft your video",
        orientation: video.orientation.as_str(),
        size: video.size.as_str(),
        n_frames: video.n_frames(),
        storyboard_id: None,
        inpaint_items: upload_items(upload_id),
        remix_target_id: None,
        model: upstream_model(cfg, video),
        metadata: None,
        style_id: style.map(|s| s.id),
        cameo_ids: None,
        cameo_replacements: None,
        audio_caption: None,
        audio_transcript: None,
        video_caption: None,
    };
    request(
        Method::Post,
        backend(cfg, "/nf/create/storyboard"),
        app_sentinel(cfg, auth, sentinel),
        json_body(&body),
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

/// How much a `long_video_extension` adds: upstream accepts only 10 or 15 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionDuration {
    /// 10 seconds.
    Ten,
    /// 15 seconds.
    Fifteen,
}

impl ExtensionDuration {
    /// From seconds; `None` for anything but 10 and 15.
    pub fn from_seconds(seconds: u16) -> Option<Self> {
        match seconds {
            10 => Some(ExtensionDuration::Ten),
            15 => Some(ExtensionDuration::Fifteen),
            _ => None,
        }
    }

    /// The seconds.
    pub fn seconds(self) -> u16 {
        match self {
            ExtensionDuration::Ten => 10,
            ExtensionDuration::Fifteen => 15,
        }
    }
}

#[derive(Serialize)]
struct ExtensionBody<'a> {
    user_prompt: &'a str,
    extension_duration_s: u16,
    enable_rewrite: bool,
}

/// `POST /project_y/profile/drafts/{generation}/long_video_extension`: extends a generation
/// (P-APP with a sentinel). The reply's `id` is a new video task ([`super::decode_task_id`]).
pub fn long_video_extension(
    cfg: &UpstreamConfig,
    auth: &Auth,
    sentinel: &SentinelToken,
    generation: &GenerationId,
    prompt: &str,
    duration: ExtensionDuration,
) -> UpstreamRequest {
    let body = ExtensionBody {
        user_prompt: prompt,
        extension_duration_s: duration.seconds(),
        enable_rewrite: true,
    };
    let path =
        format!("/project_y/profile/drafts/{}/long_video_extension", encode(generation.as_str()));
    request(
        Method::Post,
        backend(cfg, &path),
        app_sentinel(cfg, auth, sentinel),
        json_body(&body),
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

fn app_get(cfg: &UpstreamConfig, auth: &Auth, path: &str) -> UpstreamRequest {
    request(
        Method::Get,
        backend(cfg, path),
        app(cfg, auth, "application/json"),
        Bytes::new(),
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

/// `GET /nf/pending/v2`: the account's unfinished video tasks (P-APP, no sentinel).
pub fn pending_v2(cfg: &UpstreamConfig, auth: &Auth) -> UpstreamRequest {
    app_get(cfg, auth, "/nf/pending/v2")
}

fn drafts_query(limit: u32, cursor: Option<&str>) -> String {
    match cursor.filter(|c| !c.is_empty()) {
        Some(cursor) => format!("?limit={limit}&cursor={}", encode(cursor)),
        None => format!("?limit={limit}"),
    }
}

/// `GET /project_y/profile/drafts/v2?limit=<limit>[&cursor=<cursor>]`: the newest drafts, or
/// the page after `cursor` (P-APP). Try this first; fall back to [`drafts`] on 404 or 410
/// (decisions 14). Decode with [`decode_drafts`].
pub fn drafts_v2(
    cfg: &UpstreamConfig,
    auth: &Auth,
    limit: u32,
    cursor: Option<&str>,
) -> UpstreamRequest {
    app_get(cfg, auth, &format!("/project_y/profile/drafts/v2{}", drafts_query(limit, cursor)))
}

/// `GET /project_y/profile/drafts?limit=<limit>[&cursor=<cursor>]`: the legacy drafts list
/// (PY, GO), same reply shape as [`drafts_v2`].
pub fn drafts(
    cfg: &UpstreamConfig,
    auth: &Auth,
    limit: u32,
    cursor: Option<&str>,
) -> UpstreamRequest {
    app_get(cfg, auth, &format!("/project_y/profile/drafts{}", drafts_query(limit, cursor)))
}

// === Decoding ===

/// Where a video task stands in `pending/v2`.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoPending {
    /// Not listed: not yet visible, or finished (look in the drafts), or the reply was not a
    /// list (PY treats that as `[]`).
    Absent,
    /// Listed and not failed (`preprocessing`, `queued`, `running`, `processing`, ...).
    InProgress {
        /// Progress in percent (0–100), `None` while upstream sends `null`.
        progress_pct: Option<f64>,
    },
    /// Listed with status `failed` or `error` (GO's rule; PY ignores it).
    Failed {
        /// `failure_reason`, if any.
        reason: Option<String>,
    },
}

#[derive(Deserialize)]
struct PendingItem {
    #[serde(default)]
    id: Lenient<String>,
    #[serde(default)]
    status: Lenient<String>,
    #[serde(default)]
    progress_pct: Lenient<f64>,
    #[serde(default)]
    failure_reason: Lenient<String>,
}

/// Finds video task `task_id` in a `pending/v2` reply (a bare JSON array).
pub fn decode_pending(reply: &UpstreamReply, task_id: &str) -> Result<VideoPending, DecodeError> {
    let serde_json::Value::Array(items) = json_value(reply)? else {
        return Ok(VideoPending::Absent);
    };
    let found = items
        .into_iter()
        // An object whose `id` is another string cannot match: skip it undecoded (the
        // account's other tasks are most of the list). Anything else decodes as before.
        .filter(|v| v.get("id").and_then(serde_json::Value::as_str).is_none_or(|id| id == task_id))
        .filter_map(|v| serde_json::from_value::<PendingItem>(v).ok())
        .find(|item| item.id.0.as_deref() == Some(task_id));
    Ok(match found {
        None => VideoPending::Absent,
        Some(item) => match item.status.0.as_deref() {
            Some("failed" | "error") => {
                VideoPending::Failed { reason: item.failure_reason.non_empty() }
            }
            _ => VideoPending::InProgress { progress_pct: progress_percent(item.progress_pct.0) },
        },
    })
}

/// One page of drafts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DraftsPage {
    /// The drafts on this page, newest first (elements that are not objects are skipped).
    pub items: Vec<Draft>,
    /// The cursor of the next page; `None` (or absent, or empty) on the last page.
    pub cursor: Option<String>,
}

/// A draft, with the fields the result lookup reads (empty strings are `None`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Draft {
    /// `id`: the generation id (`gen_…`).
    pub id: Option<String>,
    /// `task_id`: the task that produced it.
    pub task_id: Option<String>,
    /// `kind`: `sora_draft`, or `sora_content_violation`.
    pub kind: Option<String>,
    /// `url`: the watermarked video.
    pub url: Option<String>,
    /// `downloadable_url`: preferred over `url`.
    pub downloadable_url: Option<String>,
    /// `reason_str`: a violation reason.
    pub reason_str: Option<String>,
    /// `markdown_reason_str`: a violation reason (markdown).
    pub markdown_reason_str: Option<String>,
    /// `error_reason` (SHAKE) or `reason` (VIDENX): a reason text, read only as a fallback.
    pub other_reason: Option<String>,
    /// `generation_id`: GO's generation id (fallback for `id`).
    pub generation_id: Option<String>,
    /// `download_urls.no_watermark`: a watermark-free URL, when upstream offers one.
    pub no_watermark_url: Option<String>,
    /// `prompt`: the prompt the video was made from.
    pub prompt: Option<String>,
    /// `created_at` as unix milliseconds (seconds, milliseconds or RFC 3339 upstream).
    pub created_ms: Option<u64>,
}

/// What the drafts say about a video task (2.5, decisions 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftOutcome {
    /// No draft for the task on this page: keep polling (drafts lag pending by seconds), or
    /// look at the next page.
    NotYet,
    /// The video is ready.
    Ready {
        /// `downloadable_url`, falling back to `url`.
        url: String,
        /// The draft's `id`, falling back to its `generation_id` (for posts and extensions).
        generation_id: Option<String>,
        /// `download_urls.no_watermark`, if upstream offers one.
        no_watermark_url: Option<String>,
    },
    /// A content violation: `kind == "sora_content_violation"`, or a non-empty `reason_str`
    /// or `markdown_reason_str`. Final; never resubmitted, never held against the token.
    Violation {
        /// The first of `reason_str`, `markdown_reason_str`, `error_reason`/`reason`.
        reason: Option<String>,
    },
    /// The draft exists without any URL and without a violation sign: the file is not ready
    /// yet. Not a violation (unlike PY): keep polling until the deadline, then fail with
    /// "draft has no URL" (decisions 14).
    NoUrl,
}

impl Draft {
    /// The outcome this draft means for its task.
    pub fn outcome(&self) -> DraftOutcome {
        let violation = self.kind.as_deref() == Some("sora_content_violation")
            || self.reason_str.is_some()
            || self.markdown_reason_str.is_some();
        if violation {
            let reason = self
                .reason_str
                .clone()
                .or_else(|| self.markdown_reason_str.clone())
                .or_else(|| self.other_reason.clone());
            return DraftOutcome::Violation { reason };
        }
        match self.downloadable_url.clone().or_else(|| self.url.clone()) {
            Some(url) => DraftOutcome::Ready {
                url,
                generation_id: self.id.clone().or_else(|| self.generation_id.clone()),
                no_watermark_url: self.no_watermark_url.clone(),
            },
            None => DraftOutcome::NoUrl,
        }
    }
}

impl DraftsPage {
    /// The outcome for `task_id` on this page (the first draft whose `task_id` matches).
    pub fn find(&self, task_id: &str) -> DraftOutcome {
        self.items
            .iter()
            .find(|d| d.task_id.as_deref() == Some(task_id))
            .map_or(DraftOutcome::NotYet, Draft::outcome)
    }
}

#[derive(Deserialize)]
struct DraftsReply {
    #[serde(default)]
    items: Lenient<Vec<Lenient<DraftItem>>>,
    #[serde(default)]
    cursor: Lenient<String>,
}

#[derive(Deserialize)]
struct DraftItem {
    #[serde(default)]
    id: Lenient<String>,
    #[serde(default)]
    task_id: Lenient<String>,
    #[serde(default)]
    kind: Lenient<String>,
    #[serde(default)]
    url: Lenient<String>,
    #[serde(default)]
    downloadable_url: Lenient<String>,
    #[serde(default)]
    reason_str: Lenient<String>,
    #[serde(default)]
    markdown_reason_str: Lenient<String>,
    #[serde(default)]
    error_reason: Lenient<String>,
    #[serde(default)]
    reason: Lenient<String>,
    #[serde(default)]
    generation_id: Lenient<String>,
    #[serde(default)]
    download_urls: Lenient<DownloadUrls>,
    #[serde(default)]
    prompt: Lenient<String>,
    #[serde(default)]
    created_at: Lenient<serde_json::Value>,
}

#[derive(Deserialize)]
struct DownloadUrls {
    #[serde(default)]
    no_watermark: Lenient<String>,
}

/// Decodes a drafts page (`drafts/v2` or legacy `drafts`; both are `{items, cursor}`).
pub fn decode_drafts(reply: &UpstreamReply) -> Result<DraftsPage, DecodeError> {
    let r: DraftsReply = json(reply, "an object")?;
    let items = r.items.0.ok_or(DecodeError::Missing { field: "items" })?;
    let items = items
        .into_iter()
        .filter_map(Lenient::into_inner)
        .map(|d| Draft {
            id: d.id.non_empty(),
            task_id: d.task_id.non_empty(),
            kind: d.kind.non_empty(),
            url: d.url.non_empty(),
            downloadable_url: d.downloadable_url.non_empty(),
            reason_str: d.reason_str.non_empty(),
            markdown_reason_str: d.markdown_reason_str.non_empty(),
            other_reason: d.error_reason.non_empty().or_else(|| d.reason.non_empty()),
            generation_id: d.generation_id.non_empty(),
            no_watermark_url: d.download_urls.into_inner().and_then(|u| u.no_watermark.non_empty()),
            prompt: d.prompt.non_empty(),
            created_ms: super::listing::timestamp_ms(d.created_at.into_inner()),
        })
        .collect();
    Ok(DraftsPage { items, cursor: r.cursor.non_empty() })
}

#[cfg(test)]
mod tests;
