//! Task events -> server-sent-event frames of OpenAI `chat.completion.chunk`s.

use serde::Serialize;

use super::json::{character_card_line, completion_id, to_json};
use super::text::{content_violation_content, final_content, progress_texts};
use crate::error::Error;
use crate::record::Ending;
use crate::task::{Event, Flow, TaskId, TaskResult};

/// An SSE comment the shell sends whenever nothing else was sent for a while (client-api.md:
/// at least every 15 s), so proxies keep long streams open. Clients ignore it.
pub const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// The frame that ends every stream, exactly once.
pub const DONE: &str = "data: [DONE]\n\n";

/// Renders one task's events as the SSE frames of one stream (sora-backend.md 6.8,
/// decisions 3).
///
/// Contract: create one renderer per client stream; feed it the task's events in order with
/// [`event`](Self::event) (or a failure that happens outside the task with
/// [`error`](Self::error)) and send every returned string as it is. Each string is zero or more
/// complete frames `data: <json>\n\n`. A terminal event ends the stream with exactly one
/// `data: [DONE]\n\n`; after that every call returns an empty string, so nothing is ever sent
/// after `[DONE]`. Between events the shell may send [`KEEP_ALIVE`] while
/// [`is_finished`](Self::is_finished) is false.
///
/// Every chunk carries the same `id` (`chatcmpl-<task id>`), `created` and `model` (the
/// requested model id); only the first chunk carries `delta.role`. Progress goes out as
/// `delta.reasoning_content`; the result as `delta.content` with `finish_reason: "stop"`.
///
/// ```
/// use sora2api_core::render::StreamRenderer;
/// use sora2api_core::task::{Event, Flow, TaskId, TaskResult};
///
/// let id = TaskId::new(1_730_000_000_000, 1);
/// let mut sse = StreamRenderer::new(&id, 1_730_000_000, "gpt-image");
/// let first = sse.event(&Event::Started(Flow::Generation { with_image: false }));
/// assert!(first.starts_with("data: {") && first.ends_with("}\n\n"));
/// assert!(first.contains(r#""role":"assistant""#));
/// let last = sse.event(&Event::Completed(TaskResult::Images(vec!["https://x/1.png".into()])));
/// assert!(last.ends_with("data: [DONE]\n\n"));
/// assert!(sse.is_finished());
/// assert_eq!(sse.event(&Event::Submitting), "");
/// ```
#[derive(Debug, Clone)]
pub struct StreamRenderer {
    id: String,
    created: u64,
    model: String,
    /// The flow of the `Started` event, for flow-dependent texts.
    flow: Option<Flow>,
    /// Whether a chunk (with `role`) has gone out.
    role_sent: bool,
    /// Whether `[DONE]` has gone out.
    finished: bool,
}

/// One `chat.completion.chunk` (keys in OpenAI's order).
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChunkChoice<'a>; 1],
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

/// `content` and `reasoning_content` are always present (the unused one is `null`), as in
/// 6.8; `role` only on the first chunk.
#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    content: Option<&'a str>,
    reasoning_content: Option<&'a str>,
}

// === impl StreamRenderer ===

impl StreamRenderer {
    /// A renderer for the stream of task `id`, created at `created_unix_s`, for the model id
    /// the client requested.
    pub fn new(id: &TaskId, created_unix_s: u64, model: &str) -> Self {
        StreamRenderer {
            id: completion_id(id),
            created: created_unix_s,
            model: model.to_owned(),
            flow: None,
            role_sent: false,
            finished: false,
        }
    }

