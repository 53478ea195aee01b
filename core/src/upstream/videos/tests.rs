use serde_json::json;

use super::super::test_support::*;
use super::*;
use crate::catalog::{self, Orientation, UpstreamSize};

fn spec(model: UpstreamModel, size: UpstreamSize, seconds: u16) -> VideoSpec {
    VideoSpec { orientation: Orientation::Portrait, seconds, upstream_model: model, size }
}

fn remix_id() -> RemixId {
    RemixId::find("s_0123456789abcdef0123456789abcdef").unwrap()
}

/// The exact P-CREATE header list.
fn create_headers(cfg: &UpstreamConfig, with_cookie: bool) -> Vec<(String, String)> {
    let mut want: Vec<(String, String)> = [
        ("authorization", format!("Bearer {AT}")),
        ("openai-sentinel-token", sentinel().header().to_owned()),
        ("content-type", "application/json".into()),
        ("user-agent", cfg.pow_user_agent.clone()),
        ("oai-language", "en-US".into()),
        ("oai-device-id", DEVICE.into()),
        ("accept", "*/*".into()),
        ("accept-language", "zh-CN,zh;q=0.9,en;q=0.8".into()),
        ("cache-control", "no-cache".into()),
        ("pragma", "no-cache".into()),
        ("origin", "https://sora.chatgpt.com".into()),
        ("referer", "https://sora.chatgpt.com/explore".into()),
        ("sec-ch-ua", r#""Not(A:Brand";v="8", "Chromium";v="131", "Google Chrome";v="131""#.into()),
        ("sec-ch-ua-mobile", "?0".into()),
        ("sec-ch-ua-platform", "\"Windows\"".into()),
        ("sec-fetch-dest", "empty".into()),
        ("sec-fetch-mode", "cors".into()),
        ("sec-fetch-site", "same-origin".into()),
        ("priority", "u=1, i".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if with_cookie {
        want.push(("cookie".into(), format!("__Secure-next-auth.session-token={ST}")));
    }
    want
}

#[test]
fn sentinel_header_in_requests_parses_and_matches_device_id() {
    let v: serde_json::Value = serde_json::from_str(sentinel().header()).unwrap();
    assert_eq!(
        v,
        json!({"p":"gAAAAABanswer~S","t":"dx","c":"ctok","id":DEVICE,"flow":"sora_2_create_task__auto"})
    );
}

#[test]
fn nf_create_bodies() {
    let anime = catalog::style("anime");
    let std10 = spec(UpstreamModel::Sy8, UpstreamSize::Small, 10);
    let pro_hd15 = spec(UpstreamModel::SyOre, UpstreamSize::Large, 15);
    let remix = remix_id();
    let cases = [
        (
            std10,
            VideoSource::Text,
            None,
            json!({"kind":"video","prompt":"p","orientation":"portrait","size":"small","n_frames":300,
                   "model":"sy_8","inpaint_items":[],"style_id":null}),
        ),
        (
            pro_hd15,
            VideoSource::Image { upload_id: "media_9" },
            anime,
            json!({"kind":"video","prompt":"p","orientation":"portrait","size":"large","n_frames":450,
                   "model":"sy_ore","inpaint_items":[{"kind":"upload","upload_id":"media_9"}],
                   "style_id":"anime"}),
        ),
        (
            // B8: the chosen model's upstream model and size, not sy_8 without size.
            pro_hd15,
            VideoSource::Remix { target: &remix },
            None,
            json!({"kind":"video","prompt":"p","inpaint_items":[],
                   "remix_target_id":"s_0123456789abcdef0123456789abcdef","cameo_ids":[],
                   "cameo_replacements":{},"model":"sy_ore","orientation":"portrait","size":"large",
                   "n_frames":450,"style_id":null}),
        ),
    ];
    for (cfg, base) in configs() {
        for (video, source, style, want) in &cases {
            let req = nf_create(&cfg, &auth(), &sentinel(), video, "p", *source, *style);
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.url, format!("{base}/nf/create"));
            assert_eq!(req.headers, create_headers(&cfg, true));
            assert_eq!(&body_json(&req), want);
            assert_eq!(req.timeout_ms, cfg.short_timeout_ms);
            assert_secrets_contained(&req);
        }
    }
}

#[test]
fn nf_create_without_session_token_has_no_cookie_and_uses_the_configured_standard_model() {
    let cfg = UpstreamConfig {
        standard_video_model: "sy_8_20251208".into(),
        ..UpstreamConfig::at_origin("http://sim")
    };
    let mut auth = auth();
    auth.session_token = None;
    let video = spec(UpstreamModel::Sy8, UpstreamSize::Small, 15);
    let req = nf_create(&cfg, &auth, &sentinel(), &video, "p", VideoSource::Text, None);
    assert_eq!(req.headers, create_headers(&cfg, false));
    assert_eq!(body_json(&req)["model"], "sy_8_20251208");
    assert_eq!(body_json(&req)["n_frames"], 450);
}

#[test]
fn storyboard_body() {
    let sb = Storyboard::parse("A cat adventure [5s]cat jumps [5s]cat lands").unwrap().unwrap();
    let prompt = sb.render_upstream();
    let pro = spec(UpstreamModel::SyOre, UpstreamSize::Large, 15);
    for (cfg, base) in configs() {
        for upload in [None, Some("media_1")] {
            let req = nf_create_storyboard(
                &cfg,
                &auth(),
                &sentinel(),
                &pro,
                &sb,
                upload,
                catalog::style("anime"),
            );
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.url, format!("{base}/nf/create/storyboard"));
            assert_eq!(req.headers, app_sentinel_headers(&cfg));
            let items = match upload {
                Some(id) => json!([{"kind":"upload","upload_id":id}]),
                None => json!([]),
            };
            assert_eq!(
                body_json(&req),
                json!({"kind":"video","prompt":prompt,"title":"Draft your video",
                       "orientation":"portrait","size":"large","n_frames":450,"storyboard_id":null,
                       "inpaint_items":items,"remix_target_id":null,"model":"sy_ore","metadata":null,
                       "style_id":"anime","cameo_ids":null,"cameo_replacements":null,
                       "audio_caption":null,"audio_transcript":null,"video_caption":null})
            );
            assert_eq!(req.timeout_ms, cfg.request_timeout_ms);
            assert_secrets_contained(&req);
        }
    }
}

#[test]
fn extension_request() {
    assert_eq!(ExtensionDuration::from_seconds(10), Some(ExtensionDuration::Ten));
    assert_eq!(ExtensionDuration::from_seconds(15).map(ExtensionDuration::seconds), Some(15));
    for s in [0, 5, 20, 25] {
        assert_eq!(ExtensionDuration::from_seconds(s), None);
    }
    let gen = GenerationId::find("gen_01k9btrqrnen792yvt703dp0tq").unwrap();
    for (cfg, base) in configs() {
        let req = long_video_extension(
            &cfg,
            &auth(),
            &sentinel(),
            &gen,
            "then it flies",
            ExtensionDuration::Fifteen,
        );
        assert_eq!(req.method, Method::Post);
        assert_eq!(
            req.url,
            format!("{base}/project_y/profile/drafts/gen_01k9btrqrnen792yvt703dp0tq/long_video_extension")
        );
        assert_eq!(req.headers, app_sentinel_headers(&cfg));
        assert_eq!(
            body_json(&req),
            json!({"user_prompt":"then it flies","extension_duration_s":15,"enable_rewrite":true})
        );
        assert_secrets_contained(&req);
    }
}

#[test]
fn polling_requests() {
    for (cfg, base) in configs() {
        let cases = [
            (pending_v2(&cfg, &auth()), format!("{base}/nf/pending/v2")),
            (
                drafts_v2(&cfg, &auth(), 15, None),
                format!("{base}/project_y/profile/drafts/v2?limit=15"),
            ),
            (
                drafts_v2(&cfg, &auth(), 15, Some("")),
                format!("{base}/project_y/profile/drafts/v2?limit=15"),
            ),
            (
                drafts_v2(&cfg, &auth(), 30, Some("c/1+=x")),
                format!("{base}/project_y/profile/drafts/v2?limit=30&cursor=c%2F1%2B%3Dx"),
            ),
            (drafts(&cfg, &auth(), 15, None), format!("{base}/project_y/profile/drafts?limit=15")),
            (
                drafts(&cfg, &auth(), 15, Some("abc")),
                format!("{base}/project_y/profile/drafts?limit=15&cursor=abc"),
            ),
        ];
        for (req, url) in cases {
            assert_eq!(req.method, Method::Get);
            assert_eq!(req.url, url);
            assert_eq!(req.headers, app_headers(&cfg));
            assert!(req.body.is_empty());
            assert_eq!(req.timeout_ms, cfg.request_timeout_ms);
            assert_secrets_contained(&req);
        }
    }
}

#[test]
fn pending_decoding_table() {
    let cases = [
        (r#"[]"#, VideoPending::Absent),
        (r#"{"items":[]}"#, VideoPending::Absent),
        (r#"null"#, VideoPending::Absent),
        (r#"[{"id":"task_y","status":"running","progress_pct":0.5}]"#, VideoPending::Absent),
        (
            r#"[{"id":"task_x","status":"preprocessing","progress_pct":null,"prompt":"p","title":null,"generations":[],"failure_reason":null}]"#,
            VideoPending::InProgress { progress_pct: None },
        ),
        (
            r#"[7,"x",{"id":"task_x","status":"running","progress_pct":0.1}]"#,
            VideoPending::InProgress { progress_pct: Some(10.0) },
        ),
        (
            r#"[{"id":"task_x","status":"processing","progress_pct":1.0}]"#,
            VideoPending::InProgress { progress_pct: Some(100.0) },
        ),
        (
            r#"[{"id":"task_x","status":"running","progress_pct":57}]"#,
            VideoPending::InProgress { progress_pct: Some(57.0) },
        ),
        (
            r#"[{"id":"task_x","status":"running","progress_pct":-3}]"#,
            VideoPending::InProgress { progress_pct: Some(0.0) },
        ),
        (
            r#"[{"id":"task_x","status":"running","progress_pct":1e308}]"#,
            VideoPending::InProgress { progress_pct: Some(100.0) },
        ),
        (
            r#"[{"id":"task_x","status":"running","progress_pct":"0.5"}]"#,
            VideoPending::InProgress { progress_pct: None },
        ),
        (
            r#"[{"id":"task_x","progress_pct":0.25}]"#,
            VideoPending::InProgress { progress_pct: Some(25.0) },
        ),
        (
            r#"[{"id":"task_x","status":"failed","failure_reason":"moderation"}]"#,
            VideoPending::Failed { reason: Some("moderation".into()) },
        ),
        (
            r#"[{"id":"task_x","status":"error","failure_reason":""}]"#,
            VideoPending::Failed { reason: None },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            decode_pending(&UpstreamReply::json(200, body), "task_x").unwrap(),
            want,
            "{body}"
        );
    }
    assert_eq!(
        decode_pending(&UpstreamReply::json(200, "<html>"), "task_x"),
        Err(DecodeError::NotJson)
    );
    assert_eq!(
        decode_pending(&UpstreamReply::json(502, "[]"), "task_x"),
        Err(DecodeError::Status { status: 502 })
    );
}

#[test]
fn drafts_page_and_cursor() {
    let body = r#"{"items":[
        {"id":"gen_a","task_id":"task_a","kind":"sora_draft","url":"https://videos/a","downloadable_url":"https://dl/a",
         "reason_str":null,"markdown_reason_str":null,"generation_id":"gen_a","encodings":{"source":{"path":"x"}},
         "download_urls":{"watermark":"w","no_watermark":null},"width":1280,"height":720,"created_at":1.5,"prompt":"p","title":null},
        "not an object",
        {"id":"gen_b","task_id":"task_b","kind":"sora_draft","url":"https://videos/b","downloadable_url":"",
         "download_urls":{"no_watermark":"https://nowm/b"}}
    ],"cursor":"next-page"}"#;
    let page = decode_drafts(&UpstreamReply::json(200, body)).unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.cursor.as_deref(), Some("next-page"));
    assert_eq!(
        page.find("task_a"),
        DraftOutcome::Ready {
            url: "https://dl/a".into(),
            generation_id: Some("gen_a".into()),
            no_watermark_url: None
        }
    );
    assert_eq!(
        page.find("task_b"),
        DraftOutcome::Ready {
            url: "https://videos/b".into(),
            generation_id: Some("gen_b".into()),
            no_watermark_url: Some("https://nowm/b".into())
        }
    );
    assert_eq!(page.find("task_c"), DraftOutcome::NotYet);

    for (body, cursor) in [
        (r#"{"items":[],"cursor":null}"#, None),
        (r#"{"items":[]}"#, None),
        (r#"{"items":[],"cursor":""}"#, None),
    ] {
        let page = decode_drafts(&UpstreamReply::json(200, body)).unwrap();
        assert_eq!(page, DraftsPage { items: vec![], cursor });
    }
    assert_eq!(
        decode_drafts(&UpstreamReply::json(200, r#"{"cursor":null}"#)),
        Err(DecodeError::Missing { field: "items" })
    );
    assert_eq!(
        decode_drafts(&UpstreamReply::json(200, "[]")),
        Err(DecodeError::Shape { expected: "an object" })
    );
    assert_eq!(
        decode_drafts(&UpstreamReply::json(404, "{}")),
        Err(DecodeError::Status { status: 404 })
    );
}

#[test]
fn draft_outcome_table() {
    let item = |fields: &str| {
        let body = format!(r#"{{"items":[{{"task_id":"task_x",{fields}}}]}}"#);
        decode_drafts(&UpstreamReply::json(200, body)).unwrap().find("task_x")
    };
    let cases = [
        (
            r#""id":"gen_1","kind":"sora_draft","url":"https://u""#,
            DraftOutcome::Ready {
                url: "https://u".into(),
                generation_id: Some("gen_1".into()),
                no_watermark_url: None,
            },
        ),
        (
            r#""generation_id":"gen_2","url":"https://u","downloadable_url":null"#,
            DraftOutcome::Ready {
                url: "https://u".into(),
                generation_id: Some("gen_2".into()),
                no_watermark_url: None,
            },
        ),
        (
            r#""id":"gen_1","kind":"sora_content_violation","reason_str":"Contains violence","url":null"#,
            DraftOutcome::Violation { reason: Some("Contains violence".into()) },
        ),
        (
            r#""kind":"sora_content_violation","url":null,"downloadable_url":null"#,
            DraftOutcome::Violation { reason: None },
        ),
        (
            r#""kind":"sora_content_violation","error_reason":"er""#,
            DraftOutcome::Violation { reason: Some("er".into()) },
        ),
        (
            r#""kind":"sora_draft","markdown_reason_str":"**no**","url":"https://u""#,
            DraftOutcome::Violation { reason: Some("**no**".into()) },
        ),
        (
            r#""kind":"sora_draft","reason_str":"","url":"https://u""#,
            DraftOutcome::Ready {
                url: "https://u".into(),
                generation_id: None,
                no_watermark_url: None,
            },
        ),
        // Decisions 14: no URL is not a violation.
        (
            r#""id":"gen_1","kind":"sora_draft","url":null,"downloadable_url":null"#,
            DraftOutcome::NoUrl,
        ),
        (r#""id":"gen_1","kind":"sora_draft","url":"","downloadable_url":"""#, DraftOutcome::NoUrl),
        (r#""id":"gen_1","url":5"#, DraftOutcome::NoUrl),
    ];
    for (fields, want) in cases {
        assert_eq!(item(fields), want, "{fields}");
    }
}
