//! Every human-readable text a task shows: progress messages and the final answer.
//!
//! The texts are the English ones of sora-backend.md 6.9 (the reference implementation, PY),
//! with PY's Chinese texts translated (decisions 3). The gateway keeps no media cache, so the
//! "done" texts are PY's cache-off variants, word for word; watermark-free texts are out of
//! scope. All texts live in [`progress_texts`], [`final_content`] and the few helpers right
//! below them, so they can be reviewed (and reworded) in one place.

use crate::task::{CharacterCard, CharacterStep, Event, Flow, TaskResult};

/// The English progress texts of `event`, one per SSE reasoning chunk, in order.
///
/// `flow` is the flow of the task's [`Event::Started`] (if known): the announcement of
/// [`Event::Submitting`] depends on it (remix and extension announce it, plain generation does
/// not). Terminal events give the texts shown before the final answer: the "completed" notice
/// for [`Event::Completed`], the violation notice for [`Event::ContentViolation`], nothing for
/// [`Event::Failed`] (that becomes an error frame).
///
/// ```
/// use sora2api_core::render::progress_texts;
/// use sora2api_core::task::Event;
///
/// let texts = progress_texts(None, &Event::VideoProgress { percent: 45.5, status: "running".into() });
/// assert_eq!(texts, ["\n**Video Generation Progress**: 45% (running)\n"]);
/// ```
pub fn progress_texts(flow: Option<&Flow>, event: &Event) -> Vec<String> {
    match event {
        // --- 6.9.1, 6.9.3-6.9.6: the opening message of each flow ---
        Event::Started(Flow::Generation { with_image: false }) => {
            vec!["**Generation Process Begins**\n\nInitializing generation request...\n".into()]
        }
        // With an input image, the upload is announced first; "Generation Process Begins"
        // follows once the image is uploaded (see `ImageUploaded`).
        Event::Started(Flow::Generation { with_image: true }) => {
            vec!["**Image Upload Begins**\n\nUploading image to server...\n".into()]
        }
        Event::Started(Flow::Remix) => {
            vec!["**Remix Generation Process Begins**\n\nInitializing remix request...\n".into()]
        }
        Event::Started(Flow::Extension { .. }) => {
            vec!["**Video Extension Process Begins**\n\nInitializing extension request...\n".into()]
        }
        Event::Started(Flow::Character { from_generation: None }) => {
            vec!["**Character Creation Begins**\n\nInitializing character creation...\n".into()]
        }
        Event::Started(Flow::Character { from_generation: Some(generation) }) => vec![
            "**Character Creation Begins**\n\nInitializing character creation from generation id...\n"
                .into(),
            format!("Creating character from generation: {generation} ...\n"),
        ],
        Event::Started(Flow::CharacterVideo) => vec![
            "**Character Creation and Video Generation Begins**\n\nInitializing...\n".into(),
        ],
        // PY's enhance stream has no progress: the first chunk is the enhanced prompt.
        Event::Started(Flow::Enhance) => vec![],

        // --- 6.9.1: image upload, storyboard, submission ---
        // The opening message of a `with_image` flow already says the upload begins.
        Event::UploadingImage => vec![],
        Event::ImageUploaded => vec![
            "Image uploaded successfully. Proceeding to generation...\n".into(),
            "**Generation Process Begins**\n\nInitializing generation request...\n".into(),
        ],
        Event::StoryboardDetected => {
            vec!["Detected storyboard format. Converting to storyboard API format...\n".into()]
        }
        Event::Submitting => match flow {
            Some(Flow::Remix) => vec!["Sending remix request to server...\n".into()],
            Some(Flow::Extension { generation_id, seconds }) => vec![format!(
                "Submitting extension task...\n- generation_id: {generation_id}\n- extension_duration_s: {seconds}\n\n"
            )],
            _ => vec![],
        },

        // --- 6.9.1: progress while the upstream works ---
        Event::VideoProgress { percent, status } => vec![format!(
            "\n**Video Generation Progress**: {}% ({status})\n",
            whole_percent(*percent)
        )],
        Event::ImageProgress { percent } => vec![format!(
            "**Processing**\n\nGeneration in progress: {:.0}% completed...\n",
            clamp_percent(*percent)
        )],
        Event::EstimatedProgress { percent } => vec![format!(
            "**Processing**\n\nGeneration in progress: {:.0}% completed (estimated)...\n",
            clamp_percent(*percent)
        )],
        Event::ImageHeartbeat { elapsed_secs } => {
            vec![format!("Image generation in progress... ({elapsed_secs}s elapsed)\n")]
        }

        // --- 6.9.2: retries (PY: `**生成失败，正在重试**...`, 401 notice with real newlines) ---
        Event::Retrying { attempt, max, reason } => {
            vec![format!("Generation failed, retrying (attempt {attempt} of {max}): {reason}\n")]
        }
        Event::TokenDisabled { token_id } => vec![format!(
            "**Detected a 401 error, token {token_id} was disabled automatically**\n\nRetrying with another token...\n\n"
        )],

        // --- 6.9.5: character flows ---
        Event::Character(step) => vec![character_step(step)],

        // --- terminal events: what is shown before the final answer ---
        Event::Completed(TaskResult::Images(urls)) => vec![
            format!(
                "**Image Generation Completed**\n\nImage generation successful. Now caching {} image(s)...\n",
                urls.len()
            ),
            "Cache is disabled. Using original URLs directly...\n".into(),
        ],
        Event::Completed(TaskResult::Videos(_)) => {
            vec!["**Video Generation Completed**\n\nCache is disabled. Using original URL directly...\n".into()]
        }
        Event::Completed(TaskResult::Character(_) | TaskResult::EnhancedPrompt(_)) => vec![],
        Event::ContentViolation { reason } => {
            vec![format!("**Content Policy Violation**\n\n{reason}\n")]
        }
        Event::Failed(_) => vec![],
    }
}

