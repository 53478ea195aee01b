//! The calls a task makes, derived from what it knows.
//!
//! The machine keeps [`Facts`]: what the upstream has told it so far (upload ids, the accepted
//! task id, the cameo and character). [`next`] derives the one call to make from the facts
//! alone, so a resumed task picks up exactly where its checkpoint left it; [`learn`] folds a
//! successful reply into the facts; [`build`] turns a call into a request.

use bytes::Bytes;

use super::{Generation, PowJob};
use crate::catalog::ModelKind;
use crate::error::Error;
use crate::pool::Outcome;
use crate::pow::{
    self, ConfigArray, FingerprintPicks, PowAnswer, PowChallenge, PowEnv, SentinelHeader,
    SentinelReply, PY_HEAD,
};
use crate::request::{CharacterSource, Media, Operation, VideoInput};
use crate::task::{CharacterCard, CharacterStep, Event, TaskResult};
use crate::upstream::{self as up, Class, UpstreamReply, UpstreamRequest};

/// One upstream call (or step) of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Call {
    /// Download the client's video URL.
    FetchVideo,
    /// Upload the input image.
    UploadImage,
    /// Ask `sentinel/req` for a challenge.
    SentinelReq,
    /// Solve the sentinel's proof of work.
    Solve,
    /// The sentinel-protected create (image, video, remix, storyboard, extension, character video).
    Create,
    /// Look for a create whose answer was lost in the account's running tasks
    /// (`recent_tasks` for images, `nf/pending/v2` for videos).
    FindCreated,
    /// Look for it in the drafts (a video that finished meanwhile).
    FindCreatedDraft,
    /// Poll `recent_tasks` for an image task.
    PollImage,
    /// Poll `nf/pending/v2` for a video task.
    PollPending,
    /// Look the finished video up in the drafts.
    Drafts,
    /// Upload the character's source video.
    UploadCharacterVideo,
    /// Create a cameo from a generation.
    CharacterFromGeneration,
    /// Poll the cameo's processing.
    Cameo,
    /// Download the avatar the upstream made.
    DownloadAvatar,
    /// Upload the avatar as a profile asset.
    UploadAvatar,
    /// Finalize the character.
    Finalize,
    /// Ask whether the username a finalize whose answer was lost claimed is taken now, which
    /// tells whether that finalize happened.
    CheckFinalized,
    /// Make the character public.
    SetPublic,
    /// Delete the temporary character of a character video.
    DeleteCharacter,
    /// Enhance a prompt.
    Enhance,
}

impl Call {
    /// Polls wait for the poll timer.
    pub(super) fn is_poll(self) -> bool {
        matches!(self, Call::PollImage | Call::PollPending | Call::Cameo | Call::FindCreated)
    }

    /// Calls that carry a sentinel token.
    pub(super) fn needs_sentinel(self) -> bool {
        self == Call::Create
    }

    /// Best-effort cleanup that never fails the task.
    pub(super) fn is_cleanup(self) -> bool {
        self == Call::DeleteCharacter
    }

    /// Calls that must not be repeated blindly when their answer is lost: the create, and the
    /// character's finalize (the upstream refuses a second one).
    pub(super) fn changes_upstream_once(self) -> bool {
        matches!(self, Call::Create | Call::Finalize)
    }

    /// Looking for a create whose answer was lost ([`super::recover`]).
    pub(super) fn is_lookup(self) -> bool {
        matches!(self, Call::FindCreated | Call::FindCreatedDraft | Call::CheckFinalized)
    }
}

/// The sentinel token being prepared for the next create.
#[derive(Debug, Clone, Default)]
enum Sentinel {
    /// None yet.
    #[default]
    None,
    /// `sentinel/req` is out, built from this fingerprint.
    Asked { requirements: String, device_id: String, config: Box<ConfigArray> },
    /// The reply demands a proof of work.
    NeedsProof {
        requirements: String,
        device_id: String,
        config: Box<ConfigArray>,
        reply: SentinelReply,
        challenge: PowChallenge,
    },
    /// Ready to send.
    Ready { header: String, device_id: String },
}

/// What the upstream made for a character.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Cameo {
    pub username_hint: String,
    pub display_name: String,
    pub profile_asset_url: String,
}

/// A created character.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Character {
    pub character_id: String,
    pub username: String,
    pub display_name: String,
}

