//! Videos (spec 2.4-2.6): `POST /nf/create`, `POST /nf/create/storyboard`,
//! `POST /project_y/profile/drafts/{gen}/long_video_extension`, `GET /nf/pending/v2`.

use serde_json::{json, Map, Value};

use crate::upstream::UpstreamReply;

use super::faults::Markers;
use super::http::{
    self, invalid_request, json_object, json_reply, opt_array, opt_str, req_str, req_u64,
};
use super::media::MediaKind;
use super::rng::is_post_id;
use super::schedule::Schedule;
use super::{PollFaults, Sim};

/// `n_frames` values: 5, 10, 15, 20 and 25 seconds at 30 fps.
pub(super) const N_FRAMES: [u64; 5] = [150, 300, 450, 600, 750];
/// Upstream model ids.
pub(super) const MODELS: [&str; 3] = ["sy_8", "sy_8_20251208", "sy_ore"];
/// Orientations (`square` per VIDENX).
pub(super) const ORIENTATIONS: [&str; 3] = ["landscape", "portrait", "square"];

/// One video task and, once finished, its draft.
#[derive(Debug, Clone)]
pub(super) struct VideoTask {
    pub(super) id: String,
    pub(super) account: usize,
    pub(super) prompt: String,
    pub(super) title: Option<String>,
    /// The draft's generation id (`gen_…`), fixed at creation.
    pub(super) gen_id: String,
    pub(super) orientation: String,
    pub(super) size: String,
    pub(super) model: String,
    pub(super) n_frames: u64,
    /// `video`, `storyboard`, `remix` or `extension`.
    pub(super) generation_type: &'static str,
    schedule: Schedule,
    preprocessing_ms: u64,
    queued_ms: u64,
    running_ms: u64,
    processing_ms: u64,
    lag_ms: u64,
    pub(super) created_ms: u64,
    pub(super) policy: bool,
    /// Drafts polls that must still see the draft without a URL (`#nourl`).
    pub(super) nourl_polls: u32,
    pub(super) poll_faults: PollFaults,
    pub(super) seq: u64,
}

/// Where a video task is on the observed schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum VideoPhase {
    Preprocessing,
    Queued,
    /// Progress in thousandths, 100..990.
    Running(u64),
    Processing,
    /// Gone from `pending/v2`; the draft shows once [`VideoTask::draft_visible`].
    Finished,
}

impl VideoTask {
    /// The phase at `now`; `observe` counts this as a `pending/v2` poll for `#queue=N`.
    pub(super) fn phase(&mut self, now: u64, observe: bool) -> VideoPhase {
        let e = self.schedule.elapsed(now);
        if e < self.preprocessing_ms {
            return VideoPhase::Preprocessing;
        }
        let queue_end = self.preprocessing_ms.saturating_add(self.queued_ms);
        if self.schedule.held(now, self.preprocessing_ms) || e < queue_end {
            if observe {
                self.schedule.observed_queued(now, queue_end);
            }
            return VideoPhase::Queued;
        }
        let into = e - queue_end;
        if into < self.running_ms {
            let milli = u128::from(into) * 890 / u128::from(self.running_ms.max(1));
            VideoPhase::Running(100 + u64::try_from(milli).unwrap_or(889))
        } else if into < self.running_ms.saturating_add(self.processing_ms) {
            VideoPhase::Processing
        } else {
            VideoPhase::Finished
        }
    }

    fn draft_offset(&self) -> u64 {
        [self.preprocessing_ms, self.queued_ms, self.running_ms, self.processing_ms, self.lag_ms]
            .into_iter()
            .fold(0, u64::saturating_add)
    }

    /// Whether the drafts item exists at `now`.
    pub(super) fn draft_visible(&self, now: u64) -> bool {
        !self.schedule.holding() && self.schedule.elapsed(now) >= self.draft_offset()
    }

    /// When the drafts item appeared (or will), unix ms: the drafts ordering key.
    pub(super) fn draft_at(&self) -> u64 {
        self.schedule.at(self.draft_offset())
    }

    /// Width and height of the result.
    pub(super) fn dimensions(&self) -> (u32, u32) {
        let (long, short) = if self.size == "large" { (1920, 1080) } else { (1280, 720) };
        match self.orientation.as_str() {
            "portrait" => (short, long),
            "square" => (short, short),
            _ => (long, short),
        }
    }
}