    /// Whether the stream has ended (`[DONE]` was returned); nothing more will be rendered.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The frames for one event: reasoning chunks for progress; for a terminal event also the
    /// final content chunk (or the error frame) and `[DONE]`. Empty once finished.
    pub fn event(&mut self, event: &Event) -> String {
        let mut out = String::new();
        if self.finished {
            return out;
        }
        if let Event::Started(flow) = event {
            self.flow = Some(flow.clone());
        }
        for text in progress_texts(self.flow.as_ref(), event) {
            self.chunk(&mut out, None, Some(&text), None);
        }
        match event {
            Event::Completed(result) => {
                if let TaskResult::Character(card) = result {
                    // PY HEAD's machine-readable card line (6.9.5 item 6), before the message.
                    self.chunk(&mut out, Some(&character_card_line(card)), None, None);
                }
                self.chunk(&mut out, Some(&final_content(result)), None, Some("stop"));
                self.done(&mut out);
            }
            // A violation is a normal end (decisions 5): the reason as content, then stop.
            Event::ContentViolation { reason } => {
                self.chunk(&mut out, Some(&content_violation_content(reason)), None, Some("stop"));
                self.done(&mut out);
            }
            Event::Failed(err) => out.push_str(&self.error(err)),
            _ => {}
        }
        out
    }

    /// The frames that end the stream as `ending` says (a result, a content violation, or an
    /// error frame), then `[DONE]`: for a stream that learns the ending from the stored record
    /// instead of the event. Empty once finished.
    pub fn end(&mut self, ending: &Ending) -> String {
        match ending {
            Ending::Completed(result) => self.event(&Event::Completed(result.clone())),
            Ending::ContentViolation { reason } => {
                self.event(&Event::ContentViolation { reason: reason.clone() })
            }
            Ending::Failed(err) => {
                let mut out = String::new();
                if !self.finished {
                    push_frame(&mut out, &err.envelope().to_string());
                    self.done(&mut out);
                }
                out
            }
        }
    }

    /// Ends the stream with an error: one `data: {"error":{...}}` frame in the envelope of
    /// client-api.md, then `[DONE]`. Empty once finished.
    pub fn error(&mut self, err: &Error) -> String {
        let mut out = String::new();
        if self.finished {
            return out;
        }
        push_frame(&mut out, &err.envelope().to_string());
        self.done(&mut out);
        out
    }

    /// Appends one chunk frame.
    fn chunk(
        &mut self,
        out: &mut String,
        content: Option<&str>,
        reasoning_content: Option<&str>,
        finish_reason: Option<&'static str>,
    ) {
        let role = (!self.role_sent).then_some("assistant");
        self.role_sent = true;
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [ChunkChoice {
                index: 0,
                delta: Delta { role, content, reasoning_content },
                finish_reason,
            }],
        };
        push_frame(out, &to_json(&chunk));
    }

    /// Appends `[DONE]` and ends the stream.
    fn done(&mut self, out: &mut String) {
        out.push_str(DONE);
        self.finished = true;
    }
}

