use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::*;
use crate::render::task_json;
use crate::task::CharacterCard;
use crate::translate::{self, Endpoint, Limits};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake png";
const MP4: &[u8] = b"\0\0\0\x18ftypmp42 fake mp4";
const REMIX: &str = "s_68e3a06dcd888191b150971da152c1f5";
const T0: u64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

fn ded(endpoint: Endpoint, body: Value) -> ClientCall {
    translate::dedicated(endpoint, body.to_string().as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

fn chat(model: &str, content: &str, extra: Value) -> ClientCall {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": content}]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    translate::chat(body.to_string().as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

fn id(n: u128) -> TaskId {
    TaskId::new(T0, n)
}

/// A call of every operation, with every optional part somewhere.
fn calls() -> Vec<(&'static str, ClientCall)> {
    let png = B64.encode(PNG);
    let mp4 = B64.encode(MP4);
    vec![
        ("text to image", chat("gpt-image", "A cat", json!({}))),
        (
            "image to image",
            ded(Endpoint::ImagesTransform, json!({"prompt": "Make it blue", "image": png})),
        ),
        (
            "text to video, style",
            chat("sora2-landscape-10s", "{anime}A cat running", json!({"stream": true})),
        ),
        (
            "image to video, style",
            ded(
                Endpoint::VideosTransform,
                json!({"prompt": "It flies", "image": format!("data:image/png;base64,{png}"), "style": "Retro", "async_mode": true}),
            ),
        ),
        (
            "remix, share link, style",
            ded(
                Endpoint::VideosRemix,
                json!({"prompt": "make it rain", "remix_target_id": format!("https://sora.chatgpt.com/p/{REMIX}"), "style": "comic", "model": "sora2pro-portrait-15s"}),
            ),
        ),
        (
            "storyboard, preamble, image",
            ded(
                Endpoint::VideosStoryboard,
                json!({"prompt": "A sunny day, warm light\n[5.0s]The cat jumps out of the plane [5s]The cat lands [2.25s]It waves", "image": png, "style": "golden"}),
            ),
        ),
        (
            "fenced storyboard",
            chat(
                "sora2-portrait-10s",
                "```text\n[5.0s]The cat jumps [x] out\n[5.0s]The cat lands\n```",
                json!({}),
            ),
        ),
        ("extension", chat("sora2-extension-15s", "gen_01abcXYZ meteor shower", json!({}))),
        ("prompt enhance", chat("prompt-enhance-long-20s", " a cat ", json!({"stream": true}))),
        (
            "character, inline video, timestamps",
            ded(Endpoint::CharactersCreate, json!({"video": mp4, "timestamps": "0,3"})),
        ),
        (
            "character, URL video",
            ded(
                Endpoint::CharactersCreate,
                json!({"video": "https://cdn.example.com/clip.mp4", "timestamps": [1.5, 4.25]}),
            ),
        ),
        ("character from generation", chat("avatar-create", "make one from gen_abc123", json!({}))),
        (
            "character video, inline",
            ded(
                Endpoint::CharactersGenerate,
                json!({"prompt": "dances", "video": mp4, "timestamps": "0.5,2"}),
            ),
        ),
        (
            "character video, URL",
            ded(
                Endpoint::CharactersGenerate,
                json!({"prompt": "waves", "video": "https://cdn.example.com/c.webm", "model": "sora2-portrait-10s"}),
            ),
        ),
    ]
}

fn round_trip(rec: &TaskRecord) -> TaskRecord {
    let bytes = rec.to_bytes();
    let back = TaskRecord::from_bytes(&bytes).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&bytes));
    });
    assert_eq!(&back, rec);
    assert_eq!(back.to_bytes(), bytes, "encoding is stable");
    back
}

fn json_of(rec: &TaskRecord) -> Value {
    serde_json::from_slice(&rec.to_bytes()).unwrap()
}

fn from_json(value: &Value) -> Result<TaskRecord, RecordError> {
    TaskRecord::from_bytes(value.to_string().as_bytes())
}

// === round trips ===

