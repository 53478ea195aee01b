//! What a task persists so it can resume after a restart.
//!
//! A checkpoint holds the durable facts: the upstream ids the task learnt (accepted task,
//! cameo, character), the token that owns them, the attempt, the deadline and the progress.
//! It is opaque to the shell: store [`Checkpoint::to_json`] with the task record and hand it
//! back to [`super::Generation::resume`].
//!
//! What resumes how:
//! - nothing accepted upstream yet (uploads, sentinel): the attempt starts over;
//! - a create sent but not answered (`create_sent_ms`, stored before the create leaves): the
//!   task first looks for it on the same account ([`super::recover`]) and adopts it if the
//!   upstream has it; only a create the upstream never listed within the recovery window is
//!   sent again;
//! - accepted (`upstream_task` or a cameo): a lease on the same token, then polling only;
//! - a character in progress continues from its last learnt step (a lost avatar download is
//!   simply downloaded again); a finalize sent but not answered (`finalize_sent`, stored
//!   before it leaves) is not sent again blindly (the upstream refuses a second one): the task
//!   asks whether the username it claimed is taken now. Taken: the character exists under it,
//!   but its id came only in the lost answer, so the card shows an empty `character_id` and a
//!   character video cannot delete its temporary character. Free: it finalizes again.

use serde::{Deserialize, Serialize};

use super::calls::{Cameo, Character};
use super::Generation;
use crate::pool::TokenId;

/// The durable state of a [`Generation`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    attempt: u32,
    token: Option<u64>,
    started_ms: u64,
    deadline_ms: u64,
    progress: f32,
    pub(super) rng: u64,
    upstream_task: Option<String>,
    /// Absent in checkpoints written before it existed: read as `None`.
    #[serde(default)]
    create_sent_ms: Option<u64>,
    legacy_drafts: bool,
    urlless_draft: bool,
    announced: bool,
    cameo_id: Option<String>,
    cameo: Option<Cameo>,
    asset_pointer: Option<String>,
    chosen_username: Option<String>,
    /// Absent in checkpoints written before it existed: read as `false`.
    #[serde(default)]
    finalize_sent: bool,
    character: Option<Character>,
    public_set: bool,
    deleted: bool,
}

impl Checkpoint {
    pub(super) fn of(g: &Generation) -> Self {
        let f = &g.facts;
        Checkpoint {
            attempt: g.attempt,
            token: g.token.map(|t| t.0),
            started_ms: g.started_ms,
            deadline_ms: g.deadline_ms,
            progress: g.progress,
            rng: g.rng,
            upstream_task: f.upstream_task.clone(),
            create_sent_ms: f.create_sent_ms,
            legacy_drafts: f.legacy_drafts,
            urlless_draft: f.urlless_draft,
            announced: f.announced,
            cameo_id: f.cameo_id.clone(),
            cameo: f.cameo.clone(),
            asset_pointer: f.asset_pointer.clone(),
            chosen_username: f.chosen_username.clone(),
            finalize_sent: f.finalize_sent,
            character: f.character.clone(),
            public_set: f.public_set,
            deleted: f.deleted,
        }
    }

    pub(super) fn apply(self, g: &mut Generation) {
        g.attempt = self.attempt.max(1);
        g.token = self.token.map(TokenId);
        g.started_ms = self.started_ms;
        g.deadline_ms = self.deadline_ms;
        g.progress = self.progress;
        let f = &mut g.facts;
        f.upstream_task = self.upstream_task;
        f.create_sent_ms = self.create_sent_ms;
        f.legacy_drafts = self.legacy_drafts;
        f.urlless_draft = self.urlless_draft;
        f.announced = self.announced;
        f.cameo_id = self.cameo_id;
        f.cameo = self.cameo;
        f.asset_pointer = self.asset_pointer;
        f.chosen_username = self.chosen_username;
        f.finalize_sent = self.finalize_sent;
        f.character = self.character;
        f.public_set = self.public_set;
        f.deleted = self.deleted;
    }

    /// Whether the upstream holds work of this task: resuming must poll, never resubmit.
    pub fn accepted(&self) -> bool {
        self.upstream_task.is_some() || self.cameo_id.is_some()
    }

    /// The checkpoint as JSON, for the task store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A checkpoint from [`Checkpoint::to_json`]; `None` if the text is not one.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}