/// The validated fields of a video create body.
struct VideoParams {
    prompt: String,
    title: Option<String>,
    orientation: String,
    size: String,
    model: String,
    n_frames: u64,
    remix: bool,
}

impl Sim {
    /// `POST /nf/create` (sentinel): the minimal PY body or the full web body (unknown keys
    /// ignored). Required: `kind: "video"`, a non-empty `prompt`, `orientation`
    /// (landscape/portrait/square), `n_frames` (150/300/450/600/750), `model`
    /// (sy_8/sy_8_20251208/sy_ore). Optional (absent or null): `size` (small/large, default
    /// small), `style_id` (a catalog style), `inpaint_items` (upload/file/generation of this
    /// account, or `ref_<32hex>` references, at most 5, no duplicates), `remix_target_id` (an
    /// existing post), `cameo_ids` (strings), `title`. Then Pro gating and quota -> `{id,
    /// task_type: "video_gen"}`.
    pub(super) fn nf_create(
        &mut self,
        now: u64,
        account: usize,
        body: &[u8],
        markers: &Markers,
    ) -> Result<UpstreamReply, UpstreamReply> {
        self.require_sora2(account)?;
        let obj = json_object(body)?;
        let params = self.video_params(now, account, &obj)?;
        let kind = if params.remix { "remix" } else { "video" };
        self.accept_video(now, account, params, kind, markers)
    }

    /// `POST /nf/create/storyboard` (sentinel): the [`Sim::nf_create`] body whose prompt is
    /// storyboard text (spec 6.5): optionally `current timeline:`, then `Shot 1:` …
    /// blocks numbered from 1, each `duration: <seconds>sec` and a non-empty `Scene: …`,
    /// optionally followed by `instructions:`.
    pub(super) fn storyboard(
        &mut self,
        now: u64,
        account: usize,
        body: &[u8],
        markers: &Markers,
    ) -> Result<UpstreamReply, UpstreamReply> {
        self.require_sora2(account)?;
        let obj = json_object(body)?;
        let params = self.video_params(now, account, &obj)?;
        if !is_storyboard(&params.prompt) || params.remix {
            return Err(invalid_request());
        }
        self.accept_video(now, account, params, "storyboard", markers)
    }

    /// `POST /project_y/profile/drafts/{gen}/long_video_extension` (sentinel):
    /// `{user_prompt, extension_duration_s: 10|15, enable_rewrite?: bool}`; `gen` must be a
    /// finished, non-violating draft of this account (else 404) -> `{id}` of a new video task.
    pub(super) fn extension(
        &mut self,
        now: u64,
        account: usize,
        gen: &str,
        body: &[u8],
        markers: &Markers,
    ) -> Result<UpstreamReply, UpstreamReply> {
        self.require_sora2(account)?;
        let obj = json_object(body)?;
        let prompt = req_str(&obj, "user_prompt")?.to_owned();
        let seconds = req_u64(&obj, "extension_duration_s")?;
        if !matches!(seconds, 10 | 15)
            || !matches!(obj.get("enable_rewrite"), None | Some(Value::Bool(_)))
        {
            return Err(invalid_request());
        }
        let source = self
            .video_tasks
            .iter()
            .find(|t| t.gen_id == gen && t.account == account && !t.policy && t.draft_visible(now))
            .ok_or_else(|| http::not_found("Generation"))?;
        let params = VideoParams {
            prompt,
            title: None,
            orientation: source.orientation.clone(),
            size: source.size.clone(),
            model: source.model.clone(),
            n_frames: seconds * 30,
            remix: false,
        };
        self.accept_video(now, account, params, "extension", markers)
    }