#[test]
fn every_operation_round_trips() {
    let mut names = std::collections::BTreeSet::new();
    for (n, (name, call)) in calls().into_iter().enumerate() {
        names.insert(call.request.operation.name());
        let mut rec = TaskRecord::new(id(n as u128), &call, T0 + n as u64);
        assert_eq!(rec.kind, call.request.operation.task_kind(), "{name}");
        let back = round_trip(&rec);
        assert_eq!(back.request, call.request, "{name}");
        // And mid-flight, with a checkpoint.
        rec.apply(T0 + 5_000, &Event::VideoProgress { percent: 33.3, status: "running".into() });
        rec.checkpoint = Some(r#"{"attempt":1,"upstream_task":"task_01k"}"#.into());
        round_trip(&rec);
    }
    assert_eq!(names.len(), 10, "every Operation variant: {names:?}");
}

#[test]
fn the_parts_survive() {
    let calls = calls();
    let get = |name: &str| &calls.iter().find(|(n, _)| *n == name).unwrap().1;
    let back = |name: &str| round_trip(&TaskRecord::new(id(1), get(name), T0)).request.operation;
    match back("storyboard, preamble, image") {
        Operation::Storyboard { storyboard, image: Some(image), style: Some(style) } => {
            assert_eq!(storyboard.preamble.as_deref(), Some("A sunny day, warm light"));
            assert_eq!(storyboard.shots.len(), 3);
            assert_eq!(storyboard.shots[1].duration.as_str(), "5");
            assert_eq!(&image.bytes[..], PNG);
            assert_eq!(style.id, "golden");
        }
        other => panic!("{other:?}"),
    }
    match back("remix, share link, style") {
        Operation::Remix { target, style, .. } => {
            assert_eq!(target.as_str(), REMIX);
            assert_eq!(style.map(|s| s.id), Some("comic"));
        }
        other => panic!("{other:?}"),
    }
    match back("character, inline video, timestamps") {
        Operation::CharacterCreate {
            source: CharacterSource::Video(VideoInput::Inline(video)),
            timestamps: Some(t),
        } => {
            assert_eq!((&video.bytes[..], t.start_ms, t.end_ms), (MP4, 0, 3000));
        }
        other => panic!("{other:?}"),
    }
    match back("character, URL video") {
        Operation::CharacterCreate {
            source: CharacterSource::Video(VideoInput::Url(url)),
            timestamps: Some(t),
        } => assert_eq!(
            (url.as_str(), t.start_ms, t.end_ms),
            ("https://cdn.example.com/clip.mp4", 1500, 4250)
        ),
        other => panic!("{other:?}"),
    }
    match back("character from generation") {
        Operation::CharacterCreate { source: CharacterSource::Generation(g), timestamps: None } => {
            assert_eq!(g.as_str(), "gen_abc123")
        }
        other => panic!("{other:?}"),
    }
    match back("extension") {
        Operation::Extension { generation, prompt } => {
            assert_eq!((generation.as_str(), prompt.as_str()), ("gen_01abcXYZ", "meteor shower"))
        }
        other => panic!("{other:?}"),
    }
    let rec = TaskRecord::new(id(2), get("remix, share link, style"), T0);
    assert_eq!(rec.model, "sora2pro-portrait-15s");
    assert_eq!(round_trip(&rec).request.model.id, "sora2pro-portrait-15s");
    let rec = TaskRecord::new(id(3), get("prompt enhance"), T0);
    assert_eq!((rec.client_prompt.as_str(), rec.mode), (" a cat ", ResponseMode::Stream));
}

#[test]
fn every_status_and_result_round_trips() {
    let calls = calls();
    let results = [
        TaskResult::Images(vec!["https://x/1.png".into(), "https://x/2.png".into()]),
        TaskResult::Videos(vec!["https://x/v.mp4".into()]),
        TaskResult::Character(card()),
        TaskResult::EnhancedPrompt("A long prompt\nwith \"quotes\" and ünïcode".into()),
    ];
    for (n, result) in results.into_iter().enumerate() {
        let mut rec = TaskRecord::new(id(n as u128), &calls[0].1, T0);
        assert!(rec.apply(T0 + 1, &Event::Completed(result)));
        round_trip(&rec);
    }
    let mut rec = TaskRecord::new(id(9), &calls[2].1, T0);
    rec.apply(T0 + 1, &Event::Failed(Error::invalid("prompt", "bad")));
    assert_eq!(rec.error.as_ref().and_then(|e| e.param.as_deref()), Some("prompt"));
    round_trip(&rec);
}

#[test]
fn progress_floats_round_trip_exactly() {
    let mut rec = TaskRecord::new(id(1), &calls()[0].1, T0);
    let mut x: u32 = 0x1234_5678;
    let mut values = vec![0.0, 0.1, 1e-7, 33.333_332, 45.5, 99.99, 100.0, f32::MIN_POSITIVE];
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        values.push((x as f32 / u32::MAX as f32) * 100.0);
    }
    for v in values {
        rec.progress = v;
        round_trip(&rec);
    }
    // Values apply cannot produce are made valid on write.
    for (v, stored) in [(f32::NAN, 0.0), (f32::INFINITY, 0.0), (-5.0, 0.0), (250.0, 100.0)] {
        rec.progress = v;
        assert_eq!(TaskRecord::from_bytes(&rec.to_bytes()).unwrap().progress, stored);
    }
}

