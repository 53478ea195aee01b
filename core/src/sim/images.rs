//! Images (spec 2.3): `POST /uploads`, `POST /video_gen`, `GET /v2/recent_tasks`.

use serde_json::{json, Map, Value};

use crate::request::MediaFormat;
use crate::upstream::{UpstreamReply, UpstreamRequest};

use super::faults::Markers;
use super::http::{self, invalid_request, json_object, json_reply, opt_array, req_str, req_u64};
use super::media::MediaKind;
use super::schedule::Schedule;
use super::{PollFaults, Sim};

/// The image sizes `video_gen` accepts (width, height): the three of the model table and
/// their doubled HD forms.
const IMAGE_SIZES: [(u64, u64); 6] =
    [(360, 360), (540, 360), (360, 540), (720, 720), (1080, 720), (720, 1080)];

/// The message of a content-policy failure.
pub(super) const POLICY_MESSAGE: &str =
    "This content may violate our content policies. Please try a different prompt.";

/// One image task.
#[derive(Debug, Clone)]
pub(super) struct ImageTask {
    id: String,
    pub(super) account: usize,
    prompt: String,
    operation: String,
    width: u64,
    height: u64,
    generations: Vec<String>,
    schedule: Schedule,
    queued_ms: u64,
    running_ms: u64,
    created_ms: u64,
    policy: bool,
    nourl_polls: u32,
    pub(super) poll_faults: PollFaults,
}

enum ImagePhase {
    Queued,
    Running(u64),
    Done,
}

impl ImageTask {
    fn phase(&mut self, now: u64) -> ImagePhase {
        let e = self.schedule.elapsed(now);
        if self.schedule.held(now, 0) || e < self.queued_ms {
            self.schedule.observed_queued(now, self.queued_ms);
            return ImagePhase::Queued;
        }
        let into = e - self.queued_ms;
        if into < self.running_ms {
            let milli = u128::from(into) * 1000 / u128::from(self.running_ms.max(1));
            ImagePhase::Running(u64::try_from(milli).unwrap_or(999))
        } else {
            ImagePhase::Done
        }
    }
}

impl Sim {
    /// `POST /uploads` (multipart): a `file` part with a filename and image bytes (PNG, JPEG,
    /// GIF or WebP, by magic) and a non-empty `file_name` text part -> `{id}`.
    pub(super) fn upload(
        &mut self,
        now: u64,
        account: usize,
        req: &UpstreamRequest,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let parts =
            http::multipart(req.header("content-type"), &req.body).ok_or_else(invalid_request)?;
        let file = http::part(&parts, "file").ok_or_else(invalid_request)?;
        let file_name = http::part(&parts, "file_name").and_then(|p| p.text()).unwrap_or_default();
        let format = MediaFormat::sniff(&file.data).filter(|f| f.is_image());
        let (Some(filename), Some(format)) = (file.filename.as_deref(), format) else {
            return Err(invalid_request());
        };
        if filename.is_empty() || file_name.trim().is_empty() {
            return Err(invalid_request());
        }
        let id = self.rng.ulid("media_", now);
        self.uploads.insert(id.clone(), account);
        Ok(json_reply(
            200,
            &json!({"id": id, "filename": file_name, "mime_type": format.mime(), "size": file.data.len()}),
        ))
    }

