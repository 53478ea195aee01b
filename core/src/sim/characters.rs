//! Characters / cameos (spec 2.8): `characters/upload`, `characters/from-generation`,
//! `cameos/in_progress/{id}`, `project_y/file/upload`, `characters/finalize`,
//! `cameos/by_id/{id}/update_v2`, `DELETE project_y/characters/{id}`.

use serde_json::{json, Value};

use crate::request::MediaFormat;
use crate::upstream::{UpstreamReply, UpstreamRequest};

use super::accounts::{username_taken, valid_username};
use super::faults::Markers;
use super::http::{self, invalid_request, json_object, json_reply, opt_str, req_str};
use super::media::MediaKind;
use super::{PollFaults, Sim};

/// The failure message of a `#cameofail` cameo.
pub(super) const CAMEO_FAILURE: &str = "We couldn't find a clear, consenting person in this video.";

const NAMES: [&str; 8] = [
    "meowliusma",
    "pixelfox",
    "dustyrover",
    "lunawhisk",
    "captainbyte",
    "mossy",
    "neonotter",
    "quietstorm",
];

/// A file from `project_y/file/upload`.
#[derive(Debug, Clone)]
pub(super) struct FileAsset {
    pub(super) account: usize,
    pointer: String,
}

/// A cameo being processed.
#[derive(Debug, Clone)]
pub(super) struct Cameo {
    pub(super) account: usize,
    polls: u32,
    polls_needed: u32,
    fail: bool,
    username_hint: String,
    display_name_hint: String,
    finalized: bool,
    pub(super) poll_faults: PollFaults,
}

impl Cameo {
    fn completed(&self) -> bool {
        !self.fail && self.polls > self.polls_needed
    }
}

/// A finalized character.
#[derive(Debug, Clone)]
pub(super) struct Character {
    pub(super) account: usize,
    pub(super) username: String,
}

impl Sim {
    /// `POST /characters/upload` (multipart): a `file` part with a filename and video bytes
    /// (MP4 or WebM, by magic) and `timestamps` text `a,b` with `0 <= a < b` -> `{id}`.
    /// `#cameofail` in the filename makes processing fail.
    pub(super) fn character_upload(
        &mut self,
        now: u64,
        account: usize,
        req: &UpstreamRequest,
        markers: &Markers,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let parts =
            http::multipart(req.header("content-type"), &req.body).ok_or_else(invalid_request)?;
        let file = http::part(&parts, "file").ok_or_else(invalid_request)?;
        let is_video =
            matches!(MediaFormat::sniff(&file.data), Some(MediaFormat::Mp4 | MediaFormat::Webm));
        let timestamps =
            http::part(&parts, "timestamps").and_then(|p| p.text()).unwrap_or_default();
        let range: Vec<Option<f64>> =
            timestamps.split(',').map(|t| t.trim().parse::<f64>().ok()).collect();
        let range_ok = matches!(range.as_slice(), [Some(a), Some(b)] if *a >= 0.0 && a < b);
        if !is_video || file.filename.as_deref().is_none_or(str::is_empty) || !range_ok {
            return Err(invalid_request());
        }
        Ok(self.new_cameo(now, account, markers))
    }

