use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::*;
use crate::request::MediaFormat;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake png";
const MP4: &[u8] = b"\0\0\0\x18ftypmp42 fake mp4";
const REMIX: &str = "s_68e3a06dcd888191b150971da152c1f5";

fn png() -> String {
    B64.encode(PNG)
}
fn png_uri() -> String {
    format!("data:image/png;base64,{}", png())
}
fn mp4() -> String {
    B64.encode(MP4)
}
fn share_link() -> String {
    format!("https://sora.chatgpt.com/p/{REMIX}")
}

fn ded(endpoint: Endpoint, body: Value) -> Result<ClientCall, Error> {
    dedicated(endpoint, body.to_string().as_bytes(), &Limits::default())
}
fn chat_json(body: Value) -> Result<ClientCall, Error> {
    chat(body.to_string().as_bytes(), &Limits::default())
}
fn msg(model: &str, content: Value) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}
fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// Every dedicated endpoint against the chat request that asks for the same thing.
#[test]
fn chat_and_dedicated_requests_are_equal() {
    let storyboard = "[5.0s]The cat jumps out of the plane [5.0s]The cat lands [10.0s]The cat runs across the field";
    let fenced = "```\n[5.0s]The cat jumps out of the plane\n[5.0s]The cat lands\n```";
    type Outcome = Result<ClientCall, Error>;
    let pairs: Vec<(&str, Outcome, Vec<Outcome>)> = vec![
        (
            "text to image",
            ded(Endpoint::ImagesGenerate, json!({"prompt": "A cat"})),
            vec![chat_json(msg("gpt-image", json!("A cat")))],
        ),
        (
            "text to image, other model",
            ded(
                Endpoint::ImagesGenerate,
                json!({"prompt": "A cat", "model": "gpt-image-landscape"}),
            ),
            vec![chat_json(msg("gpt-image-landscape", json!([{"type": "text", "text": "A cat"}])))],
        ),
        (
            "image to image",
            ded(Endpoint::ImagesTransform, json!({"prompt": "Make it blue", "image": png()})),
            vec![
                chat_json(with(msg("gpt-image", json!("Make it blue")), "image", json!(png_uri()))),
                chat_json(msg(
                    "gpt-image",
                    json!([{"type": "text", "text": "Make it blue"}, {"type": "image_url", "image_url": {"url": png_uri()}}]),
                )),
            ],
        ),
        (
            "text to video with style",
            ded(Endpoint::VideosGenerate, json!({"prompt": "A cat running", "style": "Anime"})),
            vec![
                chat_json(msg("sora2-landscape-10s", json!("{anime}A cat running"))),
                chat_json(msg("sora2-landscape-10s", json!("A cat {ANIME} running"))),
            ],
        ),
        (
            "text to video",
            ded(
                Endpoint::VideosGenerate,
                json!({"prompt": "A kitten on the grass", "model": "sora2-portrait-15s"}),
            ),
            vec![chat_json(msg("sora2-portrait-15s", json!("A kitten on the grass")))],
        ),
        (
            "image to video",
            ded(
                Endpoint::VideosTransform,
                json!({"prompt": "The cat walks", "image": png_uri(), "style": "retro"}),
            ),
            vec![chat_json(msg(
                "sora2-landscape-10s",
                json!([{"type": "image_url", "image_url": {"url": png_uri()}}, {"type": "text", "text": "{retro}The cat walks"}]),
            ))],
        ),
        (
            "remix",
            ded(
                Endpoint::VideosRemix,
                json!({"prompt": "make it rain", "remix_target_id": share_link()}),
            ),
            vec![
                chat_json(msg(
                    "sora2-landscape-10s",
                    json!(format!("{} make it rain", share_link())),
                )),
                chat_json(msg("sora2-landscape-10s", json!(format!("make it {REMIX} rain")))),
                chat_json(with(
                    msg("sora2-landscape-10s", json!("make it rain")),
                    "remix_target_id",
                    json!(REMIX),
                )),
                chat_json(msg(
                    "sora2-landscape-10s",
                    json!([{"type": "text", "text": share_link()}, {"type": "text", "text": "make it rain"}]),
                )),
            ],
        ),
        (
            "remix with style on a pro model",
            ded(
                Endpoint::VideosRemix,
                json!({"prompt": "make it rain", "remix_target_id": REMIX, "style": "comic", "model": "sora2pro-landscape-10s"}),
            ),
            vec![chat_json(msg(
                "sora2pro-landscape-10s",
                json!(format!("{{comic}} {} make it rain", share_link())),
            ))],
        ),
        (
            "storyboard",
            ded(Endpoint::VideosStoryboard, json!({"prompt": storyboard})),
            vec![
                chat_json(msg("sora2-landscape-10s", json!(storyboard))),
                chat_json(msg("sora2-landscape-10s", json!(storyboard.replace(" [", "\n[")))),
            ],
        ),
        (
            "fenced storyboard with style",
            ded(Endpoint::VideosStoryboard, json!({"prompt": fenced, "style": "golden"})),
            vec![chat_json(msg("sora2-landscape-10s", json!(format!("{{golden}}{fenced}"))))],
        ),
        (
            "character create",
            ded(Endpoint::CharactersCreate, json!({"video": mp4()})),
            vec![
                chat_json(with(msg("avatar-create", json!("")), "video", json!(mp4()))),
                chat_json(msg(
                    "avatar-create",
                    json!([{"type": "video_url", "video_url": {"url": format!("data:video/mp4;base64,{}", mp4())}}]),
                )),
                chat_json(with(msg("sora2-landscape-10s", json!("  ")), "video", json!(mp4()))),
            ],
        ),
        (
            "character create from url",
            ded(
                Endpoint::CharactersCreate,
                json!({"video": "https://example.com/me.mp4", "stream": false}),
            ),
            vec![chat_json(msg(
                "avatar-create",
                json!([{"type": "video_url", "video_url": {"url": "https://example.com/me.mp4"}}]),
            ))],
        ),
        (
            "character video",
            ded(
                Endpoint::CharactersGenerate,
                json!({"prompt": "dancing in the rain", "video": mp4(), "model": "sora2-portrait-10s"}),
            ),
            vec![chat_json(with(
                msg("sora2-portrait-10s", json!("dancing in the rain")),
                "video",
                json!(mp4()),
            ))],
        ),
    ];
    for (name, dedicated, chats) in pairs {
        let dedicated = dedicated.unwrap_or_else(|e| panic!("{name}: dedicated failed: {e}"));
        for (i, chat) in chats.into_iter().enumerate() {
            let chat = chat.unwrap_or_else(|e| panic!("{name} #{i}: chat failed: {e}"));
            assert_eq!(chat.request, dedicated.request, "{name} #{i}");
            assert_eq!(chat.mode, dedicated.mode, "{name} #{i}");
        }
    }
}

