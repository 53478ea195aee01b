use serde_json::json;

use super::super::test_support::*;
use super::*;
use crate::request::MediaFormat;

fn mp4() -> Media {
    Media { bytes: Bytes::from_static(b"\0\0\0\x18ftypmp42DATA"), format: MediaFormat::Mp4 }
}

fn multipart_headers(cfg: &UpstreamConfig, boundary: &str) -> Vec<(String, String)> {
    let mut want = app_headers(cfg);
    want[2].1 = format!("multipart/form-data; boundary={boundary}");
    want
}

#[test]
fn seconds_rendering() {
    let cases = [
        (0, "0", json!(0)),
        (3000, "3", json!(3)),
        (1500, "1.5", json!(1.5)),
        (5250, "5.25", json!(5.25)),
        (1, "0.001", json!(0.001)),
    ];
    for (ms, text, value) in cases {
        assert_eq!(Seconds(ms).text(), text);
        assert_eq!(serde_json::to_value(Seconds(ms)).unwrap(), value);
    }
}

#[test]
fn characters_upload_golden() {
    let b = "----sora2api000000000000abcd";
    for (cfg, base) in configs() {
        for (ts, text) in
            [(None, "0,3"), (Some(Timestamps { start_ms: 1000, end_ms: 5500 }), "1,5.5")]
        {
            let req = characters_upload(&cfg, &auth(), &mp4(), ts, 0xabcd);
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.url, format!("{base}/characters/upload"));
            assert_eq!(req.headers, multipart_headers(&cfg, b));
            let want = [
                format!(
                    "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"video.mp4\"\r\n\
                     Content-Type: video/mp4\r\n\r\n"
                )
                .into_bytes(),
                b"\0\0\0\x18ftypmp42DATA".to_vec(),
                format!(
                    "\r\n--{b}\r\nContent-Disposition: form-data; name=\"timestamps\"\r\n\r\n{text}\r\n--{b}--\r\n"
                )
                .into_bytes(),
            ]
            .concat();
            assert_eq!(req.body.to_vec(), want, "{}", String::from_utf8_lossy(&req.body));
            assert_eq!(req.timeout_ms, cfg.request_timeout_ms);
            assert_secrets_contained(&req);
        }
    }
}

#[test]
fn file_upload_golden() {
    let webp = Media { bytes: Bytes::from_static(b"RIFF0000WEBPVP8 "), format: MediaFormat::Webp };
    let b = "----sora2api0000000000000001";
    for (cfg, base) in configs() {
        for (use_case, name, value) in [
            (FileUseCase::Profile, "profile.webp", "profile"),
            (FileUseCase::InpaintSafe, "image.webp", "inpaint_safe"),
        ] {
            let req = file_upload(&cfg, &auth(), &webp, use_case, 1);
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.url, format!("{base}/project_y/file/upload"));
            assert_eq!(req.headers, multipart_headers(&cfg, b));
            let want = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: image/webp\r\n\r\nRIFF0000WEBPVP8 \r\n\
                 --{b}\r\nContent-Disposition: form-data; name=\"use_case\"\r\n\r\n{value}\r\n--{b}--\r\n"
            );
            assert_eq!(String::from_utf8_lossy(&req.body), want);
            assert_secrets_contained(&req);
        }
    }
}

#[test]
fn json_character_calls() {
    let gen = GenerationId::find("gen_01k9btrq").unwrap();
    for (cfg, base) in configs() {
        let cases = [
            (
                characters_from_generation(&cfg, &auth(), &gen, None),
                Method::Post,
                format!("{base}/characters/from-generation"),
                json!({"generation_id":"gen_01k9btrq","character_id":null,"timestamps":[0,3]}),
            ),
            (
                characters_from_generation(
                    &cfg,
                    &auth(),
                    &gen,
                    Some(Timestamps { start_ms: 1000, end_ms: 5500 }),
                ),
                Method::Post,
                format!("{base}/characters/from-generation"),
                json!({"generation_id":"gen_01k9btrq","character_id":null,"timestamps":[1,5.5]}),
            ),
            (
                characters_finalize(
                    &cfg,
                    &auth(),
                    "cameo_1",
                    "meowliusma68123",
                    "Meow",
                    "sediment://file_00",
                ),
                Method::Post,
                format!("{base}/characters/finalize"),
                json!({"cameo_id":"cameo_1","username":"meowliusma68123","display_name":"Meow",
                       "profile_asset_pointer":"sediment://file_00","instruction_set":null,
                       "safety_instruction_set":null}),
            ),
            (
                cameo_update_v2(&cfg, &auth(), "cameo_1"),
                Method::Post,
                format!("{base}/project_y/cameos/by_id/cameo_1/update_v2"),
                json!({"visibility":"public"}),
            ),
        ];
        for (req, method, url, body) in cases {
            assert_eq!(req.method, method);
            assert_eq!(req.url, url);
            assert_eq!(req.headers, app_headers(&cfg));
            assert_eq!(body_json(&req), body);
            assert_eq!(req.timeout_ms, cfg.request_timeout_ms);
            assert_secrets_contained(&req);
        }
        let cases = [
            (
                cameo_in_progress(&cfg, &auth(), "ch_1/.."),
                Method::Get,
                format!("{base}/project_y/cameos/in_progress/ch_1%2F.."),
            ),
            (
                delete_character(&cfg, &auth(), "char_9"),
                Method::Delete,
                format!("{base}/project_y/characters/char_9"),
            ),
        ];
        for (req, method, url) in cases {
            assert_eq!(req.method, method);
            assert_eq!(req.url, url);
            assert_eq!(req.headers, app_headers(&cfg));
            assert!(req.body.is_empty());
            assert_secrets_contained(&req);
        }
    }
}