/// What the task knows. Fields marked "per attempt" are tied to the leased account and are
/// dropped when an attempt is retried on another token.
#[derive(Debug, Default)]
pub(super) struct Facts {
    /// Per attempt: the uploaded input image's media id.
    pub image_media_id: Option<String>,
    /// The client's video, downloaded from its URL.
    pub fetched_video: Option<Media>,
    /// Per attempt: the sentinel token in preparation.
    sentinel: Sentinel,
    /// Whether a stale sentinel was already refreshed once for this create.
    pub sentinel_retried: bool,
    /// Announcements already made (storyboard detected, submitting).
    pub announced: bool,
    /// The upstream task id of the accepted create.
    pub upstream_task: Option<String>,
    /// When the create was sent, while its answer is not known: set (and stored) before the
    /// create leaves, cleared by its reply. Still set after a resume, it means the create may
    /// or may not have reached the upstream: look for it before creating again.
    pub create_sent_ms: Option<u64>,
    /// Looking for the lost create: the running-task list showed nothing, now the drafts.
    pub find_in_drafts: bool,
    /// Completed rounds of looking for the lost create.
    pub find_rounds: u32,
    /// The last image poll did not list the task: look further back on the next one.
    pub image_not_listed: bool,
    /// Look in the drafts on the next call instead of polling pending.
    pub check_drafts: bool,
    /// The drafts v2 route is missing: use the legacy one.
    pub legacy_drafts: bool,
    /// Paging through drafts: the cursor and how many pages were read this round.
    pub drafts_cursor: Option<String>,
    pub drafts_pages: u32,
    /// A draft for the task exists but has no URL yet (decisions 14).
    pub urlless_draft: bool,
    /// A failed call to repeat once the poll timer is due.
    pub gated: bool,
    /// Character flow state.
    pub cameo_id: Option<String>,
    pub cameo: Option<Cameo>,
    pub avatar: Option<Bytes>,
    pub asset_pointer: Option<String>,
    /// The username sent with finalize.
    pub chosen_username: Option<String>,
    /// A finalize was sent and its answer is not known (stored before it leaves, cleared by
    /// its reply): after a resume, check whether it happened before finalizing again.
    pub finalize_sent: bool,
    pub character: Option<Character>,
    pub public_set: bool,
    pub deleted: bool,
}

impl Facts {
    /// Whether the upstream holds work of this task (never submit again).
    pub(super) fn committed(&self) -> bool {
        self.upstream_task.is_some() || self.cameo_id.is_some()
    }

    /// Whether a temporary character must still be deleted before the task ends (one whose
    /// id was lost with its finalize's answer cannot be).
    pub(super) fn needs_cleanup(&self) -> bool {
        self.character.as_ref().is_some_and(|c| !c.character_id.is_empty())
            && !self.deleted
            && !self.public_set
    }

    pub(super) fn has_urlless_draft(&self) -> bool {
        self.urlless_draft
    }

    pub(super) fn cleanup_done(&mut self) {
        self.deleted = true;
    }

    /// `call` (one that [`Call::changes_upstream_once`]) leaves now.
    pub(super) fn sent(&mut self, call: Call, now_ms: u64) {
        match call {
            Call::Create => self.create_sent_ms = Some(now_ms),
            Call::Finalize => self.finalize_sent = true,
            _ => {}
        }
    }

    /// `call` was answered (or certainly never arrived): nothing is left to look for.
    pub(super) fn answered(&mut self, call: Call) {
        match call {
            Call::Create => self.create_sent_ms = None,
            Call::Finalize => self.finalize_sent = false,
            _ => {}
        }
    }

    pub(super) fn drop_sentinel(&mut self) {
        self.sentinel = Sentinel::None;
    }

    pub(super) fn retry_later(&mut self, _call: Call) {
        self.gated = true;
    }

    /// A new attempt on (possibly) another account: forget what belonged to the old one.
    pub(super) fn new_attempt(&mut self) {
        self.image_media_id = None;
        self.sentinel = Sentinel::None;
        self.sentinel_retried = false;
    }

    /// Takes a cached sentinel when none is in preparation; returns whether it was taken.
    pub(super) fn use_cached(&mut self, sentinel: up::SentinelToken) -> bool {
        if !matches!(self.sentinel, Sentinel::None) {
            return false;
        }
        self.sentinel = Sentinel::Ready {
            header: sentinel.header().to_owned(),
            device_id: sentinel.device_id().to_owned(),
        };
        true
    }

    /// The ready sentinel, for the shell's cache.
    pub(super) fn ready_sentinel(&self) -> Option<up::SentinelToken> {
        match &self.sentinel {
            Sentinel::Ready { header, device_id } => {
                Some(up::SentinelToken::new(header.clone(), device_id.clone()))
            }
            _ => None,
        }
    }

    pub(super) fn solved(&mut self, answer: PowAnswer) {
        if let Sentinel::NeedsProof { requirements, device_id, reply, .. } =
            std::mem::take(&mut self.sentinel)
        {
            let p = pow::header_proof(&requirements, Some(&answer));
            let header =
                SentinelHeader::new(&p, &reply, &device_id, pow::FLOW_CREATE_TASK_AUTO).render();
            self.sentinel = Sentinel::Ready { header, device_id };
        }
    }
}