    fn video_params(
        &self,
        now: u64,
        account: usize,
        obj: &Map<String, Value>,
    ) -> Result<VideoParams, UpstreamReply> {
        if req_str(obj, "kind")? != "video" {
            return Err(invalid_request());
        }
        let prompt = req_str(obj, "prompt")?.to_owned();
        let orientation = req_str(obj, "orientation")?;
        let n_frames = req_u64(obj, "n_frames")?;
        let model = req_str(obj, "model")?;
        let size = opt_str(obj, "size")?.unwrap_or("small");
        if !ORIENTATIONS.contains(&orientation)
            || !N_FRAMES.contains(&n_frames)
            || !MODELS.contains(&model)
            || !matches!(size, "small" | "large")
        {
            return Err(invalid_request());
        }
        if let Some(style) = opt_str(obj, "style_id")? {
            if !crate::catalog::styles().iter().any(|s| s.id == style) {
                return Err(invalid_request());
            }
        }
        self.check_inpaint_items(now, account, opt_array(obj, "inpaint_items")?)?;
        let remix = match opt_str(obj, "remix_target_id")? {
            None => false,
            Some(target) => {
                let known = self.posts.contains_key(target) || self.cfg.accept_any_remix_target;
                if !is_post_id(target) || !known {
                    return Err(invalid_request());
                }
                true
            }
        };
        if opt_array(obj, "cameo_ids")?.iter().any(|c| !c.is_string()) {
            return Err(invalid_request());
        }
        let title = opt_str(obj, "title")?.map(str::to_owned);
        // Pro gating.
        let pro = self.accounts.get(account).is_some_and(|a| a.is_pro());
        let gated = if model == "sy_ore" {
            Some("model")
        } else if size == "large" {
            Some("size")
        } else if n_frames == 750 {
            Some("n_frames")
        } else {
            None
        };
        if let (false, Some(param)) = (pro, gated) {
            return Err(http::error(
                self.cfg.pro_gating_status,
                "This feature requires a ChatGPT Pro subscription.",
                "invalid_request_error",
                Some(param),
                "pro_required",
            ));
        }
        Ok(VideoParams {
            prompt,
            title,
            orientation: orientation.to_owned(),
            size: size.to_owned(),
            model: model.to_owned(),
            n_frames,
            remix,
        })
    }