    /// `POST /video_gen` (sentinel): `type: "image_gen"`, `operation` `simple_compose` (no
    /// inpaint items) or `remix` (at least one `{type: "image", frame_index: 0,
    /// upload_media_id}` of this account's uploads), a non-empty `prompt`, a `width`×`height`
    /// of [`IMAGE_SIZES`], `n_variants` 1-4 (default 1), `n_frames` 1 if present -> `{id}`.
    pub(super) fn video_gen(
        &mut self,
        now: u64,
        account: usize,
        body: &[u8],
        markers: &Markers,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        if req_str(&obj, "type")? != "image_gen" {
            return Err(invalid_request());
        }
        let operation = req_str(&obj, "operation")?;
        let prompt = req_str(&obj, "prompt")?;
        let (width, height) = (req_u64(&obj, "width")?, req_u64(&obj, "height")?);
        if !IMAGE_SIZES.contains(&(width, height)) {
            return Err(invalid_request());
        }
        let n_variants = optional_u64(&obj, "n_variants", 1)?;
        if !(1..=4).contains(&n_variants) || optional_u64(&obj, "n_frames", 1)? != 1 {
            return Err(invalid_request());
        }
        let items = opt_array(&obj, "inpaint_items")?;
        match operation {
            "simple_compose" if items.is_empty() => {}
            "remix" if !items.is_empty() => {
                for item in items {
                    if !self.valid_image_item(account, item) {
                        return Err(invalid_request());
                    }
                }
            }
            _ => return Err(invalid_request()),
        }
        let timings = self.cfg.timings();
        let id = self.rng.ulid("task_", now);
        let generations = (0..n_variants)
            .map(|_| {
                let gen = self.rng.ulid("gen_", now);
                self.media.insert(format!("images/{gen}.png"), MediaKind::Png);
                gen
            })
            .collect();
        self.image_tasks.push(ImageTask {
            id: id.clone(),
            account,
            prompt: prompt.to_owned(),
            operation: operation.to_owned(),
            width,
            height,
            generations,
            schedule: Schedule::new(now, markers.queue_polls.unwrap_or(0)),
            queued_ms: timings.image_queued_ms,
            running_ms: markers.slow_ms.unwrap_or(timings.image_running_ms),
            created_ms: now,
            policy: markers.policy,
            nourl_polls: markers.nourl.map_or(0, |n| n.unwrap_or(timings.nourl_polls)),
            poll_faults: PollFaults::from_markers(markers),
        });
        self.creates += 1;
        Ok(json_reply(200, &json!({"id": id, "priority": 1})))
    }

    fn valid_image_item(&self, account: usize, item: &Value) -> bool {
        item.get("type").and_then(Value::as_str) == Some("image")
            && item.get("frame_index").and_then(Value::as_u64) == Some(0)
            && item
                .get("upload_media_id")
                .and_then(Value::as_str)
                .is_some_and(|id| self.uploads.get(id) == Some(&account))
    }

    /// `GET /v2/recent_tasks?limit=N` (default 20, 1-100): this account's image tasks,
    /// newest first: `queued` (pct null) -> `running` (0..1) -> `succeeded` with
    /// `generations[{id, url}]`, or `failed` with `error_message` and `failure_reason`.
    pub(super) fn recent_tasks(
        &mut self,
        now: u64,
        account: usize,
        query: &str,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let limit = http::limit(query, 20, 100)?;
        let origin = self.cfg.media_origin.clone();
        let listed_from = now.saturating_sub(self.cfg.listing_delay_ms);
        let responses: Vec<Value> = self
            .image_tasks
            .iter_mut()
            .rev()
            .filter(|t| t.account == account && t.created_ms <= listed_from)
            .take(limit)
            .map(|task| image_json(task, now, &origin))
            .collect();
        Ok(json_reply(200, &json!({"task_responses": responses})))
    }
}

fn image_json(task: &mut ImageTask, now: u64, origin: &str) -> Value {
    let (status, pct, generations, error) = match task.phase(now) {
        ImagePhase::Queued => ("queued", Value::Null, json!([]), Value::Null),
        ImagePhase::Running(milli) => {
            ("running", json!(milli as f64 / 1000.0), json!([]), Value::Null)
        }
        ImagePhase::Done if task.policy => ("failed", json!(1.0), json!([]), json!(POLICY_MESSAGE)),
        ImagePhase::Done => {
            let with_url = task.nourl_polls == 0;
            task.nourl_polls = task.nourl_polls.saturating_sub(1);
            let generations: Vec<Value> = task
                .generations
                .iter()
                .map(|gen| {
                    let url = if with_url { format!("{origin}/images/{gen}.png") } else { String::new() };
                    json!({"id": gen, "task_id": task.id, "url": url, "width": task.width, "height": task.height})
                })
                .collect();
            ("succeeded", json!(1.0), Value::Array(generations), Value::Null)
        }
    };
    json!({
        "id": task.id,
        "type": "image_gen",
        "operation": task.operation,
        "status": status,
        "prompt": task.prompt,
        "progress_pct": pct,
        "created_at": task.created_ms as f64 / 1000.0,
        "n_variants": task.generations.len(),
        "generations": generations,
        "error_message": error,
        "failure_reason": error,
    })
}

/// An optional unsigned integer with a default; a non-integer is a 400.
fn optional_u64(obj: &Map<String, Value>, key: &str, default: u64) -> Result<u64, UpstreamReply> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().ok_or_else(invalid_request),
    }
}
