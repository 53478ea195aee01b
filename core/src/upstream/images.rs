//! Images (2.3): upload a source image, create an image task, poll `recent_tasks`.

use serde::{Deserialize, Serialize};

use super::config::UpstreamConfig;
use super::decode::{
    depth_below, json_value, progress_percent, starts_with, DecodeError, Lenient, RawFields,
    FAST_DEPTH,
};
use super::headers::{app, app_sentinel, backend, json_body, request, Auth, SentinelToken};
use super::http::{Method, UpstreamReply, UpstreamRequest};
use super::multipart::Multipart;
use crate::catalog::ImageSpec;
use crate::request::Media;

/// `POST /uploads`: uploads an image for image-to-image or image-to-video (P-APP, multipart).
///
/// Parts: `file` named `image.<ext>` with the image's real content type (PY always says
/// `image.png`), then `file_name` with the same name. `boundary_seed` picks the multipart
/// boundary. Decode the reply with [`super::decode_id`] (the media id).
pub fn upload_image(
    cfg: &UpstreamConfig,
    auth: &Auth,
    image: &Media,
    boundary_seed: u64,
) -> UpstreamRequest {
    let file_name = format!("image.{}", image.format.extension());
    let mut form = Multipart::new(boundary_seed);
    form.file("file", &file_name, image.format.mime(), &image.bytes).text("file_name", &file_name);
    let headers = app(cfg, auth, &form.content_type());
    request(
        Method::Post,
        backend(cfg, "/uploads"),
        headers,
        form.finish(),
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

#[derive(Serialize)]
struct ImageGenBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    operation: &'static str,
    prompt: &'a str,
    width: u16,
    height: u16,
    n_variants: u8,
    n_frames: u8,
    inpaint_items: Vec<ImageItem<'a>>,
}

#[derive(Serialize)]
struct ImageItem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    frame_index: u8,
    upload_media_id: &'a str,
}