    fn check_inpaint_items(
        &self,
        now: u64,
        account: usize,
        items: &[Value],
    ) -> Result<(), UpstreamReply> {
        let mut references: Vec<&str> = Vec::new();
        for item in items {
            let text = |k: &str| item.get(k).and_then(Value::as_str);
            let ok = match text("kind") {
                Some("upload") => {
                    text("upload_id").is_some_and(|id| self.uploads.get(id) == Some(&account))
                }
                Some("file") => text("file_id")
                    .is_some_and(|id| self.files.get(id).is_some_and(|f| f.account == account)),
                Some("generation") => {
                    text("generation_id").is_some_and(|id| self.owns_generation(now, account, id))
                }
                Some("reference") => match text("reference_id") {
                    Some(id) if is_reference_id(id) && !references.contains(&id) => {
                        references.push(id);
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            if !ok || references.len() > 5 {
                return Err(invalid_request());
            }
        }
        Ok(())
    }

    /// Whether `gen` is a finished, non-violating draft of this account.
    pub(super) fn owns_generation(&self, now: u64, account: usize, gen: &str) -> bool {
        self.video_tasks
            .iter()
            .any(|t| t.gen_id == gen && t.account == account && !t.policy && t.draft_visible(now))
    }

    /// Quota, then the task.
    fn accept_video(
        &mut self,
        now: u64,
        account: usize,
        params: VideoParams,
        generation_type: &'static str,
        markers: &Markers,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let a = self.accounts.get_mut(account).ok_or_else(invalid_request)?;
        if a.quota_remaining == 0 {
            let retry = a.quota_resets_at_ms.saturating_sub(now).div_ceil(1000);
            return Err(http::rate_limited(
                "You've reached your video generation limit. Please try again later.",
                retry,
            ));
        }
        a.quota_remaining -= 1;
        a.videos_created += 1;
        let balance = json!({
            "estimated_num_videos_remaining": a.quota_remaining,
            "rate_limit_reached": a.quota_remaining == 0,
            "access_resets_in_seconds": a.quota_resets_at_ms.saturating_sub(now).div_ceil(1000),
        });
        let timings = self.cfg.timings();
        let id = self.rng.ulid("task_", now);
        let gen_id = self.rng.ulid("gen_", now);
        if !markers.policy {
            for path in [
                format!("videos/{gen_id}.mp4"),
                format!("videos/{gen_id}/download.mp4"),
                format!("videos/{gen_id}/source.mp4"),
            ] {
                self.media.insert(path, MediaKind::Mp4);
            }
        }
        let seq = self.next_seq();
        self.video_tasks.push(VideoTask {
            id: id.clone(),
            account,
            prompt: params.prompt,
            title: params.title,
            gen_id,
            orientation: params.orientation,
            size: params.size,
            model: params.model,
            n_frames: params.n_frames,
            generation_type,
            schedule: Schedule::new(now, markers.queue_polls.unwrap_or(0)),
            preprocessing_ms: timings.preprocessing_ms,
            queued_ms: timings.queued_ms,
            running_ms: markers.slow_ms.unwrap_or(timings.running_ms),
            processing_ms: timings.processing_ms,
            lag_ms: timings.draft_lag_ms,
            created_ms: now,
            policy: markers.policy,
            nourl_polls: markers.nourl.map_or(0, |n| n.unwrap_or(timings.nourl_polls)),
            poll_faults: PollFaults::from_markers(markers),
            seq,
        });
        self.creates += 1;
        Ok(json_reply(
            200,
            &json!({"id": id, "task_type": "video_gen", "priority": 1, "rate_limit_and_credit_balance": balance}),
        ))
    }

    /// `GET /nf/pending/v2`: a bare array of this account's unfinished video tasks, newest
    /// first: `preprocessing` and `queued` (pct null), `running` (0.1 -> <1.0), `processing`
    /// (1.0).
    pub(super) fn pending(
        &mut self,
        now: u64,
        account: usize,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let mut items = Vec::new();
        let listed_from = now.saturating_sub(self.cfg.listing_delay_ms);
        let tasks = self.video_tasks.iter_mut().rev();
        for task in tasks.filter(|t| t.account == account && t.created_ms <= listed_from) {
            let (status, pct) = match task.phase(now, true) {
                VideoPhase::Preprocessing => ("preprocessing", Value::Null),
                VideoPhase::Queued => ("queued", Value::Null),
                VideoPhase::Running(milli) => ("running", json!(milli as f64 / 1000.0)),
                VideoPhase::Processing => ("processing", json!(1.0)),
                VideoPhase::Finished => continue,
            };
            items.push(json!({
                "id": task.id, "status": status, "progress_pct": pct, "prompt": task.prompt,
                "title": task.title, "generations": [], "failure_reason": null,
                "n_frames": task.n_frames, "orientation": task.orientation,
                "created_at": task.created_ms as f64 / 1000.0,
            }));
        }
        Ok(json_reply(200, &Value::Array(items)))
    }
}

/// `ref_` + 32 lower-case hex.
fn is_reference_id(id: &str) -> bool {
    id.strip_prefix("ref_").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Storyboard text as spec 6.5 renders it: `Shot k:` / `duration: <d>sec` / `Scene: <text>`
/// blocks numbered from 1, optionally under `current timeline:` and followed by
/// `instructions:`.
pub(super) fn is_storyboard(prompt: &str) -> bool {
    let body = prompt.strip_prefix("current timeline:\n").unwrap_or(prompt);
    let shots = body.split("\n\ninstructions:\n").next().unwrap_or_default();
    let mut count = 0;
    for (k, block) in shots.split("\n\n").enumerate() {
        let mut lines = block.splitn(3, '\n');
        let header = lines.next().unwrap_or_default();
        let duration = lines.next().unwrap_or_default();
        let scene = lines.next().unwrap_or_default();
        let seconds = duration
            .strip_prefix("duration: ")
            .and_then(|d| d.strip_suffix("sec"))
            .and_then(|d| d.parse::<f64>().ok());
        let scene_ok = scene.strip_prefix("Scene: ").is_some_and(|s| !s.trim().is_empty());
        if header != format!("Shot {}:", k + 1) || !seconds.is_some_and(|s| s > 0.0) || !scene_ok {
            return false;
        }
        count += 1;
    }
    count > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storyboard_text() {
        assert!(is_storyboard("Shot 1:\nduration: 5.0sec\nScene: cat jumps from plane\n\nShot 2:\nduration: 5.0sec\nScene: cat lands"));
        assert!(is_storyboard("current timeline:\nShot 1:\nduration: 5.0sec\nScene: cat jumps\n\nShot 2:\nduration: 5sec\nScene: cat lands\n\ninstructions:\nA cat adventure"));
        assert!(!is_storyboard("a cat jumps"));
        assert!(!is_storyboard("Shot 2:\nduration: 5sec\nScene: x"));
        assert!(!is_storyboard("Shot 1:\nduration: 5sec\nScene: "));
        assert!(!is_storyboard("Shot 1:\nduration: fivesec\nScene: x"));
    }
}
