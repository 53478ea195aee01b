//! Finding a create whose answer was lost, so a crash never makes a task create twice.
//!
//! The machine stores `create_sent_ms` (durably, [`super::Output::Persist`]) before every
//! create leaves, and clears it when the create's reply arrives. A task resumed with it still
//! set cannot know whether the upstream received the create: the process died in between.
//! Instead of creating again, it looks, on the same account:
//!
//! 1. in the running tasks (`v2/recent_tasks` for images, `nf/pending/v2` for videos), then
//!    (videos) in the drafts, paging back until drafts older than the create;
//! 2. for a task with the prompt the create carried, created around the time it was sent
//!    (from [`CLOCK_SLACK_MS`] before to the request timeout plus the slack after; drafts,
//!    made when a video ends, only need to be newer). Of several, the one created closest
//!    to the send wins;
//! 3. found: the task adopts that upstream id and polls it like any accepted task. Not found:
//!    it looks again every poll interval, at least twice and until
//!    [`super::MachineConfig::create_recovery_window_ms`] after the send (the upstream may
//!    list a new task late), then creates again: the create never arrived.
//!
//! Limits, by the upstream's shape: a list that shows no prompt cannot be matched (the task
//! then creates again once the window ends); two tasks of ours with the same prompt, on the
//! same account, both lost in the same crash, may adopt the same upstream task. Cameo uploads
//! (character creation) have no list to look in and are simply repeated; an upload is not a
//! generation.

use super::calls::{undecodable, Call};
use super::Generation;
use crate::request::Operation;
use crate::upstream::{self as up, Class, Listed, UpstreamReply};

/// Clock difference between the gateway and the upstream tolerated when comparing times.
pub(super) const CLOCK_SLACK_MS: u64 = 30_000;

/// The prompt the task's create carries, as the upstream lists it.
pub(super) fn sent_prompt(g: &Generation) -> Option<String> {
    Some(match &g.request.operation {
        Operation::TextToImage { prompt }
        | Operation::ImageToImage { prompt, .. }
        | Operation::TextToVideo { prompt, .. }
        | Operation::ImageToVideo { prompt, .. }
        | Operation::Remix { prompt, .. }
        | Operation::Extension { prompt, .. } => prompt.clone(),
        Operation::Storyboard { storyboard, .. } => storyboard.render_upstream(),
        Operation::CharacterVideo { prompt, .. } => {
            format!("@{} {prompt}", g.facts.character.as_ref()?.username)
        }
        Operation::PromptEnhance { .. } | Operation::CharacterCreate { .. } => return None,
    })
}

/// Of `listed`, the task the lost create made: the same prompt, created in
/// `from_ms..=until_ms` (no upper bound when `until_ms` is `None`); the closest to `sent_ms`
/// wins, and a task listed without a time only when no timed one matches.
fn pick(
    listed: impl IntoIterator<Item = Listed>,
    prompt: &str,
    sent_ms: u64,
    from_ms: u64,
    until_ms: Option<u64>,
) -> Option<String> {
    listed
        .into_iter()
        .filter(|t| t.prompt.as_deref() == Some(prompt))
        .filter(|t| match t.created_ms {
            Some(at) => at >= from_ms && until_ms.is_none_or(|until| at <= until),
            None => true,
        })
        .min_by_key(|t| t.created_ms.map_or(u64::MAX, |at| at.abs_diff(sent_ms)))
        .map(|t| t.id)
}

/// Folds a reply of [`Call::FindCreated`] or [`Call::FindCreatedDraft`] into the facts.
pub(super) fn learn(
    g: &mut Generation,
    call: Call,
    reply: &UpstreamReply,
    now_ms: u64,
) -> Result<(), Class> {
    let (Some(sent_ms), Some(prompt)) = (g.facts.create_sent_ms, sent_prompt(g)) else {
        // Nothing to look for (no prompt to match): create again.
        g.facts.create_sent_ms = None;
        return Ok(());
    };
    let from_ms = sent_ms.saturating_sub(CLOCK_SLACK_MS);
    if call == Call::FindCreatedDraft {
        let page = up::decode_drafts(reply).map_err(undecodable)?;
        let reaches_older = page.items.iter().any(|d| d.created_ms.is_some_and(|at| at < from_ms));
        let listed = page.items.iter().filter_map(|d| {
            Some(Listed {
                id: d.task_id.clone()?,
                prompt: d.prompt.clone(),
                created_ms: d.created_ms,
            })
        });
        if let Some(id) = pick(listed, &prompt, sent_ms, from_ms, None) {
            adopt(g, id, true, now_ms);
            return Ok(());
        }
        let pages = g.facts.drafts_pages.saturating_add(1);
        match page.cursor {
            Some(cursor) if pages < g.cfg.drafts_lookback_pages && !reaches_older => {
                g.facts.drafts_cursor = Some(cursor);
                g.facts.drafts_pages = pages;
            }
            _ => round_over(g, sent_ms, now_ms),
        }
        return Ok(());
    }
    let image = matches!(g.request.operation.task_kind(), crate::request::TaskKind::Image);
    let listed =
        if image { up::decode_recent_listing(reply) } else { up::decode_pending_listing(reply) }
            .map_err(undecodable)?;
    let until_ms =
        sent_ms.saturating_add(g.cfg.upstream.request_timeout_ms).saturating_add(CLOCK_SLACK_MS);
    match pick(listed, &prompt, sent_ms, from_ms, Some(until_ms)) {
        Some(id) => adopt(g, id, false, now_ms),
        // An image is listed in `recent_tasks` whether it runs or has ended.
        None if image => round_over(g, sent_ms, now_ms),
        None => {
            g.facts.find_in_drafts = true;
            g.facts.drafts_cursor = None;
            g.facts.drafts_pages = 0;
        }
    }
    Ok(())
}

/// The lost create was found: from now on the task is accepted and polls `id`.
fn adopt(g: &mut Generation, id: String, in_drafts: bool, now_ms: u64) {
    let f = &mut g.facts;
    f.upstream_task = Some(id);
    f.create_sent_ms = None;
    f.find_in_drafts = false;
    f.find_rounds = 0;
    f.check_drafts = in_drafts;
    f.drafts_cursor = None;
    f.drafts_pages = 0;
    g.poll_later(now_ms, 0);
    g.out.push_back(super::Output::Persist);
}

/// One round of looking found nothing: look again after the poll interval, or, once the
/// window has passed, conclude the create never arrived and create again.
fn round_over(g: &mut Generation, sent_ms: u64, now_ms: u64) {
    let f = &mut g.facts;
    f.find_in_drafts = false;
    f.drafts_cursor = None;
    f.drafts_pages = 0;
    f.find_rounds = f.find_rounds.saturating_add(1);
    let window_end = sent_ms.saturating_add(g.cfg.create_recovery_window_ms);
    if f.find_rounds >= 2 && now_ms >= window_end {
        f.create_sent_ms = None;
        f.find_rounds = 0;
    } else {
        let interval = g.cfg.poll_interval_ms;
        g.poll_later(now_ms, interval);
    }
}