#[test]
fn operations_carry_what_was_asked() {
    let call = ded(
        Endpoint::VideosTransform,
        json!({"prompt": "go", "image": png(), "model": "sora2pro-hd-portrait-15s"}),
    )
    .unwrap();
    assert_eq!(call.request.model.id, "sora2pro-hd-portrait-15s");
    assert!(call.request.requires_pro());
    match call.request.operation {
        Operation::ImageToVideo { prompt, image, style } => {
            assert_eq!(
                (prompt.as_str(), image.bytes.as_ref(), image.format, style),
                ("go", PNG, MediaFormat::Png, None)
            );
        }
        other => panic!("{other:?}"),
    }

    let call =
        ded(Endpoint::VideosRemix, json!({"prompt": "more snow", "remix_target_id": share_link()}))
            .unwrap();
    match call.request.operation {
        Operation::Remix { prompt, target, style } => {
            assert_eq!((prompt.as_str(), target.as_str(), style), ("more snow", REMIX, None));
        }
        other => panic!("{other:?}"),
    }

    let call = ded(
        Endpoint::VideosStoryboard,
        json!({"prompt": "A cat adventure\n[5.0s]cat jumps\n[5s]cat lands"}),
    )
    .unwrap();
    match call.request.operation {
        Operation::Storyboard { storyboard, image: None, style: None } => assert_eq!(
            storyboard.render_upstream(),
            "current timeline:\nShot 1:\nduration: 5.0sec\nScene: cat jumps\n\nShot 2:\nduration: 5sec\nScene: cat lands\n\ninstructions:\nA cat adventure"
        ),
        other => panic!("{other:?}"),
    }

    let call = ded(
        Endpoint::CharactersCreate,
        json!({"video": mp4(), "timestamps": "1,5.5", "async_mode": true}),
    )
    .unwrap();
    assert_eq!(call.mode, ResponseMode::Async);
    assert_eq!(call.request.model.id, "avatar-create");
    assert!(matches!(
        call.request.operation,
        Operation::CharacterCreate {
            source: CharacterSource::Video(VideoInput::Inline(_)),
            timestamps: Some(Timestamps { start_ms: 1000, end_ms: 5500 })
        }
    ));
    assert_eq!(call.request.operation.task_kind(), crate::request::TaskKind::Character);
}