    /// `POST /characters/from-generation` `{generation_id, character_id: null, timestamps:
    /// [a, b]}` (seconds, `0 <= a < b`; PY sends integers, fractions are accepted too); the generation must be a finished draft of this
    /// account (else 404) -> `{id}`. `#cameofail` in that generation's prompt makes processing
    /// fail.
    pub(super) fn character_from_generation(
        &mut self,
        now: u64,
        account: usize,
        body: &[u8],
    ) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        let gen = req_str(&obj, "generation_id")?;
        opt_str(&obj, "character_id")?;
        let stamps = obj
            .get("timestamps")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Value::as_f64).collect::<Vec<_>>());
        if !matches!(stamps.as_deref(), Some([Some(a), Some(b)]) if *a >= 0.0 && a < b) {
            return Err(invalid_request());
        }
        if !self.owns_generation(now, account, gen) {
            return Err(http::not_found("Generation"));
        }
        let prompt = self
            .video_tasks
            .iter()
            .find(|t| t.gen_id == gen)
            .map(|t| t.prompt.clone())
            .unwrap_or_default();
        Ok(self.new_cameo(now, account, &Markers::parse(&prompt)))
    }

    fn new_cameo(&mut self, now: u64, account: usize, markers: &Markers) -> UpstreamReply {
        let id = self.rng.ulid("ch_", now);
        let owner = self
            .accounts
            .get(account)
            .map(|a| {
                a.username
                    .clone()
                    .unwrap_or_else(|| a.email.split('@').next().unwrap_or_default().to_owned())
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        let name =
            NAMES.get(self.rng.below(NAMES.len() as u64) as usize).copied().unwrap_or("cameo");
        let digits = 10 + self.rng.below(90);
        let display = format!(
            "{}{}",
            name.get(..1).unwrap_or_default().to_uppercase(),
            name.get(1..).unwrap_or_default()
        );
        self.media.insert(format!("avatars/{id}.webp"), MediaKind::Webp);
        self.cameos.insert(
            id.clone(),
            Cameo {
                account,
                polls: 0,
                polls_needed: self.cfg.timings().cameo_polls,
                fail: markers.cameo_fail,
                username_hint: format!("{owner}.{name}{digits}"),
                display_name_hint: display,
                finalized: false,
                poll_faults: PollFaults::from_markers(markers),
            },
        );
        json_reply(200, &json!({ "id": id }))
    }

    /// `GET /project_y/cameos/in_progress/{id}`: `in_progress` for
    /// [`Timings::cameo_polls`](super::Timings::cameo_polls) polls, then `status:
    /// "finalized"`, `status_message: "Completed"` with the hints and `profile_asset_url` —
    /// or `status: "failed"` with a `status_message` (`#cameofail`).
    pub(super) fn cameo_progress(
        &mut self,
        account: usize,
        id: &str,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let origin = self.cfg.media_origin.clone();
        let cameo = self
            .cameos
            .get_mut(id)
            .filter(|c| c.account == account)
            .ok_or_else(|| http::not_found("Cameo"))?;
        cameo.polls = cameo.polls.saturating_add(1);
        let body = if cameo.polls <= cameo.polls_needed {
            json!({
                "id": id, "status": "in_progress", "status_message": "Processing",
                "progress_pct": f64::from(cameo.polls) / (f64::from(cameo.polls_needed) + 1.0),
                "display_name_hint": null, "username_hint": null, "profile_asset_url": null,
                "instruction_set_hint": null,
            })
        } else if cameo.fail {
            json!({"id": id, "status": "failed", "status_message": CAMEO_FAILURE, "profile_asset_url": null})
        } else {
            json!({
                "id": id, "status": "finalized", "status_message": "Completed", "progress_pct": 1.0,
                "display_name_hint": cameo.display_name_hint, "username_hint": cameo.username_hint,
                "profile_asset_url": format!("{origin}/avatars/{id}.webp"),
                "instruction_set_hint": "",
            })
        };
        Ok(json_reply(200, &body))
    }

    /// `POST /project_y/file/upload` (multipart): `file` (a filename and image bytes) and
    /// `use_case` (`profile` or `inpaint_safe`) -> `{asset_pointer: "sediment://file_…",
    /// file_id, url, size, …}`.
    pub(super) fn file_upload(
        &mut self,
        account: usize,
        req: &UpstreamRequest,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let parts =
            http::multipart(req.header("content-type"), &req.body).ok_or_else(invalid_request)?;
        let file = http::part(&parts, "file").ok_or_else(invalid_request)?;
        let use_case = http::part(&parts, "use_case").and_then(|p| p.text()).unwrap_or_default();
        let format = MediaFormat::sniff(&file.data).filter(|f| f.is_image());
        if format.is_none()
            || file.filename.as_deref().is_none_or(str::is_empty)
            || !matches!(use_case, "profile" | "inpaint_safe")
        {
            return Err(invalid_request());
        }
        let file_id = format!("file_{}", self.rng.hex(32));
        let pointer = format!("sediment://{file_id}");
        let kind = if format == Some(MediaFormat::Png) { MediaKind::Png } else { MediaKind::Webp };
        self.media.insert(format!("files/{file_id}"), kind);
        self.files.insert(file_id.clone(), FileAsset { account, pointer: pointer.clone() });
        Ok(json_reply(
            200,
            &json!({
                "asset_pointer": pointer, "file_id": file_id,
                "url": format!("{}/files/{file_id}", self.cfg.media_origin),
                "size": file.data.len(), "azure_asset_pointer": null, "contains_realistic_person": false,
            }),
        ))
    }

    /// `POST /characters/finalize` `{cameo_id, username, display_name, profile_asset_pointer,
    /// instruction_set, safety_instruction_set}`: the cameo must be this account's, completed
    /// and not yet finalized (unknown: 404; else 400), the username valid (400) and free
    /// (409 `username_taken`, see [`SimConfig::taken_usernames`](super::SimConfig::taken_usernames)),
    /// the pointer one of this account's uploads -> `{character: {character_id, …}}`.
    pub(super) fn finalize(
        &mut self,
        now: u64,
        account: usize,
        body: &[u8],
    ) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        let cameo_id = req_str(&obj, "cameo_id")?;
        let username = req_str(&obj, "username")?;
        let display_name = req_str(&obj, "display_name")?;
        let pointer = req_str(&obj, "profile_asset_pointer")?;
        let cameo = self
            .cameos
            .get(cameo_id)
            .filter(|c| c.account == account)
            .ok_or_else(|| http::not_found("Cameo"))?;
        let pointer_ok = self.files.values().any(|f| f.account == account && f.pointer == pointer);
        let sets_ok = ["instruction_set", "safety_instruction_set"]
            .iter()
            .all(|k| matches!(obj.get(*k), None | Some(Value::Null | Value::Object(_))));
        if !cameo.completed()
            || cameo.finalized
            || !valid_username(username)
            || !pointer_ok
            || !sets_ok
        {
            return Err(invalid_request());
        }
        if self.username_taken(username, None) {
            return Err(username_taken());
        }
        let character_id = self.rng.ulid("char_", now);
        if let Some(cameo) = self.cameos.get_mut(cameo_id) {
            cameo.finalized = true;
        }
        self.characters
            .insert(character_id.clone(), Character { account, username: username.to_owned() });
        Ok(json_reply(
            200,
            &json!({"character": {
                "character_id": character_id, "cameo_id": cameo_id, "username": username,
                "display_name": display_name, "profile_asset_pointer": pointer, "visibility": "private",
            }}),
        ))
    }

    /// `POST /project_y/cameos/by_id/{id}/update_v2`: `visibility` (`public`/`private`)
    /// and/or `instruction_set` / `safety_instruction_set` objects; at least one -> 200.
    pub(super) fn cameo_update(
        &mut self,
        account: usize,
        id: &str,
        body: &[u8],
    ) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        if self.cameos.get(id).is_none_or(|c| c.account != account) {
            return Err(http::not_found("Cameo"));
        }
        let visibility = opt_str(&obj, "visibility")?;
        let sets_ok = ["instruction_set", "safety_instruction_set"]
            .iter()
            .all(|k| matches!(obj.get(*k), None | Some(Value::Null | Value::Object(_))));
        let any = visibility.is_some()
            || obj.contains_key("instruction_set")
            || obj.contains_key("safety_instruction_set");
        if !any || !sets_ok || visibility.is_some_and(|v| !matches!(v, "public" | "private")) {
            return Err(invalid_request());
        }
        Ok(json_reply(200, &json!({"id": id, "visibility": visibility.unwrap_or("private")})))
    }

    /// `DELETE /project_y/characters/{id}`: 204 for this account's character, else 404.
    pub(super) fn character_delete(
        &mut self,
        account: usize,
        id: &str,
    ) -> Result<UpstreamReply, UpstreamReply> {
        if self.characters.get(id).is_none_or(|c| c.account != account) {
            return Err(http::not_found("Character"));
        }
        self.characters.remove(id);
        Ok(http::empty(204))
    }

    /// `POST /editor/enhance_prompt` `{prompt, expansion_level: short|medium|long,
    /// duration_s?: 5|10|15|20|25}` -> a deterministic `{enhanced_prompt}`.
    pub(super) fn enhance(&self, body: &[u8]) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        let prompt = req_str(&obj, "prompt")?.trim();
        let level = req_str(&obj, "expansion_level")?;
        let duration = match obj.get("duration_s") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|d| [5, 10, 15, 20, 25].contains(d))
                    .ok_or_else(invalid_request)?,
            ),
        };
        let detail = match level {
            "short" => "Cinematic lighting.",
            "medium" => "Cinematic lighting, a slow dolly-in, shallow depth of field and natural colour grading.",
            "long" => "Cinematic lighting, a slow dolly-in, shallow depth of field, natural colour grading, ambient sound that matches the scene, and a steady pace that lets each moment breathe.",
            _ => return Err(invalid_request()),
        };
        let timing = duration.map(|d| format!(" The shot lasts {d} seconds.")).unwrap_or_default();
        Ok(json_reply(200, &json!({"enhanced_prompt": format!("{prompt}. {detail}{timing}")})))
    }
}
