//! Drafts (spec 2.5) and posts (spec 2.7, the minimal behaviour of spec 8 item 8).

use serde_json::{json, Value};

use crate::upstream::{UpstreamReply, UpstreamRequest};

use super::http::{self, invalid_request, json_object, json_reply, opt_str};
use super::videos::VideoTask;
use super::Sim;

/// The `reason_str` of a content-violation draft.
pub(super) const VIOLATION_REASON: &str =
    "This content may violate our guardrails concerning similarity to third-party content.";

/// A post: seeded (public, no account) or a published draft.
#[derive(Debug, Clone)]
pub(super) struct Post {
    pub(super) account: Option<usize>,
    pub(super) generation_id: Option<String>,
}

impl Sim {
    /// `GET /project_y/profile/drafts` and `…/drafts/v2` (404 with
    /// [`SimConfig::drafts_v2_404`](super::SimConfig::drafts_v2_404)): `{items, cursor}`, this
    /// account's drafts newest first; `limit` 1-100 (default 15); `cursor` from the previous
    /// page (opaque; malformed -> 400), `null` on the last page.
    pub(super) fn drafts(
        &mut self,
        now: u64,
        account: usize,
        query: &str,
        v2: bool,
    ) -> Result<UpstreamReply, UpstreamReply> {
        if v2 && self.cfg.drafts_v2_404 {
            return Err(http::error(404, "Not Found", "invalid_request_error", None, "not_found"));
        }
        let limit = http::limit(query, 15, 100)?;
        let after = match http::query_param(query, "cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(parse_cursor(&cursor).ok_or_else(invalid_request)?),
        };
        let mut visible: Vec<usize> = (0..self.video_tasks.len())
            .filter(|&i| {
                self.video_tasks
                    .get(i)
                    .is_some_and(|t| t.account == account && t.draft_visible(now))
            })
            .collect();
        visible.sort_by_key(|&i| {
            std::cmp::Reverse(self.video_tasks.get(i).map(|t| (t.draft_at(), t.seq)))
        });
        let page: Vec<usize> = visible
            .into_iter()
            .filter(|&i| {
                let key = self.video_tasks.get(i).map(|t| (t.draft_at(), t.seq));
                after.is_none_or(|a| key.is_some_and(|k| k < a))
            })
            .collect();
        let more = page.len() > limit;
        let origin = self.cfg.media_origin.clone();
        let no_watermark = self.cfg.expose_no_watermark;
        let mut items = Vec::new();
        let mut last = None;
        for &i in page.iter().take(limit) {
            if let Some(task) = self.video_tasks.get_mut(i) {
                items.push(draft_json(task, &origin, no_watermark));
                last = Some((task.draft_at(), task.seq));
            }
        }
        let cursor = match (more, last) {
            (true, Some((at, seq))) => json!(format!("dc_{at:x}_{seq:x}")),
            _ => Value::Null,
        };
        Ok(json_reply(200, &json!({"items": items, "cursor": cursor})))
    }

    /// `POST /project_y/post` (sentinel): `{attachments_to_create: [{generation_id, kind:
    /// "sora"}], post_text?}`; the generation must be a finished, non-violating draft of this
    /// account -> `{post: {id: "s_<32hex>", permalink}}`.
    pub(super) fn post_create(
        &mut self,
        now: u64,
        account: usize,
        body: &[u8],
    ) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        opt_str(&obj, "post_text")?;
        let first = obj
            .get("attachments_to_create")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .ok_or_else(invalid_request)?;
        let gen = first.get("generation_id").and_then(Value::as_str).unwrap_or_default();
        if first.get("kind").and_then(Value::as_str) != Some("sora") {
            return Err(invalid_request());
        }
        if !self.owns_generation(now, account, gen) {
            return Err(http::not_found("Generation"));
        }
        let id = format!("s_{}", self.rng.hex(32));
        self.posts.insert(
            id.clone(),
            Post { account: Some(account), generation_id: Some(gen.to_owned()) },
        );
        Ok(json_reply(200, &json!({"post": post_json(&id, Some(gen), None)})))
    }

    /// `GET /project_y/post/{id}`: `post.attachments[0].encodings.source.path` (the
    /// watermark-free file). With
    /// [`SimConfig::post_detail_requires_app`](super::SimConfig::post_detail_requires_app),
    /// only for `oai-package-name: com.openai.sora` (else 403).
    pub(super) fn post_get(
        &self,
        _account: usize,
        id: &str,
        req: &UpstreamRequest,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let post = self.posts.get(id).ok_or_else(|| http::not_found("Post"))?;
        if self.cfg.post_detail_requires_app
            && req.header("oai-package-name") != Some("com.openai.sora")
        {
            return Err(http::error(403, "Forbidden", "invalid_request_error", None, "forbidden"));
        }
        let origin = self.cfg.media_origin.as_str();
        Ok(json_reply(
            200,
            &json!({"post": post_json(id, post.generation_id.as_deref(), Some(origin))}),
        ))
    }

    /// `DELETE /project_y/post/{id}`: 204 for this account's post, else 404.
    pub(super) fn post_delete(
        &mut self,
        account: usize,
        id: &str,
    ) -> Result<UpstreamReply, UpstreamReply> {
        match self.posts.get(id) {
            Some(post) if post.account == Some(account) => {
                self.posts.remove(id);
                Ok(http::empty(204))
            }
            _ => Err(http::not_found("Post")),
        }
    }
}