fn card() -> CharacterCard {
    CharacterCard {
        username: "catfan123".into(),
        display_name: "Cat Fan".into(),
        character_id: "ch_1".into(),
        cameo_id: "cameo_1".into(),
        profile_asset_url: "https://x/a.png".into(),
        source_generation_id: Some("gen_abc123".into()),
    }
}

// === apply and view ===

#[test]
fn progress_never_goes_backwards_and_completion_is_durable() {
    let mut rec = TaskRecord::new(id(1), &calls()[2].1, T0);
    let steps: [(f32, f32); 7] = [
        (10.0, 10.0),
        (5.0, 10.0),
        (f32::NAN, 10.0),
        (-3.0, 10.0),
        (30.5, 30.5),
        (20.0, 30.5),
        (f32::INFINITY, 30.5),
    ];
    for (i, (percent, want)) in steps.into_iter().enumerate() {
        let t = T0 + 1000 * i as u64;
        let ev = match i % 3 {
            0 => Event::VideoProgress { percent, status: "running".into() },
            1 => Event::ImageProgress { percent },
            _ => Event::EstimatedProgress { percent },
        };
        assert!(!rec.apply(t, &ev), "progress is not durable");
        assert_eq!(rec.progress, want, "step {i}");
        assert_eq!((rec.status, rec.updated_at_ms), (TaskStatus::Processing, t));
    }
    for ev in [
        Event::Started(crate::task::Flow::Generation { with_image: false }),
        Event::Submitting,
        Event::Retrying { attempt: 2, max: 3, reason: "heavy load".into() },
        Event::TokenDisabled { token_id: 4 },
        Event::ImageHeartbeat { elapsed_secs: 30 },
    ] {
        assert!(!rec.apply(T0 + 7_000, &ev));
        assert_eq!((rec.status, rec.progress), (TaskStatus::Processing, 30.5));
    }
    // A late clock never moves updated_at back.
    rec.apply(T0, &Event::Submitting);
    assert_eq!(rec.updated_at_ms, T0 + 7_000);
    assert!(!rec.is_finished());

    let urls = vec!["https://cdn.example/v.mp4".to_owned()];
    assert!(rec.apply(T0 + 60_000, &Event::Completed(TaskResult::Videos(urls.clone()))));
    assert_eq!(rec.status, TaskStatus::Completed);
    assert_eq!(rec.progress, 100.0);
    assert_eq!(rec.result, Some(TaskResult::Videos(urls)));
    assert_eq!(rec.completed_at_ms, Some(T0 + 60_000));
    assert!(rec.is_finished() && rec.error.is_none());

    // A finished record no longer changes.
    let before = rec.clone();
    assert!(!rec.apply(T0 + 70_000, &Event::Failed(Error::Internal)));
    assert!(!rec.apply(T0 + 70_000, &Event::VideoProgress { percent: 5.0, status: "x".into() }));
    assert_eq!(rec, before);
}