/// The text of one character-flow step (6.9.5; `✨ 角色已识别` translated).
fn character_step(step: &CharacterStep) -> String {
    match step {
        CharacterStep::DownloadingVideo => "Downloading video file...\n".into(),
        CharacterStep::UploadingVideo => "Uploading video file...\n".into(),
        CharacterStep::ProcessingVideo => "Processing video to extract character...\n".into(),
        CharacterStep::ProcessingGeneration => {
            "Processing generation to extract character...\n".into()
        }
        CharacterStep::Recognised { display_name, username } => {
            format!("✨ Character recognised: {display_name} (@{username})\n")
        }
        CharacterStep::DownloadingAvatar => "Downloading character avatar...\n".into(),
        CharacterStep::UploadingAvatar => "Uploading character avatar...\n".into(),
        CharacterStep::Finalizing => "Finalizing character creation...\n".into(),
        CharacterStep::SettingPublic => "Setting character as public...\n".into(),
        CharacterStep::GeneratingVideo => {
            "**Video Generation Process Begins**\n\nGenerating video with character...\n".into()
        }
        CharacterStep::CleaningUp => "Cleaning up temporary character...\n".into(),
    }
}

/// The progress texts of `event` as one string (the concatenation of [`progress_texts`]), or
/// `None` when the event shows none.
///
/// ```
/// use sora2api_core::render::progress_text;
/// use sora2api_core::task::{Event, Flow};
///
/// let remix = Flow::Remix;
/// assert_eq!(
///     progress_text(Some(&remix), &Event::Submitting).as_deref(),
///     Some("Sending remix request to server...\n")
/// );
/// assert_eq!(progress_text(None, &Event::UploadingImage), None);
/// ```
pub fn progress_text(flow: Option<&Flow>, event: &Event) -> Option<String> {
    let texts = progress_texts(flow, event);
    if texts.is_empty() {
        None
    } else {
        Some(texts.concat())
    }
}