/// The next call the task must make, from its facts alone; `None` while waiting on something
/// else (a lease, a solve) or when nothing is left.
pub(super) fn next(g: &Generation) -> Option<Call> {
    let f = &g.facts;
    if g.pending_end.is_some() {
        return f.needs_cleanup().then_some(Call::DeleteCharacter);
    }
    let with_sentinel = |call: Call| match f.sentinel {
        Sentinel::None => Some(Call::SentinelReq),
        Sentinel::Asked { .. } => None,
        Sentinel::NeedsProof { .. } => Some(Call::Solve),
        Sentinel::Ready { .. } => Some(call),
    };
    match &g.request.operation {
        Operation::TextToImage { .. } | Operation::ImageToImage { .. } => {
            if f.upstream_task.is_some() {
                Some(Call::PollImage)
            } else if f.create_sent_ms.is_some() {
                Some(Call::FindCreated)
            } else if input_image(g).is_some() && f.image_media_id.is_none() {
                Some(Call::UploadImage)
            } else {
                with_sentinel(Call::Create)
            }
        }
        Operation::TextToVideo { .. }
        | Operation::ImageToVideo { .. }
        | Operation::Remix { .. }
        | Operation::Storyboard { .. }
        | Operation::Extension { .. } => {
            if f.upstream_task.is_some() {
                Some(if f.check_drafts { Call::Drafts } else { Call::PollPending })
            } else if f.create_sent_ms.is_some() {
                Some(find_created(f))
            } else if input_image(g).is_some() && f.image_media_id.is_none() {
                Some(Call::UploadImage)
            } else {
                with_sentinel(Call::Create)
            }
        }
        Operation::PromptEnhance { .. } => Some(Call::Enhance),
        Operation::CharacterCreate { source, .. } => match character_step(f, Some(source)) {
            Some(call) => Some(call),
            None if !f.public_set => Some(Call::SetPublic),
            None => None,
        },
        Operation::CharacterVideo { video, .. } => {
            let source = CharacterSource::Video(video.clone());
            match character_step(f, Some(&source)) {
                Some(call) => Some(call),
                None if f.upstream_task.is_some() => {
                    Some(if f.check_drafts { Call::Drafts } else { Call::PollPending })
                }
                None if f.create_sent_ms.is_some() => Some(find_created(f)),
                None => with_sentinel(Call::Create),
            }
        }
    }
}

/// Where a video task looks for its lost create next.
fn find_created(f: &Facts) -> Call {
    if f.find_in_drafts {
        Call::FindCreatedDraft
    } else {
        Call::FindCreated
    }
}

/// The next step of character creation, or `None` once the character exists.
fn character_step(f: &Facts, source: Option<&CharacterSource>) -> Option<Call> {
    if f.character.is_some() {
        return None;
    }
    if f.cameo_id.is_none() {
        return Some(match source {
            Some(CharacterSource::Generation(_)) => Call::CharacterFromGeneration,
            Some(CharacterSource::Video(VideoInput::Url(_))) if f.fetched_video.is_none() => {
                Call::FetchVideo
            }
            _ => Call::UploadCharacterVideo,
        });
    }
    Some(match (&f.cameo, &f.avatar, &f.asset_pointer) {
        (None, _, _) => Call::Cameo,
        (Some(_), None, None) => Call::DownloadAvatar,
        (Some(_), Some(_), None) => Call::UploadAvatar,
        (Some(_), _, Some(_)) if f.finalize_sent => Call::CheckFinalized,
        (Some(_), _, Some(_)) => Call::Finalize,
    })
}

/// The image the flow uploads, if any.
fn input_image(g: &Generation) -> Option<&Media> {
    match &g.request.operation {
        Operation::ImageToImage { image, .. } | Operation::ImageToVideo { image, .. } => {
            Some(image)
        }
        Operation::Storyboard { image, .. } => image.as_ref(),
        _ => None,
    }
}

/// The character source video's bytes.
fn character_video(g: &Generation) -> Option<&Media> {
    match &g.request.operation {
        Operation::CharacterCreate {
            source: CharacterSource::Video(VideoInput::Inline(m)),
            ..
        }
        | Operation::CharacterVideo { video: VideoInput::Inline(m), .. } => Some(m),
        _ => g.facts.fetched_video.as_ref(),
    }
}

/// What a call turns into.
pub(super) enum Built {
    Send(UpstreamRequest),
    Fetch(String),
    Solve(Box<PowJob>),
    Finish(Event, Outcome),
}