#[test]
fn content_violation_fails_with_the_reason() {
    let mut rec = TaskRecord::new(id(1), &calls()[0].1, T0);
    rec.apply(T0 + 1_000, &Event::ImageProgress { percent: 40.0 });
    assert!(rec.apply(T0 + 2_000, &Event::ContentViolation { reason: "nudity".into() }));
    assert_eq!(rec.status, TaskStatus::Failed);
    assert_eq!(
        rec.error,
        Some(StoredError {
            status: 400,
            message: "Content policy violation: nudity".into(),
            code: "content_policy_violation".into(),
            param: None,
        })
    );
    assert_eq!(
        (rec.progress, rec.completed_at_ms, rec.result.as_ref()),
        (40.0, Some(T0 + 2_000), None)
    );
    let json: Value = serde_json::from_str(&task_json(&rec.view())).unwrap();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["error_message"], "Content policy violation: nudity");
    assert_eq!(json["progress"], 40.0);
    assert_eq!(json["result_urls"], Value::Null);
    assert_eq!(json["completed_at"], "2024-01-01T00:00:02.000Z");
    round_trip(&rec);
}

#[test]
fn failure_keeps_the_errors_words() {
    let mut rec = TaskRecord::new(id(1), &calls()[2].1, T0);
    rec.apply(T0 + 1_000, &Event::VideoProgress { percent: 42.0, status: "running".into() });
    assert!(rec.apply(T0 + 600_000, &Event::Failed(Error::Timeout { seconds: 600 })));
    assert_eq!(rec.status, TaskStatus::Failed);
    let err = rec.error.clone().unwrap();
    assert_eq!(
        (err.status, err.message.as_str(), err.code.as_str(), err.param),
        (504, "Generation timeout after 600 seconds", "timeout", None)
    );
    assert_eq!(rec.progress, 42.0, "a failure keeps the progress reached");
    let view = rec.view();
    assert_eq!(view.error_message.as_deref(), Some("Generation timeout after 600 seconds"));
    assert_eq!(view.completed_at_ms, Some(T0 + 600_000));
    round_trip(&rec);
}

#[test]
fn view_renders_as_task_json() {
    let calls = calls();
    // A processing video task.
    let mut rec = TaskRecord::new(id(5), &calls[2].1, T0 + 123);
    rec.apply(T0 + 5_000, &Event::VideoProgress { percent: 45.5, status: "running".into() });
    let json: Value = serde_json::from_str(&task_json(&rec.view())).unwrap();
    assert_eq!(
        json,
        json!({
            "task_id": id(5).as_str(), "task_type": "video", "status": "processing",
            "progress": 45.5, "model": "sora2-landscape-10s", "prompt": "{anime}A cat running",
            "result_urls": null, "error_message": null,
            "created_at": "2024-01-01T00:00:00.123Z", "completed_at": null,
        })
    );

    // A completed image task.
    let mut rec = TaskRecord::new(id(6), &calls[0].1, T0);
    rec.apply(T0 + 61_500, &Event::Completed(TaskResult::Images(vec!["https://x/1.png".into()])));
    let json: Value = serde_json::from_str(&task_json(&rec.view())).unwrap();
    assert_eq!(json["task_type"], "image");
    assert_eq!(json["status"], "completed");
    assert_eq!(json["progress"], 100.0);
    assert_eq!(json["result_urls"], json!(["https://x/1.png"]));
    assert_eq!(json["completed_at"], "2024-01-01T00:01:01.500Z");

    // A character task, shown under avatar-create.
    let char_call = &calls.iter().find(|(n, _)| n.starts_with("character, URL")).unwrap().1;
    let mut rec = TaskRecord::new(id(7), char_call, T0);
    rec.apply(T0 + 1, &Event::Completed(TaskResult::Character(card())));
    let json: Value = serde_json::from_str(&task_json(&round_trip(&rec).view())).unwrap();
    assert_eq!(
        (json["task_type"].as_str(), json["model"].as_str()),
        (Some("character"), Some("avatar-create"))
    );
    assert_eq!(json["result_urls"]["username"], "catfan123");
    assert_eq!(json["prompt"], "");

    // An enhance task.
    let enhance = &calls.iter().find(|(n, _)| *n == "prompt enhance").unwrap().1;
    let mut rec = TaskRecord::new(id(8), enhance, T0);
    rec.apply(T0 + 1, &Event::Completed(TaskResult::EnhancedPrompt("A cat, at dawn".into())));
    let json: Value = serde_json::from_str(&task_json(&rec.view())).unwrap();
    assert_eq!(
        (json["task_type"].as_str(), json["result_text"].as_str()),
        (Some("enhance"), Some("A cat, at dawn"))
    );
    assert_eq!(json["prompt"], " a cat ");
}