/// `POST /video_gen`: creates an image task (P-APP with a sentinel).
///
/// `simple_compose` without a source image; `remix` with one inpaint item for
/// `upload_media_id` (from [`upload_image`]). Width and height come from the model's
/// [`ImageSpec`]; the prompt is sent as given (images are not style-processed). Decode the
/// reply with [`super::decode_task_id`].
pub fn image_gen(
    cfg: &UpstreamConfig,
    auth: &Auth,
    sentinel: &SentinelToken,
    prompt: &str,
    spec: &ImageSpec,
    upload_media_id: Option<&str>,
) -> UpstreamRequest {
    let body = ImageGenBody {
        kind: "image_gen",
        operation: if upload_media_id.is_some() { "remix" } else { "simple_compose" },
        prompt,
        width: spec.width,
        height: spec.height,
        n_variants: 1,
        n_frames: 1,
        inpaint_items: upload_media_id
            .map(|id| ImageItem { kind: "image", frame_index: 0, upload_media_id: id })
            .into_iter()
            .collect(),
    };
    request(
        Method::Post,
        backend(cfg, "/video_gen"),
        app_sentinel(cfg, auth, sentinel),
        json_body(&body),
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

/// `GET /v2/recent_tasks?limit=<limit>`: the account's latest image tasks (P-APP). PY uses
/// 20; a larger limit looks further back on a busy account (B24).
pub fn recent_tasks(cfg: &UpstreamConfig, auth: &Auth, limit: u32) -> UpstreamRequest {
    request(
        Method::Get,
        backend(cfg, &format!("/v2/recent_tasks?limit={limit}")),
        app(cfg, auth, "application/json"),
        bytes::Bytes::new(),
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

/// Where an image task stands, from `recent_tasks`.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageTaskStatus {
    /// Not among the returned tasks: not yet listed, or pushed out of the window (B24). Not a
    /// failure; keep polling (optionally with a larger limit).
    NotListed,
    /// `queued` (or `preprocessing`).
    Queued {
        /// Progress in percent (0–100), `None` while upstream sends `null`.
        progress_pct: Option<f64>,
    },
    /// `running`, any other non-terminal status, or `succeeded` before a URL has appeared
    /// (PY keeps polling then).
    Running {
        /// Progress in percent (0–100), `None` while upstream sends `null`.
        progress_pct: Option<f64>,
    },
    /// `succeeded` with at least one non-empty `generations[].url`.
    Succeeded {
        /// The image URLs, in upstream order, empty ones skipped.
        urls: Vec<String>,
    },
    /// `failed` (or GO's `error`): usually a moderation failure. Never resubmit (B10).
    Failed {
        /// `error_message`, else `failure_reason`: the upstream's reason for the user.
        reason: Option<String>,
    },
}

#[derive(Deserialize)]
struct RecentReply {
    #[serde(default)]
    task_responses: Lenient<Vec<Lenient<TaskResponse>>>,
}

#[derive(Deserialize)]
struct TaskResponse {
    #[serde(default)]
    id: Lenient<String>,
    #[serde(default)]
    status: Lenient<String>,
    #[serde(default)]
    progress_pct: Lenient<f64>,
    #[serde(default)]
    generations: Lenient<Vec<Lenient<Generation>>>,
    #[serde(default)]
    error_message: Lenient<String>,
    #[serde(default)]
    failure_reason: Lenient<String>,
}

#[derive(Deserialize)]
struct Generation {
    #[serde(default)]
    url: Lenient<String>,
}

// Only the polled task's entry matters. Decoding every entry through `Lenient` rebuilds its
// JSON tree at each level, and building the whole page into a `Value` first was most of the
// rest: together the gateway's largest cost per image task (BENCHMARKS.md). An object entry
// can match only if its `id` is this string, so the others are dropped unread; what is left
// decodes as before, so the result is the same.

/// The reply reduced to `{"task_responses": [the entries that may be task_id]}`, read as raw
/// values: only those entries are parsed. `None` when the body is not the plain shape
/// (not an object, `task_responses` not an array, an entry with a repeated `id`, deep
/// nesting, not JSON): [`recent_for_value`] then decides.
fn recent_for(body: &[u8], task_id: &str) -> Option<serde_json::Value> {
    #[derive(Deserialize)]
    struct IdOf<'a> {
        #[serde(borrow, default)]
        id: Option<&'a serde_json::value::RawValue>,
    }
    if !starts_with(body, b'{') || !depth_below(body, FAST_DEPTH) {
        return None;
    }
    let fields = serde_json::from_slice::<RawFields<'_>>(body).ok()?;
    let mut reduced = serde_json::Map::new();
    if let Some(raw) = fields.get("task_responses") {
        if !starts_with(raw.get().as_bytes(), b'[') {
            return None;
        }
        let entries: Vec<&serde_json::value::RawValue> = serde_json::from_str(raw.get()).ok()?;
        let mut kept = Vec::new();
        for entry in entries {
            if starts_with(entry.get().as_bytes(), b'{') {
                let id = serde_json::from_str::<IdOf<'_>>(entry.get()).ok()?.id;
                let is_it = match id {
                    Some(id) if starts_with(id.get().as_bytes(), b'"') => {
                        serde_json::from_str::<String>(id.get()).ok()? == task_id
                    }
                    _ => false,
                };
                if !is_it {
                    continue;
                }
            }
            kept.push(serde_json::from_str::<serde_json::Value>(entry.get()).ok()?);
        }
        reduced.insert("task_responses".to_owned(), serde_json::Value::Array(kept));
    }
    Some(serde_json::Value::Object(reduced))
}

/// [`recent_for`] through a whole `serde_json::Value`.
fn recent_for_value(
    reply: &UpstreamReply,
    task_id: &str,
) -> Result<serde_json::Value, DecodeError> {
    let mut value = json_value(reply)?;
    if !value.is_object() {
        return Err(DecodeError::Shape { expected: "an object" });
    }
    if let Some(serde_json::Value::Array(items)) = value.get_mut("task_responses") {
        items.retain(|item| match item {
            serde_json::Value::Object(map) => {
                map.get("id").and_then(serde_json::Value::as_str) == Some(task_id)
            }
            _ => true,
        });
    }
    Ok(value)
}

/// Finds image task `task_id` in a `recent_tasks` reply.
pub fn decode_recent_tasks(
    reply: &UpstreamReply,
    task_id: &str,
) -> Result<ImageTaskStatus, DecodeError> {
    let expected = "an object";
    if !(200..300).contains(&reply.status) {
        return Err(DecodeError::Status { status: reply.status });
    }
    let value = match recent_for(&reply.body, task_id) {
        Some(value) => value,
        None => recent_for_value(reply, task_id)?,
    };
    let r: RecentReply =
        serde_json::from_value(value).map_err(|_| DecodeError::Shape { expected })?;
    let tasks = r.task_responses.0.ok_or(DecodeError::Missing { field: "task_responses" })?;
    let Some(task) = tasks
        .into_iter()
        .filter_map(Lenient::into_inner)
        .find(|t| t.id.0.as_deref() == Some(task_id))
    else {
        return Ok(ImageTaskStatus::NotListed);
    };
    let progress_pct = progress_percent(task.progress_pct.0);
    Ok(match task.status.0.as_deref() {
        Some("succeeded") => {
            let urls: Vec<String> = task
                .generations
                .into_inner()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|g| g.into_inner().and_then(|g| g.url.non_empty()))
                .collect();
            if urls.is_empty() {
                ImageTaskStatus::Running { progress_pct }
            } else {
                ImageTaskStatus::Succeeded { urls }
            }
        }
        Some("failed" | "error") => ImageTaskStatus::Failed {
            reason: task.error_message.non_empty().or_else(|| task.failure_reason.non_empty()),
        },
        Some("queued" | "preprocessing") => ImageTaskStatus::Queued { progress_pct },
        _ => ImageTaskStatus::Running { progress_pct },
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::catalog::Orientation;
    use crate::request::MediaFormat;
    use serde_json::json;

    fn spec() -> ImageSpec {
        ImageSpec { orientation: Orientation::Landscape, width: 540, height: 360 }
    }

    #[test]
    fn upload_image_request() {
        let media = Media {
            bytes: bytes::Bytes::from_static(b"\xff\xd8\xffJPEG"),
            format: MediaFormat::Jpeg,
        };
        for (cfg, base) in configs() {
            let req = upload_image(&cfg, &auth(), &media, 0x1234);
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.url, format!("{base}/uploads"));
            let boundary = "----sora2api0000000000001234";
            let mut want = app_headers(&cfg);
            want[2].1 = format!("multipart/form-data; boundary={boundary}");
            assert_eq!(req.headers, want);
            let head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image.jpg\"\r\n\
                 Content-Type: image/jpeg\r\n\r\n"
            );
            let tail = format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file_name\"\r\n\r\n\
                 image.jpg\r\n--{boundary}--\r\n"
            );
            let want_body = [head.as_bytes(), &b"\xff\xd8\xffJPEG"[..], tail.as_bytes()].concat();
            let body = req.body.to_vec();
            assert_eq!(body, want_body, "{}", String::from_utf8_lossy(&body));
            assert_eq!(req.timeout_ms, cfg.request_timeout_ms);
            assert_secrets_contained(&req);
        }
    }

    #[test]
    fn image_gen_bodies() {
        let cases = [
            (
                None,
                json!({"type":"image_gen","operation":"simple_compose","prompt":"a cat","width":540,
                       "height":360,"n_variants":1,"n_frames":1,"inpaint_items":[]}),
            ),
            (
                Some("media_1"),
                json!({"type":"image_gen","operation":"remix","prompt":"a cat","width":540,
                       "height":360,"n_variants":1,"n_frames":1,
                       "inpaint_items":[{"type":"image","frame_index":0,"upload_media_id":"media_1"}]}),
            ),
        ];
        for (cfg, base) in configs() {
            for (media, want) in &cases {
                let req = image_gen(&cfg, &auth(), &sentinel(), "a cat", &spec(), *media);
                assert_eq!(req.method, Method::Post);
                assert_eq!(req.url, format!("{base}/video_gen"));
                assert_eq!(req.headers, app_sentinel_headers(&cfg));
                assert_eq!(&body_json(&req), want);
                assert_eq!(req.timeout_ms, cfg.request_timeout_ms);
                assert_secrets_contained(&req);
            }
        }
    }

    #[test]
    fn recent_tasks_request() {
        for (cfg, base) in configs() {
            let req = recent_tasks(&cfg, &auth(), 20);
            assert_eq!(req.method, Method::Get);
            assert_eq!(req.url, format!("{base}/v2/recent_tasks?limit=20"));
            assert_eq!(req.headers, app_headers(&cfg));
            assert!(req.body.is_empty());
            assert_secrets_contained(&req);
        }
    }

    #[test]
    fn the_reduced_reply_is_the_one_a_value_gives() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let bodies = [
            r#"{"task_responses":[{"id":"a","status":"running"},{"id":"task_x","status":"succeeded","generations":[{"url":"u"}]}]}"#.to_owned(),
            r#"{"task_responses":[{"id":"task_x","id":"b"},{"id":"task_x","status":"failed"}]}"#.to_owned(),
            r#"{"task_responses":[["task_x","succeeded"],{"id":7},{"id":null},{},"x",null]}"#.to_owned(),
            r#"{"task_responses":[{"id":"task_x","status":"queued"}],"task_responses":[]}"#.to_owned(),
            r#"{"task_responses":{"id":"task_x"}}"#.to_owned(),
            r#"{"task_responses":null}"#.to_owned(),
            r#"{"other":1}"#.to_owned(),
            r#"{"task_responses":[{"id":"task_x","extra":DEEP}]}"#.replace("DEEP", &deep),
            r#"{"task_responses":[{"id":"task_x"}]"#.to_owned(),
            r#"[{"task_responses":[]}]"#.to_owned(),
        ];
        for body in bodies {
            let reply = UpstreamReply::json(200, body.clone());
            // The decode reads `task_responses` only.
            if let Some(fast) = recent_for(&reply.body, "task_x") {
                let slow = recent_for_value(&reply, "task_x").unwrap();
                assert_eq!(fast.get("task_responses"), slow.get("task_responses"), "{body}");
            }
        }
        assert!(recent_for(br#"{"task_responses":[{"id":"task_x","id":"b"}]}"#, "task_x").is_none());
        let page = br#"{"task_responses":[{"id":"a","status":"running"},{"id":"task_x"}]}"#;
        assert_eq!(
            recent_for(page, "task_x"),
            Some(serde_json::json!({"task_responses":[{"id":"task_x"}]}))
        );
    }

    #[test]
    fn recent_tasks_decoding_table() {
        let body = |task: &str| {
            format!(
                r#"{{"task_responses":[{{"id":"task_other","status":"succeeded","generations":[{{"url":"https://o"}}]}},
                   "garbage", {task}],"extra":{{"x":1}}}}"#
            )
        };
        let cases = [
            (
                r#"{"id":"task_x","status":"queued","progress_pct":null}"#,
                ImageTaskStatus::Queued { progress_pct: None },
            ),
            (
                r#"{"id":"task_x","status":"running","progress_pct":0.42,"new_field":[]}"#,
                ImageTaskStatus::Running { progress_pct: Some(42.0) },
            ),
            (
                r#"{"id":"task_x","status":"running","progress_pct":"half"}"#,
                ImageTaskStatus::Running { progress_pct: None },
            ),
            (
                r#"{"id":"task_x","status":"processing","progress_pct":1.0}"#,
                ImageTaskStatus::Running { progress_pct: Some(100.0) },
            ),
            (
                r#"{"id":"task_x","status":"succeeded","progress_pct":1,"generations":[]}"#,
                ImageTaskStatus::Running { progress_pct: Some(100.0) },
            ),
            (
                r#"{"id":"task_x","status":"succeeded","generations":[{"id":"gen_1","url":""},{"url":null}]}"#,
                ImageTaskStatus::Running { progress_pct: None },
            ),
            (
                r#"{"id":"task_x","status":"succeeded","generations":[{"id":"gen_1","url":"https://a"},{"url":""},{"id":"gen_2","url":"https://b"}]}"#,
                ImageTaskStatus::Succeeded { urls: vec!["https://a".into(), "https://b".into()] },
            ),
            (
                r#"{"id":"task_x","status":"failed","error_message":"blocked","failure_reason":"fr"}"#,
                ImageTaskStatus::Failed { reason: Some("blocked".into()) },
            ),
            (
                r#"{"id":"task_x","status":"failed","error_message":null,"failure_reason":"fr"}"#,
                ImageTaskStatus::Failed { reason: Some("fr".into()) },
            ),
            (r#"{"id":"task_x","status":"error"}"#, ImageTaskStatus::Failed { reason: None }),
            (r#"{"id":"task_y","status":"failed"}"#, ImageTaskStatus::NotListed),
        ];
        for (task, want) in cases {
            let reply = UpstreamReply::json(200, body(task));
            assert_eq!(decode_recent_tasks(&reply, "task_x").unwrap(), want, "{task}");
        }
        assert_eq!(
            decode_recent_tasks(&UpstreamReply::json(200, r#"{"task_responses":[]}"#), "task_x")
                .unwrap(),
            ImageTaskStatus::NotListed
        );
        assert_eq!(
            decode_recent_tasks(&UpstreamReply::json(200, r#"{"items":[]}"#), "task_x"),
            Err(DecodeError::Missing { field: "task_responses" })
        );
        assert_eq!(
            decode_recent_tasks(&UpstreamReply::json(200, "[]"), "task_x"),
            Err(DecodeError::Shape { expected: "an object" })
        );
    }
}