/// Builds the request of `call`, announcing the step where the flow shows it.
pub(super) fn build(g: &mut Generation, call: Call, now_ms: u64) -> Built {
    g.facts.gated = false;
    let event = |g: &mut Generation, e: Event| g.out.push_back(super::Output::Event(e));
    match call {
        Call::FetchVideo => {
            event(g, Event::Character(CharacterStep::DownloadingVideo));
            match &g.request.operation {
                Operation::CharacterCreate {
                    source: CharacterSource::Video(VideoInput::Url(url)),
                    ..
                }
                | Operation::CharacterVideo { video: VideoInput::Url(url), .. } => {
                    Built::Fetch(url.clone())
                }
                _ => Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
            }
        }
        Call::SentinelReq => {
            let env = PowEnv {
                now_unix_ms: now_ms,
                utc_offset_minutes: g.cfg.pow_timezone.0,
                tz_name: &g.cfg.pow_timezone.1.clone(),
                user_agent: &g.cfg.upstream.pow_user_agent.clone(),
            };
            let picks = FingerprintPicks::from_seed(g.random());
            let config = match PY_HEAD.build(&env, &picks) {
                Ok(config) => config,
                Err(_) => return Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
            };
            let seed = pow::requirements_seed(g.random());
            let requirements =
                pow::solve(&PowChallenge::requirements(seed), &config).requirements_token();
            let device_id = pow::uuid4(random_bytes(g));
            let request = up::sentinel_req(&g.cfg.upstream, &requirements, &device_id, proxy(g));
            g.facts.sentinel =
                Sentinel::Asked { requirements, device_id, config: Box::new(config) };
            Built::Send(request)
        }
        Call::Solve => match &g.facts.sentinel {
            Sentinel::NeedsProof { challenge, config, .. } => Built::Solve(Box::new(PowJob {
                challenge: challenge.clone(),
                config: (**config).clone(),
                max_iterations: g.cfg.pow_max_iterations,
            })),
            _ => Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
        },
        Call::Create => {
            if !g.facts.announced {
                g.facts.announced = true;
                match &g.request.operation {
                    Operation::Storyboard { .. } => event(g, Event::StoryboardDetected),
                    Operation::Remix { .. } | Operation::Extension { .. } => {
                        event(g, Event::Submitting)
                    }
                    Operation::CharacterVideo { .. } => {
                        event(g, Event::Character(CharacterStep::GeneratingVideo))
                    }
                    _ => {}
                }
            }
            let (header, device_id) = match &g.facts.sentinel {
                Sentinel::Ready { header, device_id } => (header.clone(), device_id.clone()),
                _ => return Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
            };
            match adapter::create(g, &up::SentinelToken::new(header, device_id)) {
                Some(request) => Built::Send(request),
                None => Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
            }
        }
        Call::UploadImage => match input_image(g).cloned() {
            Some(image) => {
                event(g, Event::UploadingImage);
                let boundary = g.random();
                Built::Send(adapter::upload_image(g, &image, boundary))
            }
            None => Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
        },
        Call::FindCreated => Built::Send(match g.request.operation.task_kind() {
            crate::request::TaskKind::Image => adapter::poll_image(g),
            _ => adapter::poll_pending(g),
        }),
        Call::FindCreatedDraft => Built::Send(adapter::drafts(g)),
        Call::PollImage => Built::Send(adapter::poll_image(g)),
        Call::PollPending => Built::Send(adapter::poll_pending(g)),
        Call::Drafts => Built::Send(adapter::drafts(g)),
        Call::UploadCharacterVideo => match character_video(g).cloned() {
            Some(video) => {
                event(g, Event::Character(CharacterStep::UploadingVideo));
                let boundary = g.random();
                Built::Send(adapter::upload_character_video(g, &video, boundary))
            }
            None => Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
        },
        Call::CharacterFromGeneration => match adapter::character_from_generation(g) {
            Some(request) => Built::Send(request),
            None => Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
        },
        Call::Cameo => Built::Send(adapter::cameo(g)),
        Call::DownloadAvatar => {
            event(g, Event::Character(CharacterStep::DownloadingAvatar));
            Built::Send(adapter::download_avatar(g))
        }
        Call::UploadAvatar => {
            event(g, Event::Character(CharacterStep::UploadingAvatar));
            let boundary = g.random();
            Built::Send(adapter::upload_avatar(g, boundary))
        }
        Call::Finalize => {
            event(g, Event::Character(CharacterStep::Finalizing));
            // The hint's last part plus three random digits (sora-backend.md 2.8).
            let suffix = (100 + g.random() % 900) as u16;
            let hint = g.facts.cameo.as_ref().map(|c| c.username_hint.clone());
            g.facts.chosen_username = Some(up::character_username(hint.as_deref(), suffix));
            Built::Send(adapter::finalize(g))
        }
        Call::CheckFinalized => Built::Send(adapter::username_check(g)),
        Call::SetPublic => {
            event(g, Event::Character(CharacterStep::SettingPublic));
            Built::Send(adapter::set_public(g))
        }
        Call::DeleteCharacter => {
            event(g, Event::Character(CharacterStep::CleaningUp));
            Built::Send(adapter::delete_character(g))
        }
        Call::Enhance => match adapter::enhance(g) {
            Some(request) => Built::Send(request),
            None => Built::Finish(Event::Failed(Error::Internal), Outcome::Abandoned),
        },
    }
}