// === drop_media ===

#[test]
fn dropping_media_shrinks_the_record_and_still_round_trips() {
    let mut big = PNG.to_vec();
    big.resize(48 * 1024, 7);
    let png = B64.encode(&big);
    let mp4 = {
        let mut v = MP4.to_vec();
        v.resize(96 * 1024, 1);
        B64.encode(&v)
    };
    let calls = [
        ded(Endpoint::ImagesTransform, json!({"prompt": "blue", "image": png})),
        ded(Endpoint::VideosTransform, json!({"prompt": "fly", "image": png})),
        ded(Endpoint::VideosStoryboard, json!({"prompt": "[5s]a [5s]b", "image": png})),
        ded(Endpoint::CharactersCreate, json!({"video": mp4})),
        ded(Endpoint::CharactersGenerate, json!({"prompt": "dance", "video": mp4})),
    ];
    for call in &calls {
        let mut rec = TaskRecord::new(id(1), call, T0);
        assert!(!rec.media_dropped());
        let full = rec.to_bytes().len();
        assert!(full > 64 * 1024, "{full}");
        rec.drop_media();
        assert!(rec.media_dropped());
        let small = round_trip(&rec).to_bytes().len();
        assert!(small < 1024, "{} -> {small}", full);
        assert_eq!(rec.request.operation.name(), call.request.operation.name());
        rec.drop_media();
        assert_eq!(rec.to_bytes().len(), small, "idempotent");
    }
    // Nothing inline: nothing changes.
    for (_, call) in calls_without_inline_media() {
        let mut rec = TaskRecord::new(id(2), &call, T0);
        let before = rec.clone();
        rec.drop_media();
        assert_eq!(rec, before);
        assert!(!rec.media_dropped());
    }
}

fn calls_without_inline_media() -> Vec<(&'static str, ClientCall)> {
    let inline = [
        "image to image",
        "image to video, style",
        "storyboard, preamble, image",
        "character, inline video, timestamps",
        "character video, inline",
    ];
    calls().into_iter().filter(|(n, _)| !inline.contains(n)).collect()
}

// === bad bytes ===

#[test]
fn versions_are_checked() {
    let rec = TaskRecord::new(id(1), &calls()[3].1, T0);
    let mut value = json_of(&rec);
    assert_eq!(value["v"], 1);
    value["v"] = json!(2);
    assert_eq!(from_json(&value), Err(RecordError::UnsupportedVersion(2)));
    let old = json!({"v": 0, "task": "task_x", "state": {"progress": 3}});
    assert_eq!(from_json(&old), Err(RecordError::UnsupportedVersion(0)));
    if let Some(obj) = value.as_object_mut() {
        obj.remove("v");
    }
    assert!(matches!(from_json(&value), Err(RecordError::Malformed(_))));
    let err = RecordError::UnsupportedVersion(7).to_string();
    assert!(err.contains("version 7") && err.contains("reads 1"), "{err}");
}