fn post_json(id: &str, gen: Option<&str>, origin: Option<&str>) -> Value {
    let attachments: Vec<Value> = gen
        .map(|gen| {
            let encodings = match origin {
                Some(o) => json!({"source": {"path": format!("{o}/videos/{gen}/source.mp4")}}),
                None => Value::Null,
            };
            json!({"generation_id": gen, "kind": "sora", "encodings": encodings})
        })
        .into_iter()
        .collect();
    json!({"id": id, "permalink": format!("https://sora.chatgpt.com/p/{id}"), "attachments": attachments})
}

fn parse_cursor(cursor: &str) -> Option<(u64, u64)> {
    let (at, seq) = cursor.strip_prefix("dc_")?.split_once('_')?;
    Some((u64::from_str_radix(at, 16).ok()?, u64::from_str_radix(seq, 16).ok()?))
}

/// One drafts item; spends a `#nourl` poll.
fn draft_json(task: &mut VideoTask, origin: &str, no_watermark: bool) -> Value {
    let gen = task.gen_id.clone();
    let (width, height) = task.dimensions();
    let without_url = !task.policy && task.nourl_polls > 0;
    if without_url {
        task.nourl_polls -= 1;
    }
    let task = &*task;
    let common = |kind: &str| {
        json!({
            "id": gen, "generation_id": gen, "task_id": task.id, "kind": kind,
            "generation_type": task.generation_type, "prompt": task.prompt, "title": task.title,
            "width": width, "height": height, "n_frames": task.n_frames,
            "created_at": task.draft_at() as f64 / 1000.0,
        })
    };
    let mut item = if task.policy {
        let mut item = common("sora_content_violation");
        let extra = json!({
            "url": null, "downloadable_url": null,
            "reason_str": VIOLATION_REASON, "markdown_reason_str": VIOLATION_REASON,
            "encodings": {"source": null}, "download_urls": {"watermark": null, "no_watermark": null},
        });
        merge(&mut item, extra);
        item
    } else if without_url {
        let mut item = common("sora_draft");
        merge(
            &mut item,
            json!({
                "url": null, "downloadable_url": null, "reason_str": null, "markdown_reason_str": null,
                "encodings": {"source": null}, "download_urls": {"watermark": null, "no_watermark": null},
            }),
        );
        item
    } else {
        let url = format!("{origin}/videos/{gen}.mp4");
        let download = format!("{origin}/videos/{gen}/download.mp4");
        let source = format!("{origin}/videos/{gen}/source.mp4");
        let mut item = common("sora_draft");
        merge(
            &mut item,
            json!({
                "url": url, "downloadable_url": download, "reason_str": null, "markdown_reason_str": null,
                "encodings": {"source": {"path": download}},
                "download_urls": {"watermark": download, "no_watermark": if no_watermark { json!(source) } else { Value::Null }},
            }),
        );
        item
    };
    if let Some(obj) = item.as_object_mut() {
        obj.insert("draft_reviewed".into(), json!(true));
    }
    item
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}