fn random_bytes(g: &mut Generation) -> [u8; 16] {
    let a = g.random().to_le_bytes();
    let b = g.random().to_le_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a);
    out[8..].copy_from_slice(&b);
    out
}

/// A failed call the flow handles itself (not a failure of the task): returns whether it did.
pub(super) fn absorb(g: &mut Generation, call: Call, class: &Class) -> bool {
    match (call, class) {
        // drafts v2 is missing on this backend: fall back to the legacy route (decisions 14).
        (Call::Drafts | Call::FindCreatedDraft, Class::Fatal { status: 404 | 410 })
            if !g.facts.legacy_drafts =>
        {
            g.facts.legacy_drafts = true;
            true
        }
        _ => false,
    }
}

/// Folds a successful reply into the facts, emitting progress and ending the task when the
/// reply says it is done. A reply that cannot be decoded is returned as its class.
pub(super) fn learn(
    g: &mut Generation,
    call: Call,
    reply: &UpstreamReply,
    now_ms: u64,
) -> Result<(), Class> {
    let event = |g: &mut Generation, e: Event| g.out.push_back(super::Output::Event(e));
    match call {
        Call::FetchVideo => {
            let format = crate::request::MediaFormat::sniff(&reply.body).filter(|f| !f.is_image());
            match format {
                Some(format) => {
                    g.facts.fetched_video = Some(Media { bytes: reply.body.clone(), format })
                }
                None => {
                    let message =
                        "the video at the given URL is not an MP4, MOV or WebM video".to_owned();
                    g.end(Event::Failed(Error::invalid("video", message)), Outcome::Abandoned);
                }
            }
        }
        Call::UploadImage => {
            g.facts.image_media_id = Some(up::decode_id(reply).map_err(undecodable)?);
            event(g, Event::ImageUploaded);
        }
        Call::SentinelReq => {
            let reply =
                SentinelReply::parse(&reply.body).map_err(|_| Class::Transient { status: None })?;
            if let Sentinel::Asked { requirements, device_id, config } =
                std::mem::take(&mut g.facts.sentinel)
            {
                g.facts.sentinel = match reply.proof_of_work.clone() {
                    Some(challenge) => {
                        Sentinel::NeedsProof { requirements, device_id, config, reply, challenge }
                    }
                    None => {
                        // No proof demanded: the requirements token is the proof.
                        let p = pow::header_proof(&requirements, None);
                        let header =
                            SentinelHeader::new(&p, &reply, &device_id, pow::FLOW_CREATE_TASK_AUTO)
                                .render();
                        Sentinel::Ready { header, device_id }
                    }
                };
            }
            g.note_fresh_sentinel();
        }
        Call::Solve => {}
        Call::Create => {
            g.facts.upstream_task = Some(up::decode_task_id(reply).map_err(undecodable)?);
            g.facts.sentinel = Sentinel::None;
            g.poll_later(now_ms, g.cfg.poll_interval_ms);
            g.out.push_back(super::Output::Persist);
        }
        Call::FindCreated | Call::FindCreatedDraft => {
            super::recover::learn(g, call, reply, now_ms)?
        }
        Call::PollImage => {
            let status = up::decode_recent_tasks(reply, upstream_task(g)).map_err(undecodable)?;
            g.facts.image_not_listed = status == up::ImageTaskStatus::NotListed;
            match status {
                up::ImageTaskStatus::Queued { progress_pct }
                | up::ImageTaskStatus::Running { progress_pct } => {
                    let percent = progress_pct.unwrap_or(0.0) as f32;
                    g.report_progress(now_ms, percent, Event::ImageProgress { percent });
                    g.poll_later(now_ms, g.cfg.poll_interval_ms);
                }
                up::ImageTaskStatus::Succeeded { urls } => g.completed(TaskResult::Images(urls)),
                up::ImageTaskStatus::Failed { reason } => {
                    // An accepted image the upstream refused: never resubmitted (B10).
                    let reason = reason.unwrap_or_else(|| "the upstream refused the image".into());
                    g.end(Event::ContentViolation { reason }, Outcome::ContentViolation);
                }
                up::ImageTaskStatus::NotListed => g.poll_later(now_ms, g.cfg.poll_interval_ms),
            }
        }
        Call::PollPending => {
            match up::decode_pending(reply, upstream_task(g)).map_err(undecodable)? {
                up::VideoPending::InProgress { progress_pct } => {
                    let status = if progress_pct.is_some() { "running" } else { "queued" };
                    let percent = progress_pct.unwrap_or(0.0) as f32;
                    g.report_progress(
                        now_ms,
                        percent,
                        Event::VideoProgress { percent, status: status.into() },
                    );
                    g.poll_later(now_ms, g.cfg.poll_interval_ms);
                }
                up::VideoPending::Failed { reason } => {
                    let message = reason
                        .unwrap_or_else(|| "the upstream reported the generation as failed".into());
                    g.end(Event::Failed(Error::Upstream { message }), Outcome::ContentViolation);
                }
                up::VideoPending::Absent => {
                    g.facts.check_drafts = true;
                    g.facts.drafts_cursor = None;
                    g.facts.drafts_pages = 0;
                }
            }
        }
        Call::Drafts => {
            let page = up::decode_drafts(reply).map_err(undecodable)?;
            match page.find(upstream_task(g)) {
                up::DraftOutcome::Ready { url, .. } => {
                    g.facts.check_drafts = false;
                    g.facts.urlless_draft = false;
                    g.completed(TaskResult::Videos(vec![url]));
                }
                up::DraftOutcome::Violation { reason } => {
                    g.facts.check_drafts = false;
                    let reason = reason.unwrap_or_else(|| "Content violates guardrails".into());
                    g.end(Event::ContentViolation { reason }, Outcome::ContentViolation);
                }
                up::DraftOutcome::NoUrl => {
                    g.facts.urlless_draft = true;
                    g.facts.check_drafts = false;
                    g.poll_later(now_ms, g.cfg.poll_interval_ms);
                }
                up::DraftOutcome::NotYet => {
                    let pages = g.facts.drafts_pages.saturating_add(1);
                    // The task's draft is newer than the task: a page that reaches older
                    // drafts ends the search (B24), whatever the account's backlog.
                    let oldest_possible =
                        g.started_ms.saturating_sub(super::recover::CLOCK_SLACK_MS);
                    let reaches_older = page
                        .items
                        .iter()
                        .any(|d| d.created_ms.is_some_and(|at| at < oldest_possible));
                    match page.cursor {
                        Some(cursor) if pages < g.cfg.drafts_lookback_pages && !reaches_older => {
                            g.facts.drafts_cursor = Some(cursor);
                            g.facts.drafts_pages = pages;
                        }
                        _ => {
                            g.facts.check_drafts = false;
                            g.poll_later(now_ms, g.cfg.poll_interval_ms);
                        }
                    }
                }
            }
        }
        Call::UploadCharacterVideo | Call::CharacterFromGeneration => {
            g.facts.cameo_id = Some(up::decode_id(reply).map_err(undecodable)?);
            g.facts.fetched_video = None;
            let step = if call == Call::CharacterFromGeneration {
                CharacterStep::ProcessingGeneration
            } else {
                CharacterStep::ProcessingVideo
            };
            event(g, Event::Character(step));
            g.poll_later(now_ms, g.cfg.cameo_poll_interval_ms);
            g.out.push_back(super::Output::Persist);
        }
        Call::Cameo => match up::decode_cameo_progress(reply).map_err(undecodable)? {
            up::CameoProgress::Processing => g.poll_later(now_ms, g.cfg.cameo_poll_interval_ms),
            up::CameoProgress::Failed { message } => {
                let message = format!(
                    "character creation failed: {}",
                    message.unwrap_or_else(|| "the upstream could not extract a character".into())
                );
                g.end(Event::Failed(Error::Upstream { message }), Outcome::Failure);
            }
            up::CameoProgress::Ready(profile) => {
                let display_name = profile.display_name().to_owned();
                let username_hint = profile.username_hint.clone().unwrap_or_default();
                let shown = username_hint.rsplit('.').next().unwrap_or_default().to_owned();
                event(
                    g,
                    Event::Character(CharacterStep::Recognised {
                        display_name: display_name.clone(),
                        username: shown,
                    }),
                );
                g.facts.cameo = Some(Cameo {
                    username_hint,
                    display_name,
                    profile_asset_url: profile.profile_asset_url,
                });
                g.out.push_back(super::Output::Persist);
            }
        },
        Call::DownloadAvatar => {
            if reply.body.is_empty() {
                return Err(Class::Transient { status: None });
            }
            g.facts.avatar = Some(reply.body.clone());
        }
        Call::UploadAvatar => {
            g.facts.asset_pointer = Some(up::decode_file_upload(reply).map_err(undecodable)?);
            g.facts.avatar = None;
        }
        Call::Finalize => {
            let character_id = up::decode_finalize(reply).map_err(undecodable)?;
            let username = g.facts.chosen_username.clone().unwrap_or_default();
            let display_name =
                g.facts.cameo.as_ref().map(|c| c.display_name.clone()).unwrap_or_default();
            g.facts.character = Some(Character { character_id, username, display_name });
            g.out.push_back(super::Output::Persist);
        }
        Call::CheckFinalized => {
            let available = up::decode_username_available(reply).map_err(undecodable)?;
            g.facts.finalize_sent = false;
            if !available {
                // The lost finalize happened: the character exists under the username it
                // claimed. Its id came only in the lost answer (no lookup exists upstream).
                let username = g.facts.chosen_username.clone().unwrap_or_default();
                let display_name =
                    g.facts.cameo.as_ref().map(|c| c.display_name.clone()).unwrap_or_default();
                g.facts.character =
                    Some(Character { character_id: String::new(), username, display_name });
                g.out.push_back(super::Output::Persist);
            }
        }
        Call::SetPublic => {
            g.facts.public_set = true;
            if let Some(card) = card(g) {
                g.completed(TaskResult::Character(card));
            }
        }
        Call::DeleteCharacter => g.facts.deleted = true,
        Call::Enhance => {
            // An empty answer keeps the original prompt (as GO does) rather than returning "".
            let text = match (up::decode_enhance(reply).map_err(undecodable)?, &g.request.operation)
            {
                (Some(text), _) => text,
                (None, Operation::PromptEnhance { prompt }) => prompt.clone(),
                (None, _) => String::new(),
            };
            g.completed(TaskResult::EnhancedPrompt(text));
        }
    }
    Ok(())
}