/// The final answer of a completed task: the `content` of the last stream chunk and of the
/// `chat.completion` message.
///
/// Images: one `![Generated Image](<url>)` per URL, joined with `\n`. Videos: one
/// ```` ```html\n<video src='<url>' controls></video>\n``` ```` block per URL, joined with `\n`.
/// A character: the "Character created" message. An enhanced prompt: the prompt itself.
///
/// ```
/// use sora2api_core::render::final_content;
/// use sora2api_core::task::TaskResult;
///
/// let images = TaskResult::Images(vec!["https://a/1.png".into(), "https://a/2.png".into()]);
/// assert_eq!(
///     final_content(&images),
///     "![Generated Image](https://a/1.png)\n![Generated Image](https://a/2.png)"
/// );
/// ```
pub fn final_content(result: &TaskResult) -> String {
    match result {
        TaskResult::Images(urls) => urls
            .iter()
            .map(|url| format!("![Generated Image]({url})"))
            .collect::<Vec<_>>()
            .join("\n"),
        TaskResult::Videos(urls) => urls
            .iter()
            .map(|url| format!("```html\n<video src='{url}' controls></video>\n```"))
            .collect::<Vec<_>>()
            .join("\n"),
        TaskResult::Character(card) => character_created(card),
        TaskResult::EnhancedPrompt(text) => text.clone(),
    }
}

/// The final message of character creation (PY: `角色创建成功，角色名@{username}\n显示名：...`).
fn character_created(card: &CharacterCard) -> String {
    format!(
        "Character created, name @{}\nDisplay name: {}\nCharacter ID: {}\nCameo ID: {}",
        card.username, card.display_name, card.character_id, card.cameo_id
    )
}

/// The final answer of a stream that ends on a content violation (6.9.1; PY: `❌ 生成失败:`).
pub fn content_violation_content(reason: &str) -> String {
    format!("❌ Generation failed: {reason}")
}

/// The error message of a failed cameo (PY: `角色创建失败: {status_message}`).
pub fn character_creation_failed(status_message: &str) -> String {
    format!("Character creation failed: {status_message}")
}

/// Extension model without a `gen_...` id in the prompt (6.9.4, translated).
pub const EXTENSION_NEEDS_GENERATION_ID: &str = "The video extension model needs a generation_id (gen_xxx) in the prompt. Example: gen_xxx A meteor shower";

/// Extension model without a prompt besides the id (6.9.4, translated).
pub const EXTENSION_NEEDS_PROMPT: &str =
    "The video extension model needs a prompt for the extension. Example: gen_xxx A meteor shower";

/// A percentage clamped to 0..=100 (NaN counts as 0).
fn clamp_percent(percent: f32) -> f32 {
    if percent.is_nan() {
        0.0
    } else {
        percent.clamp(0.0, 100.0)
    }
}