#[test]
fn invalid_fields_are_named() {
    let calls = calls();
    let call = |name: &str| calls.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, &str, Edit)> = vec![
        ("text to image", "request.model", |v| v["request"]["model"] = json!("sora3-fancy")),
        ("text to video, style", "request.style", |v| {
            v["request"]["operation"]["text_to_video"]["style"] = json!("vaporwave")
        }),
        ("remix, share link, style", "request.target", |v| {
            v["request"]["operation"]["remix"]["target"] = json!("s_ABC")
        }),
        ("remix, share link, style", "request.target", |v| {
            v["request"]["operation"]["remix"]["target"] =
                json!(format!("https://sora.chatgpt.com/p/{REMIX}"))
        }),
        ("extension", "request.generation", |v| {
            v["request"]["operation"]["extension"]["generation"] = json!("gen_")
        }),
        ("character from generation", "request.source.generation", |v| {
            v["request"]["operation"]["character_create"]["source"]["generation"] = json!("gen_a b")
        }),
        ("storyboard, preamble, image", "request.storyboard", |v| {
            v["request"]["operation"]["storyboard"]["storyboard"] = json!("[0s]nothing")
        }),
        ("storyboard, preamble, image", "request.storyboard", |v| {
            v["request"]["operation"]["storyboard"]["storyboard"] = json!("no shots at all")
        }),
        ("image to image", "request.image", |v| {
            v["request"]["operation"]["image_to_image"]["image"]["format"] = json!("bmp")
        }),
        ("character video, inline", "request.video", |v| {
            v["request"]["operation"]["character_video"]["video"]["inline"]["format"] = json!("avi")
        }),
        ("character, inline video, timestamps", "request.timestamps", |v| {
            v["request"]["operation"]["character_create"]["timestamps"] =
                json!({"start_ms": 3000, "end_ms": 3000})
        }),
        ("text to image", "id", |v| v["id"] = json!("task_../../etc/passwd")),
        ("text to image", "kind", |v| v["kind"] = json!("video")),
        ("text to image", "kind", |v| v["kind"] = json!("audio")),
        ("text to image", "mode", |v| v["mode"] = json!("later")),
        ("text to image", "status", |v| v["status"] = json!("done")),
        ("text to image", "progress", |v| v["progress"] = json!(100.5)),
        ("text to image", "progress", |v| v["progress"] = json!(-1)),
        ("text to image", "error.status", |v| {
            v["error"] = json!({"status": 200, "message": "ok", "code": "x", "param": null})
        }),
    ];
    for (name, field, edit) in cases {
        let mut value = json_of(&TaskRecord::new(id(1), &call(name), T0));
        edit(&mut value);
        match from_json(&value) {
            Err(RecordError::InvalidField { field: got, .. }) => assert_eq!(got, field, "{name}"),
            other => panic!("{name}: {field}: {other:?}"),
        }
    }
    // Shape errors are malformed records.
    let mut value = json_of(&TaskRecord::new(id(1), &call("image to image"), T0));
    value["request"]["operation"]["image_to_image"]["image"]["base64"] = json!("not base64!");
    assert!(matches!(from_json(&value), Err(RecordError::Malformed(m)) if m.contains("base64")));
    value["request"]["operation"] = json!({"teleport": {}});
    assert!(matches!(from_json(&value), Err(RecordError::Malformed(_))));
    let err = RecordError::InvalidField { field: "request.model", value: "x".into() };
    assert_eq!(err.to_string(), "task record field request.model is invalid: \"x\"");
}

/// xorshift64*, for the garbage loops.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_and_truncations_never_panic() {
    let calls = calls();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (n, (_, call)) in calls.iter().enumerate() {
        let mut rec = TaskRecord::new(id(n as u128), call, T0);
        rec.checkpoint = Some("{\"opaque\":true}".into());
        let bytes = rec.to_bytes();
        // Every truncation is an error.
        for len in 0..bytes.len() {
            assert!(TaskRecord::from_bytes(&bytes[..len]).is_err(), "prefix {len}");
        }
        // Random byte edits: an error, or a record that is stable when written again.
        for _ in 0..300 {
            let mut edited = bytes.clone();
            for _ in 0..=rng.below(3) {
                let at = rng.below(edited.len());
                edited[at] = match rng.below(4) {
                    0 => rng.next() as u8,
                    1 => b"{}[]\",:0\\"[rng.below(9)],
                    2 => edited[at].wrapping_add(1),
                    _ => b'a',
                };
            }
            if let Ok(rec) = TaskRecord::from_bytes(&edited) {
                round_trip(&rec);
            }
        }
    }
    // Pure garbage.
    for _ in 0..3000 {
        let len = rng.below(64);
        let garbage: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(TaskRecord::from_bytes(&garbage).is_err());
    }
    for text in ["", "null", "[]", "{}", "1", "\"v\"", r#"{"v":1}"#, r#"{"v":"1"}"#, r#"{"v":-1}"#]
    {
        assert!(TaskRecord::from_bytes(text.as_bytes()).is_err(), "{text}");
    }
}

// === upstream independence ===