/// Appends `data: <json>\n\n`.
fn push_frame(out: &mut String, json: &str) {
    out.push_str("data: ");
    out.push_str(json);
    out.push_str("\n\n");
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::error::TokenWork;
    use crate::task::{CharacterCard, CharacterStep};

    const CREATED: u64 = 1_730_000_000;

    fn task_id() -> TaskId {
        TaskId::new(1_730_000_000_123, 0xabcdef)
    }

    fn chunk_id() -> String {
        format!("chatcmpl-{}", task_id())
    }

    /// Splits a stream into its frames' payloads, checking the framing on the way.
    fn frames(stream: &str) -> Vec<&str> {
        assert!(stream.ends_with("\n\n"), "{stream:?}");
        let body = &stream[..stream.len() - 2];
        body.split("\n\n")
            .map(|f| f.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data frame: {f:?}")))
            .collect()
    }

    /// Feeds every event; returns the whole stream and checks the common invariants: one id,
    /// created, model and object on every chunk, role on the first only, `[DONE]` exactly once
    /// at the end, nothing after it.
    fn run(model: &str, events: &[Event]) -> (String, Vec<Value>) {
        let mut r = StreamRenderer::new(&task_id(), CREATED, model);
        let mut stream = String::new();
        for e in events {
            assert!(!r.is_finished(), "event after the end in the test script: {e:?}");
            stream.push_str(&r.event(e));
        }
        assert!(r.is_finished());
        // Nothing after the end, whatever comes.
        for e in events {
            assert_eq!(r.event(e), "");
        }
        assert_eq!(r.error(&Error::Internal), "");
        assert_eq!(stream.matches(DONE).count(), 1, "{stream}");
        assert!(stream.ends_with(DONE));
        let payloads = frames(&stream);
        assert_eq!(payloads.last(), Some(&"[DONE]"));
        let mut values = Vec::new();
        for p in &payloads[..payloads.len() - 1] {
            let v: Value = serde_json::from_str(p).unwrap_or_else(|e| panic!("{e}: {p}"));
            values.push(v);
        }
        let chunks: Vec<&Value> = values.iter().filter(|v| v.get("error").is_none()).collect();
        let ends_with_error = values.last().is_some_and(|v| v.get("error").is_some());
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c["id"], json!(chunk_id()));
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["created"], json!(CREATED));
            assert_eq!(c["model"], model);
            let choices = c["choices"].as_array().unwrap();
            assert_eq!(choices.len(), 1);
            assert_eq!(choices[0]["index"], 0);
            let delta = choices[0]["delta"].as_object().unwrap();
            assert_eq!(delta.get("role").is_some(), i == 0, "role only on the first chunk: {c}");
            if i == 0 {
                assert_eq!(delta["role"], "assistant");
            }
            assert!(delta.contains_key("content") && delta.contains_key("reasoning_content"));
            let stop = choices[0]["finish_reason"] == "stop";
            assert!(stop || choices[0]["finish_reason"].is_null());
            // Only the last chunk stops.
            assert_eq!(stop, !ends_with_error && i == chunks.len() - 1, "{c}");
        }
        (stream, values)
    }

    fn delta(v: &Value) -> (&Value, &Value) {
        let d = &v["choices"][0]["delta"];
        (&d["content"], &d["reasoning_content"])
    }

    #[test]
    fn golden_image_stream() {
        let (stream, _) = run(
            "gpt-image",
            &[
                Event::Started(Flow::Generation { with_image: false }),
                Event::ImageProgress { percent: 50.0 },
                Event::Completed(TaskResult::Images(vec!["https://cdn/a.png".into()])),
            ],
        );
        let id = chunk_id();
        let head = format!(
            r#"data: {{"id":"{id}","object":"chat.completion.chunk","created":1730000000,"model":"gpt-image","choices":[{{"index":0,"delta":{{"#
        );
        let want = [
            format!(r#"{head}"role":"assistant","content":null,"reasoning_content":"**Generation Process Begins**\n\nInitializing generation request...\n"}},"finish_reason":null}}]}}"#),
            format!(r#"{head}"content":null,"reasoning_content":"**Processing**\n\nGeneration in progress: 50% completed...\n"}},"finish_reason":null}}]}}"#),
            format!(r#"{head}"content":null,"reasoning_content":"**Image Generation Completed**\n\nImage generation successful. Now caching 1 image(s)...\n"}},"finish_reason":null}}]}}"#),
            format!(r#"{head}"content":null,"reasoning_content":"Cache is disabled. Using original URLs directly...\n"}},"finish_reason":null}}]}}"#),
            format!(r#"{head}"content":"![Generated Image](https://cdn/a.png)","reasoning_content":null}},"finish_reason":"stop"}}]}}"#),
            "data: [DONE]".to_owned(),
        ]
        .map(|f| f + "\n\n")
        .concat();
        assert_eq!(stream, want);
    }

    #[test]
    fn golden_video_stream() {
        let (stream, _) = run(
            "sora2-landscape-10s",
            &[
                Event::Started(Flow::Generation { with_image: false }),
                Event::VideoProgress { percent: 45.5, status: "running".into() },
                Event::Completed(TaskResult::Videos(vec!["https://cdn/v.mp4".into()])),
            ],
        );
        let id = chunk_id();
        let head = format!(
            r#"data: {{"id":"{id}","object":"chat.completion.chunk","created":1730000000,"model":"sora2-landscape-10s","choices":[{{"index":0,"delta":{{"#
        );
        let want = [
            format!(r#"{head}"role":"assistant","content":null,"reasoning_content":"**Generation Process Begins**\n\nInitializing generation request...\n"}},"finish_reason":null}}]}}"#),
            format!(r#"{head}"content":null,"reasoning_content":"\n**Video Generation Progress**: 45% (running)\n"}},"finish_reason":null}}]}}"#),
            format!(r#"{head}"content":null,"reasoning_content":"**Video Generation Completed**\n\nCache is disabled. Using original URL directly...\n"}},"finish_reason":null}}]}}"#),
            format!(r#"{head}"content":"```html\n<video src='https://cdn/v.mp4' controls></video>\n```","reasoning_content":null}},"finish_reason":"stop"}}]}}"#),
            "data: [DONE]".to_owned(),
        ]
        .map(|f| f + "\n\n")
        .concat();
        assert_eq!(stream, want);
    }

    #[test]
    fn content_violation_ends_normally() {
        let (stream, values) = run(
            "sora2-portrait-15s",
            &[
                Event::Started(Flow::Generation { with_image: false }),
                Event::ContentViolation { reason: "This content may violate our policies.".into() },
            ],
        );
        assert!(!stream.contains(r#""error""#));
        assert_eq!(values.len(), 3);
        assert_eq!(
            delta(&values[1]),
            (
                &Value::Null,
                &json!("**Content Policy Violation**\n\nThis content may violate our policies.\n")
            )
        );
        assert_eq!(
            delta(&values[2]),
            (&json!("❌ Generation failed: This content may violate our policies."), &Value::Null)
        );
        assert_eq!(values[2]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn failure_is_one_error_frame_then_done() {
        let err = Error::Upstream { message: "draft has no URL".into() };
        let (stream, values) = run(
            "sora2-landscape-10s",
            &[Event::Started(Flow::Remix), Event::Submitting, Event::Failed(err.clone())],
        );
        assert_eq!(values.len(), 3);
        assert_eq!(delta(&values[1]).1, "Sending remix request to server...\n");
        let want = format!("data: {}\n\ndata: [DONE]\n\n", err.envelope());
        assert!(stream.ends_with(&want), "{stream}");
        assert_eq!(
            values[2],
            json!({"error": {
                "message": "Upstream generation failed: draft has no URL",
                "type": "server_error", "param": null, "code": "upstream_error"
            }})
        );
    }

    #[test]
    fn error_before_any_event_and_then_silence() {
        let mut r = StreamRenderer::new(&task_id(), CREATED, "gpt-image");
        let err = Error::NoAvailableTokens { work: TokenWork::Image, retry_after_secs: 30 };
        let out = r.error(&err);
        assert_eq!(out, format!("data: {}\n\ndata: [DONE]\n\n", err.envelope()));
        assert!(r.is_finished());
        assert_eq!(r.error(&err), "");
        assert_eq!(r.event(&Event::Started(Flow::Remix)), "");
        assert_eq!(r.event(&Event::Completed(TaskResult::Images(vec![]))), "");
    }

    #[test]
    fn character_stream_has_card_line_then_message() {
        let card = CharacterCard {
            username: "cat.tom".into(),
            display_name: "Tom 猫".into(),
            character_id: "ch_1".into(),
            cameo_id: "cameo_1".into(),
            profile_asset_url: "https://cdn/a.webp".into(),
            source_generation_id: None,
        };
        let (_, values) = run(
            "avatar-create",
            &[
                Event::Started(Flow::Character { from_generation: None }),
                Event::Character(CharacterStep::UploadingVideo),
                Event::Character(CharacterStep::Recognised {
                    display_name: "Tom 猫".into(),
                    username: "cat.tom".into(),
                }),
                Event::Completed(TaskResult::Character(card)),
            ],
        );
        assert_eq!(values.len(), 5);
        assert_eq!(delta(&values[2]).1, "✨ Character recognised: Tom 猫 (@cat.tom)\n");
        let line = delta(&values[3]).0.as_str().unwrap();
        assert!(line.ends_with('\n'));
        let card: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(card["event"], "character_card");
        assert_eq!(card["card"]["display_name"], "Tom 猫");
        assert_eq!(values[3]["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(
            delta(&values[4]).0,
            "Character created, name @cat.tom\nDisplay name: Tom 猫\nCharacter ID: ch_1\nCameo ID: cameo_1"
        );
    }

    #[test]
    fn enhance_stream_is_one_content_chunk_then_done() {
        let (stream, values) = run(
            "prompt-enhance-short-10s",
            &[
                Event::Started(Flow::Enhance),
                Event::Completed(TaskResult::EnhancedPrompt("A \"cat\"\nrunning".into())),
            ],
        );
        assert_eq!(values.len(), 1);
        let d = &values[0]["choices"][0]["delta"];
        assert_eq!(d["role"], "assistant");
        assert_eq!(d["content"], "A \"cat\"\nrunning");
        assert_eq!(d["reasoning_content"], Value::Null);
        assert!(stream.contains(r#""content":"A \"cat\"\nrunning""#), "escaped: {stream}");
    }

    #[test]
    fn extension_and_retries_use_the_remembered_flow() {
        let (_, values) = run(
            "sora2-extension-10s",
            &[
                Event::Started(Flow::Extension { generation_id: "gen_1".into(), seconds: 10 }),
                Event::Submitting,
                Event::Retrying { attempt: 2, max: 3, reason: "upstream busy".into() },
                Event::TokenDisabled { token_id: 4 },
                Event::Submitting,
                Event::Completed(TaskResult::Videos(vec!["v".into()])),
            ],
        );
        let reasoning: Vec<&str> = values.iter().filter_map(|v| delta(v).1.as_str()).collect();
        assert_eq!(
            reasoning,
            [
                "**Video Extension Process Begins**\n\nInitializing extension request...\n",
                "Submitting extension task...\n- generation_id: gen_1\n- extension_duration_s: 10\n\n",
                "Generation failed, retrying (attempt 2 of 3): upstream busy\n",
                "**Detected a 401 error, token 4 was disabled automatically**\n\nRetrying with another token...\n\n",
                "Submitting extension task...\n- generation_id: gen_1\n- extension_duration_s: 10\n\n",
                "**Video Generation Completed**\n\nCache is disabled. Using original URL directly...\n",
            ]
        );
    }

    #[test]
    fn silent_events_send_nothing_and_role_waits_for_the_first_chunk() {
        let mut r = StreamRenderer::new(&task_id(), CREATED, "gpt-image");
        assert_eq!(r.event(&Event::Started(Flow::Enhance)), "");
        assert_eq!(r.event(&Event::UploadingImage), "");
        let first = r.event(&Event::ImageHeartbeat { elapsed_secs: 5 });
        assert_eq!(frames(&first).len(), 1);
        assert!(first.contains(r#""role":"assistant""#));
        let second = r.event(&Event::ImageHeartbeat { elapsed_secs: 10 });
        assert!(!second.contains("role"));
        assert!(!r.is_finished());
    }

    #[test]
    fn keep_alive_is_an_sse_comment() {
        assert!(KEEP_ALIVE.starts_with(':') && KEEP_ALIVE.ends_with("\n\n"));
        assert_eq!(DONE, "data: [DONE]\n\n");
    }
}