/// A percentage as a whole number, rounded down (so 99.9 never shows as 100).
fn whole_percent(percent: f32) -> u32 {
    // In 0.0..=100.0 after clamping, so the cast is exact after truncation.
    clamp_percent(percent) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn card(generation: Option<&str>) -> CharacterCard {
        CharacterCard {
            username: "user123".into(),
            display_name: "Cat \"Tom\"".into(),
            character_id: "ch_1".into(),
            cameo_id: "cameo_2".into(),
            profile_asset_url: "https://cdn/avatar.webp".into(),
            source_generation_id: generation.map(str::to_owned),
        }
    }

    /// Every event variant of every flow, with its exact texts.
    #[test]
    fn every_event_has_its_exact_texts() {
        let remix = Flow::Remix;
        let ext = Flow::Extension { generation_id: "gen_abc".into(), seconds: 10 };
        let gen = Flow::Generation { with_image: false };
        let step = |s: CharacterStep| Event::Character(s);
        let rows: Vec<(Option<&Flow>, Event, Vec<&str>)> = vec![
            // openings
            (None, Event::Started(gen.clone()), vec!["**Generation Process Begins**\n\nInitializing generation request...\n"]),
            (None, Event::Started(Flow::Generation { with_image: true }), vec!["**Image Upload Begins**\n\nUploading image to server...\n"]),
            (None, Event::Started(Flow::Remix), vec!["**Remix Generation Process Begins**\n\nInitializing remix request...\n"]),
            (None, Event::Started(ext.clone()), vec!["**Video Extension Process Begins**\n\nInitializing extension request...\n"]),
            (None, Event::Started(Flow::Character { from_generation: None }), vec!["**Character Creation Begins**\n\nInitializing character creation...\n"]),
            (
                None,
                Event::Started(Flow::Character { from_generation: Some("gen_9".into()) }),
                vec![
                    "**Character Creation Begins**\n\nInitializing character creation from generation id...\n",
                    "Creating character from generation: gen_9 ...\n",
                ],
            ),
            (None, Event::Started(Flow::CharacterVideo), vec!["**Character Creation and Video Generation Begins**\n\nInitializing...\n"]),
            (None, Event::Started(Flow::Enhance), vec![]),
            // image upload, storyboard, submission
            (None, Event::UploadingImage, vec![]),
            (
                None,
                Event::ImageUploaded,
                vec![
                    "Image uploaded successfully. Proceeding to generation...\n",
                    "**Generation Process Begins**\n\nInitializing generation request...\n",
                ],
            ),
            (None, Event::StoryboardDetected, vec!["Detected storyboard format. Converting to storyboard API format...\n"]),
            (Some(&remix), Event::Submitting, vec!["Sending remix request to server...\n"]),
            (Some(&ext), Event::Submitting, vec!["Submitting extension task...\n- generation_id: gen_abc\n- extension_duration_s: 10\n\n"]),
            (Some(&gen), Event::Submitting, vec![]),
            (None, Event::Submitting, vec![]),
            // progress
            (None, Event::VideoProgress { percent: 0.0, status: "queued".into() }, vec!["\n**Video Generation Progress**: 0% (queued)\n"]),
            (None, Event::VideoProgress { percent: 99.9, status: "running".into() }, vec!["\n**Video Generation Progress**: 99% (running)\n"]),
            (None, Event::VideoProgress { percent: 250.0, status: "x".into() }, vec!["\n**Video Generation Progress**: 100% (x)\n"]),
            (None, Event::VideoProgress { percent: f32::NAN, status: "x".into() }, vec!["\n**Video Generation Progress**: 0% (x)\n"]),
            (None, Event::ImageProgress { percent: 42.4 }, vec!["**Processing**\n\nGeneration in progress: 42% completed...\n"]),
            (None, Event::ImageProgress { percent: 42.6 }, vec!["**Processing**\n\nGeneration in progress: 43% completed...\n"]),
            (None, Event::EstimatedProgress { percent: 10.0 }, vec!["**Processing**\n\nGeneration in progress: 10% completed (estimated)...\n"]),
            (None, Event::ImageHeartbeat { elapsed_secs: 75 }, vec!["Image generation in progress... (75s elapsed)\n"]),
            // retries
            (None, Event::Retrying { attempt: 2, max: 3, reason: "heavy load".into() }, vec!["Generation failed, retrying (attempt 2 of 3): heavy load\n"]),
            (None, Event::TokenDisabled { token_id: 7 }, vec!["**Detected a 401 error, token 7 was disabled automatically**\n\nRetrying with another token...\n\n"]),
            // character steps
            (None, step(CharacterStep::DownloadingVideo), vec!["Downloading video file...\n"]),
            (None, step(CharacterStep::UploadingVideo), vec!["Uploading video file...\n"]),
            (None, step(CharacterStep::ProcessingVideo), vec!["Processing video to extract character...\n"]),
            (None, step(CharacterStep::ProcessingGeneration), vec!["Processing generation to extract character...\n"]),
            (
                None,
                step(CharacterStep::Recognised { display_name: "Character Name".into(), username: "username123".into() }),
                vec!["✨ Character recognised: Character Name (@username123)\n"],
            ),
            (None, step(CharacterStep::DownloadingAvatar), vec!["Downloading character avatar...\n"]),
            (None, step(CharacterStep::UploadingAvatar), vec!["Uploading character avatar...\n"]),
            (None, step(CharacterStep::Finalizing), vec!["Finalizing character creation...\n"]),
            (None, step(CharacterStep::SettingPublic), vec!["Setting character as public...\n"]),
            (None, step(CharacterStep::GeneratingVideo), vec!["**Video Generation Process Begins**\n\nGenerating video with character...\n"]),
            (None, step(CharacterStep::CleaningUp), vec!["Cleaning up temporary character...\n"]),
            // terminal
            (
                None,
                Event::Completed(TaskResult::Images(vec!["a".into(), "b".into()])),
                vec![
                    "**Image Generation Completed**\n\nImage generation successful. Now caching 2 image(s)...\n",
                    "Cache is disabled. Using original URLs directly...\n",
                ],
            ),
            (None, Event::Completed(TaskResult::Videos(vec!["v".into()])), vec!["**Video Generation Completed**\n\nCache is disabled. Using original URL directly...\n"]),
            (None, Event::Completed(TaskResult::Character(card(None))), vec![]),
            (None, Event::Completed(TaskResult::EnhancedPrompt("p".into())), vec![]),
            (None, Event::ContentViolation { reason: "nudity".into() }, vec!["**Content Policy Violation**\n\nnudity\n"]),
            (None, Event::Failed(Error::Internal), vec![]),
        ];
        for (flow, event, want) in rows {
            assert_eq!(progress_texts(flow, &event), want, "{event:?}");
            let joined = (!want.is_empty()).then(|| want.concat());
            assert_eq!(progress_text(flow, &event), joined, "{event:?}");
        }
    }

    #[test]
    fn no_text_keeps_a_literal_backslash_n() {
        let events = [
            Event::TokenDisabled { token_id: 1 },
            Event::Retrying { attempt: 1, max: 2, reason: "r".into() },
            Event::Started(Flow::CharacterVideo),
        ];
        for e in events {
            let text = progress_text(None, &e).unwrap_or_default();
            assert!(!text.contains("\\n"), "{text:?}");
            assert!(text.ends_with('\n'), "{text:?}");
        }
    }

    #[test]
    fn final_contents() {
        let rows = [
            (TaskResult::Images(vec!["https://x/1.png".into()]), "![Generated Image](https://x/1.png)".to_owned()),
            (
                TaskResult::Images(vec!["u1".into(), "u2".into()]),
                "![Generated Image](u1)\n![Generated Image](u2)".to_owned(),
            ),
            (TaskResult::Images(vec![]), String::new()),
            (
                TaskResult::Videos(vec!["https://x/v.mp4".into()]),
                "```html\n<video src='https://x/v.mp4' controls></video>\n```".to_owned(),
            ),
            (
                TaskResult::Videos(vec!["a".into(), "b".into()]),
                "```html\n<video src='a' controls></video>\n```\n```html\n<video src='b' controls></video>\n```".to_owned(),
            ),
            (
                TaskResult::Character(card(None)),
                "Character created, name @user123\nDisplay name: Cat \"Tom\"\nCharacter ID: ch_1\nCameo ID: cameo_2".to_owned(),
            ),
            (TaskResult::EnhancedPrompt("A cat, golden hour".into()), "A cat, golden hour".to_owned()),
        ];
        for (result, want) in rows {
            assert_eq!(final_content(&result), want, "{result:?}");
        }
    }

    #[test]
    fn helper_texts() {
        assert_eq!(content_violation_content("nudity"), "❌ Generation failed: nudity");
        assert_eq!(character_creation_failed("failed"), "Character creation failed: failed");
        assert!(EXTENSION_NEEDS_GENERATION_ID.contains("gen_xxx"));
        assert!(EXTENSION_NEEDS_PROMPT.starts_with("The video extension model needs a prompt"));
    }
}