/// Every key a version-1 record may contain, at any depth (the checkpoint is one string).
const KEYS: &[&str] = &[
    "v",
    "id",
    "kind",
    "model",
    "mode",
    "client_prompt",
    "request",
    "operation",
    "status",
    "progress",
    "result",
    "error",
    "created_at_ms",
    "updated_at_ms",
    "completed_at_ms",
    "checkpoint",
    "prompt",
    "image",
    "style",
    "target",
    "storyboard",
    "generation",
    "source",
    "timestamps",
    "video",
    "start_ms",
    "end_ms",
    "format",
    "base64",
    "inline",
    "url",
    "message",
    "code",
    "param",
    "images",
    "videos",
    "character",
    "enhanced_prompt",
    "username",
    "display_name",
    "character_id",
    "cameo_id",
    "profile_asset_url",
    "source_generation_id",
    "text_to_image",
    "image_to_image",
    "text_to_video",
    "image_to_video",
    "remix",
    "extension",
    "prompt_enhance",
    "character_create",
    "character_video",
];

fn keys(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn records_are_free_of_sora() {
    for (n, (name, call)) in calls().into_iter().enumerate() {
        let mut rec = TaskRecord::new(id(n as u128), &call, T0);
        rec.checkpoint = Some(r#"{"upstream_task":"task_01k","model":"sy_ore","s_":1}"#.into());
        rec.apply(T0 + 1, &Event::Completed(TaskResult::Character(card())));
        let mut value = json_of(&rec);
        let mut found = Vec::new();
        keys(&value, &mut found);
        for key in &found {
            assert!(KEYS.contains(&key.as_str()), "{name}: unexpected key {key}");
        }
        // Outside the checkpoint nothing names the upstream's vocabulary.
        value["checkpoint"] = Value::Null;
        let text = value.to_string();
        for word in ["sy_8", "sy_ore", "nf/create", "sentinel", "upstream"] {
            assert!(!text.contains(word), "{name}: {word} in {text}");
        }
        assert!(catalog_model_ids().contains(&value["model"].as_str().unwrap_or_default()));
    }
}

fn catalog_model_ids() -> Vec<&'static str> {
    crate::catalog::models().iter().map(|m| m.id).collect()
}

/// A stream that learns the ending from the stored record renders exactly what the terminal
/// event itself renders, for every kind of ending; the record's ending equals the event's.
#[test]
fn ending_from_record_renders_like_the_event() {
    use crate::render::StreamRenderer;
    let events = [
        Event::Completed(TaskResult::Videos(vec!["https://cdn.example/v.mp4".into()])),
        Event::ContentViolation { reason: "This content may violate our policies".into() },
        Event::Failed(Error::Timeout { seconds: 300 }),
        Event::Failed(Error::Upstream { message: "draft has no URL".into() }),
    ];
    for event in events {
        let call = chat("sora2-landscape-10s", "A cat", json!({"stream": true}));
        let mut rec = TaskRecord::new(id(1), &call, T0);
        assert_eq!(rec.ending(), None);
        assert!(rec.apply(T0 + 1, &event));
        let ending = rec.ending().unwrap();
        assert_eq!(Some(&ending), Ending::from_event(&event).as_ref(), "{event:?}");
        let from_event = StreamRenderer::new(&rec.id, 1, "m").event(&event);
        let from_record = StreamRenderer::new(&rec.id, 1, "m").end(&ending);
        assert_eq!(from_record, from_event, "{event:?}");
        assert!(from_record.ends_with("data: [DONE]\n\n"));
        let back = TaskRecord::from_bytes(&rec.to_bytes()).unwrap();
        assert_eq!(back.ending(), Some(ending));
    }
}

/// A blocking request answers an error for violations and failures, nothing for a result;
/// the envelope's type follows the status.
#[test]
fn ending_errors_and_envelopes() {
    let ok = Ending::Completed(TaskResult::Images(vec![]));
    assert_eq!(ok.into_result(), Ok(TaskResult::Images(vec![])));
    let violation = Ending::ContentViolation { reason: "nope".into() }.into_result().unwrap_err();
    assert_eq!((violation.status, violation.code.as_str()), (400, "content_policy_violation"));
    let env = violation.envelope().to_string();
    assert!(env.contains(r#""type":"invalid_request_error""#), "{env}");
    assert!(env.contains(r#""message":"Content policy violation: nope""#), "{env}");
    let timeout = StoredError::from(&Error::Timeout { seconds: 9 }).envelope().to_string();
    assert!(
        timeout.contains(r#""type":"server_error""#) && timeout.contains(r#""code":"timeout""#)
    );
}