#[test]
fn chat_only_operations() {
    let call = chat_json(msg("sora2-extension-15s", json!("gen_01abcXYZ meteor shower"))).unwrap();
    match call.request.operation {
        Operation::Extension { prompt, generation } => {
            assert_eq!((prompt.as_str(), generation.as_str()), ("meteor shower", "gen_01abcXYZ"));
        }
        other => panic!("{other:?}"),
    }
    let call =
        chat_json(with(msg("prompt-enhance-long-20s", json!(" a cat ")), "stream", json!(true)))
            .unwrap();
    assert_eq!(call.request.operation, Operation::PromptEnhance { prompt: "a cat".into() });
    assert_eq!((call.mode, call.client_prompt.as_str()), (ResponseMode::Stream, " a cat "));

    let call = chat_json(msg("avatar-create", json!("make one from gen_abc123 please"))).unwrap();
    match call.request.operation {
        Operation::CharacterCreate { source: CharacterSource::Generation(g), timestamps: None } => {
            assert_eq!(g.as_str(), "gen_abc123")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn directives_apply_to_video_models_only() {
    // Image prompts go upstream as written: no style, no remix.
    let text = format!("{{anime}} a poster of {REMIX}");
    let call = chat_json(msg("gpt-image", json!(text))).unwrap();
    assert_eq!(call.request.operation, Operation::TextToImage { prompt: text.clone() });
    // An extension model with a share link extends, it does not remix (B7).
    let call =
        chat_json(msg("sora2-extension-10s", json!(format!("gen_x1 {} more", share_link()))))
            .unwrap();
    assert!(matches!(call.request.operation, Operation::Extension { .. }));
    // An unknown {word} stays in the prompt.
    let call = chat_json(msg("sora2-landscape-10s", json!("{sparkly} cat"))).unwrap();
    assert_eq!(
        call.request.operation,
        Operation::TextToVideo { prompt: "{sparkly} cat".into(), style: None }
    );
    // Videos generate honours a storyboard, as the original's handler did.
    let call = ded(Endpoint::VideosGenerate, json!({"prompt": "[5s]a [5s]b"})).unwrap();
    assert!(matches!(call.request.operation, Operation::Storyboard { .. }));
}

#[test]
fn modes_follow_the_flags() {
    for (stream, async_mode, want) in [
        (json!(null), json!(null), ResponseMode::Blocking),
        (json!(true), json!(false), ResponseMode::Stream),
        (json!(true), json!(true), ResponseMode::Async),
        (json!(false), json!(true), ResponseMode::Async),
    ] {
        let body = json!({"prompt": "x", "stream": stream, "async_mode": async_mode});
        assert_eq!(ded(Endpoint::ImagesGenerate, body).unwrap().mode, want);
        let body =
            with(with(msg("gpt-image", json!("x")), "stream", stream), "async_mode", async_mode);
        assert_eq!(chat_json(body).unwrap().mode, want);
    }
}

/// (endpoint or chat, body, status, message, param)
#[test]
fn every_error_is_precise() {
    type Case = (Option<Endpoint>, Value, &'static str, Option<&'static str>);
    let v10 = "sora2-landscape-10s";
    let cases: Vec<Case> = vec![
        // client-api.md error rows
        (Some(Endpoint::VideosGenerate), json!({"prompt": "x", "model": "invalid-model"}), "Invalid model: invalid-model", Some("model")),
        (None, msg("invalid-model", json!("x")), "Invalid model: invalid-model", Some("model")),
        (Some(Endpoint::ImagesGenerate), json!({}), "prompt is required", Some("prompt")),
        (Some(Endpoint::ImagesGenerate), json!({"prompt": null}), "prompt is required", Some("prompt")),
        (Some(Endpoint::ImagesGenerate), json!({"prompt": "   "}), "prompt is required", Some("prompt")),
        // wrong model kind
        (Some(Endpoint::ImagesGenerate), json!({"prompt": "x", "model": v10}), "Invalid model: sora2-landscape-10s is not an image model", Some("model")),
        (Some(Endpoint::VideosGenerate), json!({"prompt": "x", "model": "gpt-image"}), "Invalid model: gpt-image is not a video model", Some("model")),
        (Some(Endpoint::VideosGenerate), json!({"prompt": "x", "model": "sora2-extension-10s"}), "Invalid model: sora2-extension-10s is not a video model", Some("model")),
        (Some(Endpoint::CharactersCreate), json!({"video": mp4(), "model": v10}), "Invalid model: sora2-landscape-10s is not avatar-create (the only model of /v1/characters/create)", Some("model")),
        // wrong types
        (Some(Endpoint::ImagesGenerate), json!({"prompt": ["x"]}), "prompt must be a string, not an array", Some("prompt")),
        (Some(Endpoint::ImagesGenerate), json!({"prompt": "x", "model": 3}), "model must be a string, not a number", Some("model")),
        (Some(Endpoint::ImagesGenerate), json!({"prompt": "x", "stream": "true"}), "stream must be true or false, not a string", Some("stream")),
        (Some(Endpoint::ImagesGenerate), json!({"prompt": "x", "async_mode": 1}), "async_mode must be true or false, not a number", Some("async_mode")),
        (None, json!({"messages": [{"content": "x"}]}), "model is required", Some("model")),
        (None, json!({"model": "gpt-image"}), "messages is required", Some("messages")),
        (None, msg("gpt-image", json!("")), "prompt is required: the last message has no text", Some("messages")),
        (None, msg("gpt-image", json!([{"type": "image_url", "image_url": {"url": png_uri()}}])), "prompt is required: the last message has no text", Some("messages")),
        // style
        (Some(Endpoint::VideosGenerate), json!({"prompt": "x", "style": "sparkly"}), "Invalid style: sparkly. Use one of: festive, kakalaka, news, selfie, handheld, golden, anime, retro, nostalgic, comic", Some("style")),
        (Some(Endpoint::VideosGenerate), json!({"prompt": "{anime}"}), "prompt is required", Some("prompt")),
        // remix
        (Some(Endpoint::VideosRemix), json!({"prompt": "x"}), "remix_target_id is required", Some("remix_target_id")),
        (Some(Endpoint::VideosRemix), json!({"prompt": "x", "remix_target_id": "s_123"}), "Invalid remix_target_id: send a Sora share link or an id like s_ followed by 32 lowercase hex digits", Some("remix_target_id")),
        (None, with(msg(v10, json!("x")), "remix_target_id", json!("nope")), "Invalid remix_target_id: send a Sora share link or an id like s_ followed by 32 lowercase hex digits", Some("remix_target_id")),
        (Some(Endpoint::VideosRemix), json!({"prompt": share_link(), "remix_target_id": REMIX}), "a remix needs a prompt that describes the change, besides the share link", Some("prompt")),
        (None, with(msg("gpt-image", json!("x")), "remix_target_id", json!(REMIX)), "remix_target_id is not used by model gpt-image; remix needs a plain video model", Some("remix_target_id")),
        (None, with(msg(v10, json!(format!("{REMIX} x"))), "image", json!(png())), "an image together with remix is not used by model sora2-landscape-10s", Some("image")),
        // media
        (Some(Endpoint::ImagesTransform), json!({"prompt": "x"}), "image is required", Some("image")),
        (Some(Endpoint::ImagesTransform), json!({"prompt": "x", "image": "@@@"}), "image is not valid base64: Invalid symbol 64, offset 0.", Some("image")),
        (Some(Endpoint::ImagesTransform), json!({"prompt": "x", "image": mp4()}), "image is not a PNG, JPEG, GIF or WebP image", Some("image")),
        (None, msg("gpt-image", json!([{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}])), "messages must be base64 image data or a data:image/...;base64 URI; image URLs are not fetched", Some("messages")),
        (Some(Endpoint::CharactersCreate), json!({}), "video is required", Some("video")),
        (Some(Endpoint::CharactersCreate), json!({"video": png()}), "video is not an MP4, MOV or WebM video", Some("video")),
        (Some(Endpoint::CharactersGenerate), json!({"video": mp4()}), "prompt is required", Some("prompt")),
        (Some(Endpoint::CharactersCreate), json!({"video": mp4(), "timestamps": "3,1"}), "timestamps must be \"start,end\" in seconds with start < end <= 3600, e.g. \"0,3\"", Some("timestamps")),
        (Some(Endpoint::CharactersCreate), json!({"video": mp4(), "timestamps": [0]}), "timestamps must be \"start,end\" in seconds with start < end <= 3600, e.g. \"0,3\"", Some("timestamps")),
        (None, with(msg("gpt-image", json!("x")), "video", json!(mp4())), "a video is not used by model gpt-image", Some("video")),
        (None, with(msg("prompt-enhance-short-10s", json!("x")), "image", json!(png())), "an image is not used by model prompt-enhance-short-10s", Some("image")),
        // fields an endpoint does not take
        (Some(Endpoint::ImagesGenerate), json!({"prompt": "x", "image": png()}), "image is not accepted by /v1/images/generate; to start from an image use /v1/images/transform or /v1/videos/transform", Some("image")),
        (Some(Endpoint::ImagesGenerate), json!({"prompt": "x", "style": "anime"}), "style is not accepted by /v1/images/generate; styles apply to video endpoints only", Some("style")),
        (Some(Endpoint::VideosGenerate), json!({"prompt": "x", "remix_target_id": REMIX}), "remix_target_id is not accepted by /v1/videos/generate; to remix use /v1/videos/remix", Some("remix_target_id")),
        (Some(Endpoint::CharactersCreate), json!({"video": mp4(), "prompt": "x"}), "prompt is not accepted by /v1/characters/create; to generate a video with the character use /v1/characters/generate", Some("prompt")),
        // storyboards
        (Some(Endpoint::VideosStoryboard), json!({"prompt": "a cat"}), "prompt is not a storyboard: write each shot as [<seconds>s]<scene>, e.g. [5.0s]The cat jumps out of the plane [5.0s]The cat lands", Some("prompt")),
        // extension and avatar
        (None, msg("sora2-extension-10s", json!("meteor shower")), "Video extension models need a generation_id (gen_xxx) in the prompt. Example: gen_xxx meteor shower", Some("messages")),
        (None, msg("sora2-extension-10s", json!("gen_abc")), "Video extension models need an extension prompt. Example: gen_xxx meteor shower", Some("messages")),
        (None, msg("avatar-create", json!("make me a character")), "avatar-create needs a video, or a generation id (gen_xxx) in the prompt", Some("video")),
    ];
    for (endpoint, body, message, param) in cases {
        let err = match endpoint {
            Some(e) => ded(e, body.clone()),
            None => chat_json(body.clone()),
        }
        .expect_err(&format!("{body}"));
        assert_eq!(err.status(), 400, "{body}");
        assert_eq!((err.message().as_str(), err.param()), (message, param), "{body}");
    }
}

#[test]
fn broken_storyboards_name_the_shot() {
    for prompt in ["[5s]a [0s]b", "[5s]a [5s]", "[5s]a [-2s]b"] {
        let err = ded(Endpoint::VideosStoryboard, json!({"prompt": prompt})).unwrap_err();
        assert!(matches!(err, Error::InvalidStoryboard { .. }), "{prompt}: {err:?}");
        assert!(err.message().contains("Shot 2"), "{prompt}: {}", err.message());
        let chat_err = chat_json(msg("sora2-landscape-10s", json!(prompt))).unwrap_err();
        assert_eq!(chat_err.param(), Some("messages"));
        assert_eq!(chat_err.message(), err.message());
    }
}

#[test]
fn malformed_bodies_are_400_not_500() {
    for body in
        [&b"{"[..], b"", b"[1,2]", b"{\"prompt\":\"x\"", b"\xff\xfe", b"{\"prompt\":\"\xff\"}"]
    {
        let err = dedicated(Endpoint::ImagesGenerate, body, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::MalformedJson { .. }), "{body:?}: {err:?}");
        assert_eq!(err.status(), 400);
        let err = chat(body, &Limits::default()).unwrap_err();
        assert_eq!(err.status(), 400);
    }
    // Deep nesting never overflows the stack: skipped in an unknown field, a typed 400 in a
    // known one.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!("{{\"prompt\":\"x\",\"extra\":{deep}}}");
    assert!(dedicated(Endpoint::ImagesGenerate, body.as_bytes(), &Limits::default()).is_ok());
    let body = format!("{{\"prompt\":{deep}}}");
    let err = dedicated(Endpoint::ImagesGenerate, body.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(err.message(), "prompt must be a string, not an array");
    let body = format!("{{\"model\":\"gpt-image\",\"messages\":[{{\"content\":[{deep}]}}]}}");
    let err = chat(body.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(err.message(), "content part 0: must be an object with a \"type\"");
}

#[test]
fn limits_are_enforced() {
    let limits = Limits { max_prompt_bytes: 10, max_image_bytes: 8, ..Limits::default() };
    let err = dedicated(
        Endpoint::ImagesGenerate,
        json!({"prompt": "x".repeat(11)}).to_string().as_bytes(),
        &limits,
    )
    .unwrap_err();
    assert_eq!(err.message(), "prompt is too long: 11 bytes, the limit is 10 bytes");
    let err = dedicated(
        Endpoint::ImagesTransform,
        json!({"prompt": "x", "image": png()}).to_string().as_bytes(),
        &limits,
    )
    .unwrap_err();
    assert_eq!(err.param(), Some("image"));
    assert!(err.message().starts_with("image is too large"), "{}", err.message());
}

#[test]
fn endpoints_round_trip_their_paths() {
    for e in Endpoint::ALL {
        assert_eq!(Endpoint::from_path(e.path()), Some(e));
    }
    assert_eq!(Endpoint::from_path("/v1/images/generate/"), None);
}