/// The finished character's card.
fn card(g: &Generation) -> Option<CharacterCard> {
    let character = g.facts.character.as_ref()?;
    let cameo = g.facts.cameo.as_ref()?;
    Some(CharacterCard {
        username: character.username.clone(),
        display_name: character.display_name.clone(),
        character_id: character.character_id.clone(),
        cameo_id: g.facts.cameo_id.clone().unwrap_or_default(),
        profile_asset_url: cameo.profile_asset_url.clone(),
        source_generation_id: match &g.request.operation {
            Operation::CharacterCreate { source: CharacterSource::Generation(id), .. } => {
                Some(id.as_str().to_owned())
            }
            _ => None,
        },
    })
}

/// The extension length of an extension model.
pub(super) fn extension_seconds(g: &Generation) -> u16 {
    match g.request.model.kind {
        ModelKind::Extension { seconds } => seconds,
        _ => 10,
    }
}

/// A reply that classified as OK but does not decode: treated like a transient failure.
pub(super) fn undecodable(_: up::DecodeError) -> Class {
    Class::Transient { status: None }
}

fn upstream_task(g: &Generation) -> &str {
    g.facts.upstream_task.as_deref().unwrap_or_default()
}

fn proxy(g: &Generation) -> Option<String> {
    g.lease.as_ref().and_then(|l| l.credentials.proxy.clone())
}