#[test]
fn username_rule() {
    let cases = [
        (Some("blackwill.meowliusma68"), 123, "meowliusma68123"),
        (Some("a.b.c"), 999, "c999"),
        (Some("plain"), 100, "plain100"),
        (None, 0, "character100"),
        (Some(""), 899, "character899"),
        (Some("ends."), 5, "character105"),
        (Some("x"), u16::MAX, "x835"),
        (Some("x"), 1000, "x200"),
    ];
    for (hint, suffix, want) in cases {
        assert_eq!(character_username(hint, suffix), want, "{hint:?} {suffix}");
    }
}

#[test]
fn cameo_progress_table() {
    let ready = |url: &str| {
        CameoProgress::Ready(CameoProfile {
            display_name_hint: Some("Meow".into()),
            username_hint: Some("blackwill.meow".into()),
            profile_asset_url: url.into(),
            instruction_set: Some("be nice".into()),
        })
    };
    let cases = [
        (r#"{"status":"processing","status_message":"Working"}"#, CameoProgress::Processing),
        (r#"{}"#, CameoProgress::Processing),
        (
            r#"{"status":"failed","status_message":"No face found"}"#,
            CameoProgress::Failed { message: Some("No face found".into()) },
        ),
        (r#"{"status":"error"}"#, CameoProgress::Failed { message: None }),
        (
            r#"{"status":"done","status_message":"Completed","display_name_hint":"Meow","username_hint":"blackwill.meow",
               "profile_asset_url":"https://a/p.webp","instruction_set_hint":"be nice","extra":1}"#,
            ready("https://a/p.webp"),
        ),
        (
            r#"{"status":"finalized","display_name_hint":"Meow","username_hint":"blackwill.meow",
               "profile_asset_url":"https://a/q.webp","instruction_set_hint":null,"instruction_set":"be nice"}"#,
            ready("https://a/q.webp"),
        ),
        (r#"{"status":"finalized","profile_asset_url":null}"#, CameoProgress::Processing),
        (
            r#"{"status":"processing","profile_asset_url":"https://a/p.webp"}"#,
            CameoProgress::Processing,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(decode_cameo_progress(&UpstreamReply::json(200, body)).unwrap(), want, "{body}");
    }
    let minimal = decode_cameo_progress(&UpstreamReply::json(
        200,
        r#"{"status_message":"Completed","profile_asset_url":"u","instruction_set":{"value":[]}}"#,
    ))
    .unwrap();
    let CameoProgress::Ready(profile) = minimal else { panic!("{minimal:?}") };
    assert_eq!(profile.display_name(), "Character");
    assert_eq!(profile.instruction_set, None);
}

#[test]
fn id_decoders() {
    let ok = UpstreamReply::json(
        200,
        r#"{"asset_pointer":"sediment://file_0000","file_id":"f","url":"u","size":3,"azure_asset_pointer":null}"#,
    );
    assert_eq!(decode_file_upload(&ok).unwrap(), "sediment://file_0000");
    assert_eq!(
        decode_file_upload(&UpstreamReply::json(200, r#"{"asset_pointer":null}"#)),
        Err(DecodeError::Missing { field: "asset_pointer" })
    );
    let ok = UpstreamReply::json(
        200,
        r#"{"character":{"character_id":"char_1","username":"x"},"other":{}}"#,
    );
    assert_eq!(decode_finalize(&ok).unwrap(), "char_1");
    for body in [
        r#"{}"#,
        r#"{"character":null}"#,
        r#"{"character":{"character_id":""}}"#,
        r#"{"character":"x"}"#,
    ] {
        assert_eq!(
            decode_finalize(&UpstreamReply::json(200, body)),
            Err(DecodeError::Missing { field: "character.character_id" }),
            "{body}"
        );
    }
    assert_eq!(
        super::super::decode_id(&UpstreamReply::json(200, r#"{"id":"cameo_7"}"#)).unwrap(),
        "cameo_7"
    );
}