mod adapter {
    //! The one place that speaks the upstream module's request builders.

    use super::*;
    use crate::secret::Secret;

    fn auth(g: &Generation) -> up::Auth {
        match &g.lease {
            Some(lease) => up::Auth {
                access_token: lease.credentials.access_token.clone(),
                session_token: lease.credentials.session_token.clone(),
                proxy: lease.credentials.proxy.clone(),
            },
            None => up::Auth::new(Secret::default()),
        }
    }

    fn cameo_id(g: &Generation) -> &str {
        g.facts.cameo_id.as_deref().unwrap_or_default()
    }

    /// The sentinel-protected create of the task's operation.
    pub(super) fn create(g: &Generation, s: &up::SentinelToken) -> Option<UpstreamRequest> {
        let cfg = &g.cfg.upstream;
        let auth = auth(g);
        let upload = g.facts.image_media_id.as_deref();
        let video = g.request.model.video();
        Some(match &g.request.operation {
            Operation::TextToImage { prompt } | Operation::ImageToImage { prompt, .. } => {
                match g.request.model.kind {
                    ModelKind::Image(spec) => up::image_gen(cfg, &auth, s, prompt, &spec, upload),
                    _ => return None,
                }
            }
            Operation::TextToVideo { prompt, style } => {
                up::nf_create(cfg, &auth, s, video?, prompt, up::VideoSource::Text, *style)
            }
            Operation::ImageToVideo { prompt, style, .. } => {
                let source = up::VideoSource::Image { upload_id: upload? };
                up::nf_create(cfg, &auth, s, video?, prompt, source, *style)
            }
            Operation::Remix { prompt, target, style } => {
                let source = up::VideoSource::Remix { target };
                up::nf_create(cfg, &auth, s, video?, prompt, source, *style)
            }
            Operation::Storyboard { storyboard, style, .. } => {
                up::nf_create_storyboard(cfg, &auth, s, video?, storyboard, upload, *style)
            }
            Operation::Extension { prompt, generation } => {
                let duration = up::ExtensionDuration::from_seconds(extension_seconds(g))?;
                up::long_video_extension(cfg, &auth, s, generation, prompt, duration)
            }
            Operation::CharacterVideo { prompt, .. } => {
                let username = &g.facts.character.as_ref()?.username;
                let prompt = format!("@{username} {prompt}");
                up::nf_create(cfg, &auth, s, video?, &prompt, up::VideoSource::Text, None)
            }
            Operation::PromptEnhance { .. } | Operation::CharacterCreate { .. } => return None,
        })
    }

    pub(super) fn upload_image(g: &Generation, image: &Media, boundary: u64) -> UpstreamRequest {
        up::upload_image(&g.cfg.upstream, &auth(g), image, boundary)
    }

    pub(super) fn poll_image(g: &Generation) -> UpstreamRequest {
        let wide = g.facts.image_not_listed || g.facts.create_sent_ms.is_some();
        let limit = if wide {
            g.cfg.recent_tasks_limit
        } else {
            g.cfg.recent_tasks_first_limit.min(g.cfg.recent_tasks_limit)
        };
        up::recent_tasks(&g.cfg.upstream, &auth(g), limit)
    }

    pub(super) fn poll_pending(g: &Generation) -> UpstreamRequest {
        up::pending_v2(&g.cfg.upstream, &auth(g))
    }

    pub(super) fn drafts(g: &Generation) -> UpstreamRequest {
        let cursor = g.facts.drafts_cursor.as_deref();
        let limit = g.cfg.drafts_page_size;
        if g.facts.legacy_drafts {
            up::drafts(&g.cfg.upstream, &auth(g), limit, cursor)
        } else {
            up::drafts_v2(&g.cfg.upstream, &auth(g), limit, cursor)
        }
    }

    fn timestamps(g: &Generation) -> Option<crate::request::Timestamps> {
        match &g.request.operation {
            Operation::CharacterCreate { timestamps, .. }
            | Operation::CharacterVideo { timestamps, .. } => *timestamps,
            _ => None,
        }
    }

    pub(super) fn upload_character_video(
        g: &Generation,
        video: &Media,
        boundary: u64,
    ) -> UpstreamRequest {
        up::characters_upload(&g.cfg.upstream, &auth(g), video, timestamps(g), boundary)
    }

    pub(super) fn character_from_generation(g: &Generation) -> Option<UpstreamRequest> {
        match &g.request.operation {
            Operation::CharacterCreate { source: CharacterSource::Generation(id), .. } => {
                Some(up::characters_from_generation(&g.cfg.upstream, &auth(g), id, timestamps(g)))
            }
            _ => None,
        }
    }

    pub(super) fn cameo(g: &Generation) -> UpstreamRequest {
        up::cameo_in_progress(&g.cfg.upstream, &auth(g), cameo_id(g))
    }

    /// The avatar lives on the upstream's media host: a plain GET without credentials.
    pub(super) fn download_avatar(g: &Generation) -> UpstreamRequest {
        let url = g.facts.cameo.as_ref().map(|c| c.profile_asset_url.clone()).unwrap_or_default();
        UpstreamRequest {
            method: up::Method::Get,
            url,
            headers: vec![("user-agent".into(), g.cfg.upstream.app_user_agent.clone())],
            body: Bytes::new(),
            timeout_ms: g.cfg.upstream.request_timeout_ms,
            proxy: proxy(g),
        }
    }

    pub(super) fn upload_avatar(g: &Generation, boundary: u64) -> UpstreamRequest {
        let bytes = g.facts.avatar.clone().unwrap_or_default();
        let format =
            crate::request::MediaFormat::sniff(&bytes).unwrap_or(crate::request::MediaFormat::Webp);
        let avatar = Media { bytes, format };
        up::file_upload(&g.cfg.upstream, &auth(g), &avatar, up::FileUseCase::Profile, boundary)
    }

    pub(super) fn finalize(g: &Generation) -> UpstreamRequest {
        let username = g.facts.chosen_username.as_deref().unwrap_or_default();
        let display = g.facts.cameo.as_ref().map(|c| c.display_name.as_str()).unwrap_or_default();
        let pointer = g.facts.asset_pointer.as_deref().unwrap_or_default();
        up::characters_finalize(&g.cfg.upstream, &auth(g), cameo_id(g), username, display, pointer)
    }

    pub(super) fn username_check(g: &Generation) -> UpstreamRequest {
        let username = g.facts.chosen_username.as_deref().unwrap_or_default();
        up::username_check(&g.cfg.upstream, &auth(g), username)
    }

    pub(super) fn set_public(g: &Generation) -> UpstreamRequest {
        up::cameo_update_v2(&g.cfg.upstream, &auth(g), cameo_id(g))
    }

    pub(super) fn delete_character(g: &Generation) -> UpstreamRequest {
        let id = g.facts.character.as_ref().map(|c| c.character_id.as_str()).unwrap_or_default();
        up::delete_character(&g.cfg.upstream, &auth(g), id)
    }

    pub(super) fn enhance(g: &Generation) -> Option<UpstreamRequest> {
        match (&g.request.operation, g.request.model.kind) {
            (Operation::PromptEnhance { prompt }, ModelKind::PromptEnhance { level, seconds }) => {
                Some(up::enhance_prompt(&g.cfg.upstream, &auth(g), prompt, level, seconds))
            }
            _ => None,
        }
    }
}
