#!/usr/bin/env python3
"""Writes the hostile-request corpus: one raw HTTP/1.1 request per `NNN-category-name.http`.

Run from anywhere: `python3 tests/hostile/generate.py` (it rewrites every `*.http` here).
The format (read by tests/tests/hostile.rs) is described in README.md next to this file.
"""
import base64
import json
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
KEY = "han1234"
CASES = []

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
MP4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\0\0\0\x08mdat"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04"


def b64(data):
    return base64.b64encode(data).decode()


def case(category, name, raw, expect, notes=(), raw_ok=False):
    # The category is the file name's second part: no '-' in it.
    CASES.append((category.replace("-", "_"), name, raw, expect, list(notes), raw_ok))


def request(method, path, body=b"", *, auth=True, ctype="application/json", length=True,
            headers=(), version="HTTP/1.1", host="gateway.test"):
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} {version}".encode()]
    if host is not None:
        lines.append(b"Host: " + host.encode())
    if auth:
        lines.append(f"Authorization: Bearer {KEY}".encode())
    if ctype is not None:
        lines.append(b"Content-Type: " + ctype.encode())
    for h in headers:
        lines.append(h.encode() if isinstance(h, str) else h)
    if length:
        n = b"{{len}}" if b"{{" in body else str(len(body)).encode()
        lines.append(b"Content-Length: " + n)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def post(path, body, **kw):
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    return request("POST", path, body, **kw)


CHAT = "/v1/chat/completions"
IG, IT = "/v1/images/generate", "/v1/images/transform"
VG, VT = "/v1/videos/generate", "/v1/videos/transform"
VR, VS = "/v1/videos/remix", "/v1/videos/storyboard"
CC, CG = "/v1/characters/create", "/v1/characters/generate"
ENDPOINTS = [IG, IT, VG, VT, VR, VS, CC, CG]
REMIX = "s_" + "0123456789abcdef" * 2


def msgs(content):
    return [{"role": "user", "content": content}]


# The smallest valid body of each endpoint: a hostile case changes exactly one thing.
VALID = {
    IG: {"prompt": "a cat"},
    IT: {"prompt": "a cat", "image": b64(PNG)},
    VG: {"prompt": "a cat"},
    VT: {"prompt": "a cat", "image": b64(PNG)},
    VR: {"prompt": "a cat", "remix_target_id": REMIX},
    VS: {"prompt": "[5.0s]a cat [5.0s]a dog"},
    CC: {"video": b64(MP4)},
    CG: {"prompt": "a cat", "video": b64(MP4)},
    CHAT: {"model": "sora2-landscape-10s", "messages": msgs("a cat")},
}


def with_field(path, field, value):
    body = dict(VALID[path])
    body[field] = value
    return body


def short(path):
    return path.strip("/").replace("v1/", "").replace("/", "-").replace("chat-completions", "chat")


# === malformed and truncated JSON ===
malformed = [
    ("empty", ""), ("space", "   "), ("open-brace", "{"), ("close-brace", "}"),
    ("key-no-value", '{"prompt":'), ("unterminated-string", '{"prompt":"a cat'),
    ("no-close", '{"prompt":"a cat"'), ("trailing-comma", '{"prompt":"a cat",}'),
    ("single-quotes", "{'prompt':'a cat'}"), ("bare-key", '{prompt:"a cat"}'),
    ("trailing-garbage", '{"prompt":"a cat"} x'), ("two-objects", '{"prompt":"a"}{"prompt":"b"}'),
    ("bad-escape", '{"prompt":"a\\x41"}'), ("lone-surrogate", '{"prompt":"a\\ud800"}'),
    ("comment", '{/* hi */"prompt":"a cat"}'), ("nan-literal", '{"prompt":"a","stream":NaN}'),
    ("array-body", '["a cat"]'), ("string-body", '"a cat"'), ("number-body", "42"),
    ("null-body", "null"), ("true-body", "true"), ("bom", "\ufeff{\"prompt\":\"a cat\"}"),
    ("duplicate-prompt", '{"prompt":"a","prompt":"b"}'), ("nul-byte", '{"prompt":"a"}\u0000'),
    ("control-in-string", '{"prompt":"a\u0001cat"}'), ("newline-in-string", '{"prompt":"a\ncat"}'),
    ("huge-number", '{"prompt":"a","stream":1' + "0" * 400 + "}"),
    ("unclosed-array", '{"prompt":"a","model":["x"'), ("colon-only", ":"), ("hex-number", '{"stream":0x1}'),
]
for i, (name, body) in enumerate(malformed):
    path = [VG, CHAT, IG][i % 3]
    case("json", f"{name}-{short(path)}", post(path, body), [400])
for name, body in [("truncated-chat", '{"model":"sora2-landscape-10s","messages":[{"role":"user","content":"a'),
                   ("dup-model-chat", '{"model":"sora2-landscape-10s","model":"gpt-4","messages":[]}'),
                   ("dup-messages", '{"model":"sora2-landscape-10s","messages":[],"messages":[{"role":"user","content":"a"}]}')]:
    case("json", name, post(CHAT, body), [400])

# === wrong types for every field of every endpoint ===
WRONG = {"number": 42, "float": 1.5, "true": True, "array": ["a cat"], "object": {"text": "a cat"},
         "empty-array": []}
for path in ENDPOINTS:
    fields = {IG: ["prompt", "model"], IT: ["prompt", "model", "image"], VG: ["prompt", "model", "style"],
              VT: ["prompt", "model", "style", "image"], VR: ["prompt", "model", "style", "remix_target_id"],
              VS: ["prompt", "model", "style", "image"], CC: ["model", "video", "timestamps"],
              CG: ["prompt", "model", "video", "timestamps"]}[path]
    for field in fields + ["stream", "async_mode"]:
        kinds = ["number", "array", "object"] if field not in ("stream", "async_mode") else ["number", "array"]
        if field == "timestamps":
            kinds = ["number", "true", "object"]
        for kind in kinds[:2] if path not in (VG, CC) else kinds:
            case("types", f"{short(path)}-{field}-{kind}", post(path, with_field(path, field, WRONG[kind])), [400])
for field, value in [("stream", "true"), ("async_mode", "yes"), ("stream", 1), ("async_mode", 0),
                     ("stream", {"on": True})]:
    case("types", f"chat-{field}-{type(value).__name__}", post(CHAT, with_field(CHAT, field, value)), [400])
for field, value in [("model", 42), ("model", ["sora2-landscape-10s"]), ("messages", "a cat"),
                     ("messages", {"role": "user", "content": "a"}), ("messages", 7), ("image", 5),
                     ("video", True), ("remix_target_id", 12), ("messages", [])]:
    case("types", f"chat-{field}-{type(value).__name__}", post(CHAT, with_field(CHAT, field, value)), [400])
# content parts
for name, content in [
    ("content-number", 42), ("content-object", {"type": "text", "text": "a"}), ("content-true", True),
    ("part-string", ["a cat"]), ("part-number", [1]), ("part-null", [None]), ("part-no-type", [{"text": "a"}]),
    ("part-type-number", [{"type": 1, "text": "a"}]), ("text-number", [{"type": "text", "text": 5}]),
    ("text-missing", [{"type": "text"}]), ("image-url-number", [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": 5}]),
    ("image-url-missing", [{"type": "text", "text": "a"}, {"type": "image_url"}]),
    ("image-url-url-number", [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": 5}}]),
    ("video-url-array", [{"type": "text", "text": "a"}, {"type": "video_url", "video_url": ["x"]}]),
    ("video-url-empty-object", [{"type": "text", "text": "a"}, {"type": "video_url", "video_url": {}}]),
    ("only-unknown-parts", [{"type": "audio", "audio": "x"}]), ("empty-parts", []),
    ("content-null", None), ("content-blank", "   "),
]:
    case("types", f"chat-{name}", post(CHAT, with_field(CHAT, "messages", msgs(content))), [400])
for name, messages in [("message-string", ["a cat"]), ("message-number", [5]), ("message-null", [None]),
                       ("message-no-content", [{"role": "user"}])]:
    case("types", f"chat-{name}", post(CHAT, with_field(CHAT, "messages", messages)), [400])

# === nulls for required fields ===
for path, field in [(IG, "prompt"), (IT, "image"), (IT, "prompt"), (VG, "prompt"), (VT, "image"),
                    (VR, "remix_target_id"), (VR, "prompt"), (VS, "prompt"), (CC, "video"), (CG, "video"),
                    (CG, "prompt"), (CHAT, "model"), (CHAT, "messages")]:
    case("nulls", f"{short(path)}-{field}-null", post(path, with_field(path, field, None)), [400])
case("nulls", "all-null", post(VG, {"prompt": None, "model": None, "stream": None, "async_mode": None}), [400])
case("nulls", "empty-object", post(VG, {}), [400])
case("nulls", "chat-empty-object", post(CHAT, {}), [400])

# === huge strings and deep nesting ===
case("huge", "prompt-over-limit-videos", post(VG, '{"prompt":"{{repeat 70000 a}}"}'), [400])
case("huge", "prompt-over-limit-images", post(IG, '{"prompt":"{{repeat 65537 b}}"}'), [400])
case("huge", "prompt-over-limit-chat", post(CHAT, '{"model":"sora2-landscape-10s","messages":[{"role":"user","content":"{{repeat 70000 c}}"}]}'), [400])
case("huge", "prompt-over-limit-multibyte", post(VG, '{"prompt":"{{repeat 22000 \u00e9\u00e9}}"}'), [400])
case("huge", "prompt-escapes-over-limit", post(VG, '{"prompt":"{{repeat 40000 \\u00e9}}"}'), [400])
case("huge", "model-name-20k", post(VG, '{"prompt":"a","model":"{{repeat 20000 m}}"}'), [400])
case("huge", "style-20k", post(VG, '{"prompt":"a","style":"{{repeat 20000 s}}"}'), [400])
case("huge", "remix-id-20k", post(VR, '{"prompt":"a","remix_target_id":"s_{{repeat 20000 z}}"}'), [400])
case("huge", "video-url-over-limit", post(CC, '{"video":"https://example.com/{{repeat 5000 v}}.mp4"}'), [400])
case("huge", "many-messages-no-content", post(CHAT, '{"model":"sora2-landscape-10s","messages":[{{repeat 5000 {"role":"user"},}}{"role":"user"}]}'), [400])
case("huge", "many-unknown-keys", post(VG, '{{{repeat 5000 "k":1,}}"prompt":null}'), [400])
case("huge", "key-50k", post(VG, '{"{{repeat 50000 k}}":1}'), [400])
for name, body in [("brackets-10000", "{{repeat 10000 [}}"), ("braces-10000", '{{repeat 10000 {"a":}}'),
                   ("prompt-nested-10000", '{"prompt":{{repeat 10000 [}}'),
                   ("unknown-field-nested-10000", '{"x":{{repeat 10000 [}}1{{repeat 10000 ]}},"prompt":null}'),
                   ("messages-nested-10000", '{"model":"sora2-landscape-10s","messages":{{repeat 10000 [}}{{repeat 10000 ]}}}'),
                   ("content-nested-1000", '{"model":"sora2-landscape-10s","messages":[{"role":"user","content":{{repeat 1000 [}}{{repeat 1000 ]}}}]}'),
                   ("balanced-200", '{"x":{{repeat 200 [}}{{repeat 200 ]}},"prompt":5}'),
                   ("objects-nested-10000", '{"x":{{repeat 10000 {"y":}}1{{repeat 10000 }}}}')]:
    path = CHAT if "messages" in name or "content" in name else VG
    case("nesting", name, post(path, body), [400])

# === invalid UTF-8 ===
for name, body in [("prompt-ff", b'{"prompt":"a \xff cat"}'), ("prompt-overlong", b'{"prompt":"\xc0\xaf"}'),
                   ("prompt-truncated-seq", b'{"prompt":"\xe2\x82"}'), ("prompt-surrogate-bytes", b'{"prompt":"\xed\xa0\x80"}'),
                   ("key-invalid", b'{"pr\xffompt":"a"}'), ("whole-body-latin1", b'{"prompt":"caf\xe9"}'),
                   ("outside-string", b'{"prompt":"a"}\xff'), ("model-invalid", b'{"prompt":"a","model":"\xfe\xfe"}')]:
    case("utf8", name, post(VG, body), [400])
case("utf8", "chat-content-invalid", post(CHAT, b'{"model":"sora2-landscape-10s","messages":[{"role":"user","content":"\xf8\x88\x80\x80\x80"}]}'), [400])
case("utf8", "utf16-body", post(VG, '{"prompt":"a cat"}'.encode("utf-16")), [400])

# === content type ===
for name, ctype in [("missing", None), ("text-plain", "text/plain"), ("form", "application/x-www-form-urlencoded"),
                    ("multipart", "multipart/form-data; boundary=x"), ("jsonx", "application/jsonx"),
                    ("json-typo", "applicaton/json"), ("empty", ""), ("star", "*/*"), ("xml", "application/xml"),
                    ("text-json", "text/json"), ("octet", "application/octet-stream"), ("semicolon-first", ";application/json")]:
    case("content-type", name, post(VG, VALID[VG], ctype=ctype), [415])
case("content-type", "latin1-value", post(VG, VALID[VG], ctype=None, headers=[b"Content-Type: application/j\xe9son"]), [415])
case("content-type", "chat-missing", post(CHAT, VALID[CHAT], ctype=None), [415])

# === bodies over the limit (the corpus gateway allows 256 KiB) ===
case("too-large", "content-length-declared-huge", request("POST", VG, b"", length=False, headers=["Content-Length: 99999999999"]), [413])
case("too-large", "content-length-300k", post(VG, '{"prompt":"{{repeat 300000 a}}"}'), [413])
case("too-large", "content-length-300k-chat", post(CHAT, '{"model":"x","messages":"{{repeat 300000 a}}"}'), [413])
case("too-large", "chunked-300k", request("POST", VG, b"{{repeat 40 2000\r\n{{repeat 8192 a}}\r\n}}0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [413])
case("too-large", "chunked-one-big-chunk", request("POST", VG, b"50000\r\n{{repeat 327680 a}}\r\n0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [413])
case("too-large", "image-over-limit", post(IT, '{"prompt":"a","image":"{{repeat 80000 QUJD}}"}'), [413])
case("too-large", "content-length-u64-max", request("POST", VG, b"", length=False, headers=["Content-Length: 18446744073709551615"]), [413, 400], raw_ok=True)
case("too-large", "content-length-overflow", request("POST", VG, b"", length=False, headers=["Content-Length: 99999999999999999999999"]), [400], raw_ok=True)

# === base64 and data URIs ===
bad_images = [
    ("not-base64", "!!!not base64!!!"), ("spaces-only", "    "), ("empty", ""), ("one-char", "Q"),
    ("data-no-comma", "data:image/png;base64"), ("data-no-base64", "data:image/png," + b64(PNG)),
    ("data-empty-payload", "data:image/png;base64,"), ("data-garbage", "data:image/png;base64,@@@@"),
    ("data-wrong-mime", "data:text/plain;base64," + b64(PNG)), ("data-video-mime", "data:video/mp4;base64," + b64(PNG)),
    ("url-http", "http://example.com/cat.png"), ("url-file", "file:///etc/passwd"), ("url-ftp", "ftp://example.com/a.png"),
    ("base64-of-text", b64(b"hello, this is text not an image")), ("truncated-png", b64(PNG[:5])),
    ("base64-of-mp4", b64(MP4)), ("base64-of-webm", b64(WEBM)), ("data-uri-nul", "data:image/png;base64,\u0000" + b64(PNG)),
    ("base64-url-alphabet-garbage", "____----____"), ("base64-internal-padding", "iVBO==Rw0KGgo"),
    ("javascript", "javascript:alert(1)"), ("data-mime-only", "data:"),
]
for i, (name, value) in enumerate(bad_images):
    path = [IT, VT, VS][i % 3]
    case("media", f"image-{name}-{short(path)}", post(path, with_field(path, "image", value)), [400])
for name, value in [("not-base64", "%%%"), ("empty", ""), ("png", b64(PNG)), ("gif", b64(GIF)), ("jpeg", b64(JPEG)),
                    ("webp", b64(WEBP)), ("text", b64(b"just some text, no video")),
                    ("data-image-mime", "data:image/png;base64," + b64(MP4)), ("data-png-as-video", "data:video/mp4;base64," + b64(PNG)),
                    ("data-gif-as-video", "data:image/gif;base64," + b64(GIF)), ("ftp-url", "ftp://example.com/v.mp4"),
                    ("file-url", "file:///etc/passwd"), ("data-garbage", "data:video/mp4;base64,***"),
                    ("truncated-mp4", b64(MP4[:6])), ("data-no-comma", "data:video/mp4;base64")]:
    for path in ([CC, CG] if name in ("png", "gif", "text") else [CC]):
        case("media", f"video-{name}-{short(path)}", post(path, with_field(path, "video", value)), [400])
chat_img = lambda url: msgs([{"type": "text", "text": "a cat"}, {"type": "image_url", "image_url": {"url": url}}])
chat_vid = lambda url: msgs([{"type": "text", "text": "a cat"}, {"type": "video_url", "video_url": {"url": url}}])
for name, body in [
    ("chat-image-part-text", {"model": "gpt-image", "messages": chat_img("data:image/png;base64," + b64(b"plain text"))}),
    ("chat-image-part-mp4", {"model": "gpt-image", "messages": chat_img("data:video/mp4;base64," + b64(MP4))}),
    ("chat-image-part-url", {"model": "gpt-image", "messages": chat_img("https://example.com/a.png")}),
    ("chat-video-part-png", {"model": "sora2-landscape-10s", "messages": chat_vid("data:video/mp4;base64," + b64(PNG))}),
    ("chat-video-part-gif", {"model": "sora2-landscape-10s", "messages": chat_vid(b64(GIF))}),
    ("chat-video-for-image-model", {"model": "gpt-image", "messages": chat_vid("data:video/mp4;base64," + b64(MP4))}),
    ("chat-image-for-extension", {"model": "sora2-extension-10s", "messages": chat_img("data:image/png;base64," + b64(PNG))}),
    ("chat-top-image-garbage", {"model": "gpt-image", "messages": msgs("a cat"), "image": "@@@"}),
    ("chat-top-video-text", {"model": "sora2-landscape-10s", "messages": msgs("a cat"), "video": b64(b"text")}),
]:
    case("media", name, post(CHAT, body), [400])

# === absurd storyboards (the storyboard endpoint needs one) ===
boards = [
    ("1000-shots", "".join(f"[1.0s]shot {i} " for i in range(1000))), ("101-shots", "".join(f"[1s]s{i} " for i in range(101))),
    ("zero-seconds", "[0s]a cat [0s]a dog"), ("zero-point-zero", "[0.0s]a [5s]b"), ("negative", "[-5s]a cat [5s]a dog"),
    ("1e308", "[1e308s]a cat"), ("nan", "[NaNs]a cat [NaNs]a dog"), ("inf", "[infs]a [infs]b"),
    ("unclosed", "[5.0s a cat [5.0s a dog"), ("unopened", "5.0s]a cat 5.0s]a dog"), ("empty-marker", "[]a cat"),
    ("no-unit", "[5]a cat [5]a dog"), ("too-many-digits", "[9999999s]a cat"), ("too-many-decimals", "[1.234s]a cat"),
    ("only-markers", "[5s][5s][5s]"), ("empty-scenes", "[5s]   [5s]   "), ("plain-prompt", "a cat and a dog"),
    ("seven-digits", "[1000000s]a [1s]b"), ("comma-decimal", "[5,0s]a [5,0s]b"), ("unicode-digits", "[\uff15s]a [\uff15s]b"),
    ("marker-in-fence-only", "```\n[5s]\n```"), ("whitespace-marker", "[ 5s ]a [ 5s ]b"),
]
for name, prompt in boards:
    case("storyboard", name, post(VS, with_field(VS, "prompt", prompt)), [400])
for name, prompt in [("chat-1000-shots", "".join(f"[1.0s]shot {i} " for i in range(1000))),
                     ("chat-zero-seconds", "[0s]a cat [0s]a dog"), ("chat-too-many-digits", "[9999999s]a [5s]b")]:
    case("storyboard", name, post(CHAT, with_field(CHAT, "messages", msgs(prompt))), [400])

# === unknown models and styles ===
for i, model in enumerate(["gpt-4", "sora3", "", " ", "SORA2-LANDSCAPE-10S", "sora2-landscape-10s ", "sora2-landscape-10s\u0000",
                           "../sora2-landscape-10s", "sora-image", "dall-e-3", "\u202esora2", "sora2-landscape-10s;drop"]):
    path = [CHAT, VG, IG][i % 3]
    case("models", f"unknown-{i:02d}-{short(path)}", post(path, with_field(path, "model", model)), [400])
for name, path, model in [("image-model-on-videos", VG, "gpt-image"), ("video-model-on-images", IG, "sora2-landscape-10s"),
                          ("video-model-on-characters-create", CC, "sora2-landscape-10s"), ("extension-on-videos", VG, "sora2-extension-10s"),
                          ("avatar-on-images", IT, "avatar-create"), ("enhance-on-remix", VR, "prompt-enhance-short-10s")]:
    case("models", name, post(path, with_field(path, "model", model)), [400])
for i, style in enumerate(["not-a-style", "", "anime-x", "anime;rm", "{anime}", "\u0000", "fest ive", "🪐👺"]):
    path = [VG, VT, VR, VS][i % 4]
    case("styles", f"unknown-{i:02d}-{short(path)}", post(path, with_field(path, "style", style)), [400])
for path, field, value in [(IG, "style", "anime"), (IG, "image", b64(PNG)), (VG, "image", b64(PNG)), (VG, "video", b64(MP4)),
                           (IG, "remix_target_id", REMIX), (CC, "prompt", "a cat"), (VG, "timestamps", "0,3"), (IT, "video", b64(MP4))]:
    case("fields", f"{short(path)}-{field}-not-accepted", post(path, with_field(path, field, value)), [400])
for name, value in [("reversed", "5,1"), ("negative", "-1,3"), ("equal", "2,2"), ("over-hour", "0,3601"), ("nan", "NaN,3"),
                    ("inf", "0,inf"), ("one-number", "3"), ("three", [0, 1, 2]), ("strings-in-array", ["0", "3"]), ("empty", ""),
                    ("1e308", "0,1e308")]:
    case("fields", f"timestamps-{name}", post(CC, with_field(CC, "timestamps", value)), [400])
for name, value in [("bad-hex", "s_" + "g" * 32), ("uppercase", "s_" + "ABCDEF0123456789" * 2), ("short", "s_123"),
                    ("empty", ""), ("gen-id", "gen_01abc"), ("link-without-id", "https://sora.chatgpt.com/p/"),
                    ("short-id-in-link", "https://sora.chatgpt.com/p/s_0123"), ("id-31-hex", "s_" + "a" * 31)]:
    case("fields", f"remix-{name}", post(VR, with_field(VR, "remix_target_id", value)), [400])

# === path tricks in task ids ===
for name, target in [
    ("dotdot", "/v1/tasks/../models"), ("dotdot-encoded", "/v1/tasks/%2e%2e"), ("dotdot-encoded-slash", "/v1/tasks/%2e%2e%2fmodels"),
    ("overlong", "/v1/tasks/task_" + "a" * 5000), ("unicode", "/v1/tasks/task_%E2%98%83"), ("nul", "/v1/tasks/task_%00abc"),
    ("uppercase", "/v1/tasks/task_ABCDEF0123456789ABCDEF0123456789"), ("TASK-prefix", "/v1/tasks/TASK_0123456789abcdef"),
    ("no-prefix", "/v1/tasks/0123456789abcdef"), ("empty-after-prefix", "/v1/tasks/task_"), ("just-dot", "/v1/tasks/."),
    ("trailing-slash", "/v1/tasks/task_abc/"), ("double-slash", "/v1/tasks//task_abc"), ("query-only", "/v1/tasks/?id=task_abc"),
    ("percent-garbage", "/v1/tasks/%zz"), ("semicolon", "/v1/tasks/task_abc;x=1"), ("backslash-encoded", "/v1/tasks/..%5c..%5cetc"),
    ("plus-space", "/v1/tasks/task+abc"), ("well-formed-unknown", "/v1/tasks/task_0123456789abcdef0123456789abcdef"),
    ("utf8-overlong-encoded", "/v1/tasks/%c0%ae%c0%ae"),
]:
    case("task-ids", name, request("GET", target, ctype=None, length=False), [400, 404])
for name, target in [("v1-dotdot-admin", "/v1/../api/tokens"), ("double-slash-v1", "//v1/models"), ("v2", "/v2/models"),
                     ("models-trailing-slash", "/v1/models/"), ("v1-root", "/v1"), ("encoded-v1", "/%76%31/models"),
                     ("long-path", "/v1/" + "x/" * 2000)]:
    case("routes", name, request("GET", target, ctype=None, length=False), [404])
for method, path in [("PUT", VG), ("DELETE", "/v1/models"), ("PATCH", CHAT), ("GET", CHAT), ("POST", "/v1/models"),
                     ("OPTIONS", VG), ("BREW", VG), ("POST", "/v1/tasks/task_abc"), ("TRACE", "/v1/models")]:
    case("routes", f"method-{method.lower()}-{short(path)}", request(method, path, ctype=None, length=False), [405])

# === authentication and duplicate headers ===
case("auth", "missing", post(VG, VALID[VG], auth=False), [401])
case("auth", "wrong-key", post(VG, VALID[VG], auth=False, headers=["Authorization: Bearer wrong"]), [401])
case("auth", "basic", post(VG, VALID[VG], auth=False, headers=["Authorization: Basic aGFuMTIzNDo="]), [401])
case("auth", "bare-key", post(VG, VALID[VG], auth=False, headers=[f"Authorization: {KEY}"]), [401])
case("auth", "bearer-empty", post(VG, VALID[VG], auth=False, headers=["Authorization: Bearer "]), [401])
case("auth", "key-prefix", post(VG, VALID[VG], auth=False, headers=[f"Authorization: Bearer {KEY}x"]), [401])
case("auth", "latin1-key", post(VG, VALID[VG], auth=False, headers=[b"Authorization: Bearer han1234\xe9"]), [401])
case("auth", "missing-on-bad-json", post(VG, "{", auth=False), [401])
case("auth", "missing-on-unknown-route", request("GET", "/v1/nope", auth=False, ctype=None, length=False), [401])
case("duplicate-headers", "two-authorization-good-bad", post(VG, VALID[VG], auth=False,
     headers=[f"Authorization: Bearer {KEY}", "Authorization: Bearer wrong"]), [401])
case("duplicate-headers", "two-authorization-bad-good", post(VG, VALID[VG], auth=False,
     headers=["Authorization: Bearer wrong", f"Authorization: Bearer {KEY}"]), [401])
case("duplicate-headers", "two-authorization-same", post(VG, VALID[VG], auth=False,
     headers=[f"Authorization: Bearer {KEY}", f"Authorization: Bearer {KEY}"]), [401])
case("duplicate-headers", "two-content-type-both-json", post(VG, VALID[VG], ctype=None,
     headers=["Content-Type: application/json", "Content-Type: application/json"]), [415])
case("duplicate-headers", "two-content-type", post(VG, VALID[VG], ctype=None,
     headers=["Content-Type: text/plain", "Content-Type: application/json"]), [415])
case("duplicate-headers", "two-content-type-json-first", post(VG, {"prompt": None}, ctype=None,
     headers=["Content-Type: application/json", "Content-Type: text/plain"]), [415])
case("duplicate-headers", "two-content-length-different", request("POST", VG, '{"prompt":null}', length=False,
     headers=["Content-Length: 15", "Content-Length: 3"]), [400], raw_ok=True)
case("duplicate-headers", "two-content-length-same", request("POST", VG, '{"prompt":null}', length=False,
     headers=["Content-Length: 15", "Content-Length: 15"]), [400], raw_ok=True)
case("duplicate-headers", "content-length-list", request("POST", VG, '{"prompt":null}', length=False,
     headers=["Content-Length: 15, 15"]), [400], raw_ok=True)
case("duplicate-headers", "content-length-and-chunked", request("POST", VG, b"f\r\n{\"prompt\":null}\r\n0\r\n\r\n", length=False,
     headers=["Content-Length: 5", "Transfer-Encoding: chunked"]), [400], raw_ok=True)
case("duplicate-headers", "two-host", post(VG, {"prompt": None}, headers=["Host: other.test"]), [400], raw_ok=True)

# === HTTP/1.1 oddities ===
def body_req(**kw):
    return request("POST", VG, '{"prompt":null}', **kw)

case("http", "absolute-form", request("POST", "http://gateway.test/v1/videos/generate", '{"prompt":null}'), [400])
case("http", "absolute-form-other-host", request("POST", "http://evil.test/v1/videos/generate", '{"prompt":null}'), [400])
case("http", "lowercase-method", request("post", VG, '{"prompt":null}'), [405, 400], raw_ok=True)
case("http", "chunked-bad-size", request("POST", VG, b"zz\r\n{}\r\n0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [400], raw_ok=True)
case("http", "chunked-negative-size", request("POST", VG, b"-5\r\n{}\r\n0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [400], raw_ok=True)
case("http", "chunked-size-overflow", request("POST", VG, b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [400, 413], raw_ok=True)
case("http", "chunked-size-too-small", request("POST", VG, b"2\r\n{\"prompt\":null}\r\n0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [400], raw_ok=True)
case("http", "chunked-missing-crlf", request("POST", VG, b"f\r\n{\"prompt\":null}0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [400], raw_ok=True)
case("http", "chunked-no-terminator", request("POST", VG, b"f\r\n{\"prompt\":null}\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [400, 408], raw_ok=True)
case("http", "chunked-ok-bad-json", request("POST", VG, b"5\r\n{\"pro\r\n0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [400])
case("http", "chunked-extension", request("POST", VG, b"f;ext=1\r\n{\"prompt\":null}\r\n0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked"]), [400])
case("http", "transfer-encoding-gzip", request("POST", VG, '{"prompt":null}', length=False, headers=["Transfer-Encoding: gzip"]), [400], raw_ok=True)
case("http", "transfer-encoding-chunked-twice", request("POST", VG, b"f\r\n{\"prompt\":null}\r\n0\r\n\r\n", length=False, headers=["Transfer-Encoding: chunked, chunked"]), [400], raw_ok=True)
case("http", "expect-100-continue", request("POST", VG, '{"prompt":null}', headers=["Expect: 100-continue"]), [400])
case("http", "expect-100-continue-too-large", request("POST", VG, b"", length=False, headers=["Expect: 100-continue", "Content-Length: 999999999"]), [413])
case("http", "expect-unknown", request("POST", VG, '{"prompt":null}', headers=["Expect: 200-ok"]), [400, 417], raw_ok=True)
case("http", "http-1.0", request("POST", VG, '{"prompt":null}', version="HTTP/1.0"), [400])
case("http", "http-1.0-no-host", request("POST", VG, '{"prompt":null}', version="HTTP/1.0", host=None), [400])
case("http", "missing-host", request("POST", VG, '{"prompt":null}', host=None), [400], raw_ok=True)
case("http", "http-2.0-line", request("POST", VG, '{"prompt":null}', version="HTTP/2.0"), [400], raw_ok=True)
case("http", "http-9.9", request("POST", VG, '{"prompt":null}', version="HTTP/9.9"), [400], raw_ok=True)
case("http", "no-version", b"GET /v1/models\r\nHost: gateway.test\r\n\r\n", [400], raw_ok=True)
case("http", "lf-only", request("POST", VG, '{"prompt":null}').replace(b"\r\n", b"\n"), [400], raw_ok=True)
case("http", "space-before-colon", body_req(headers=["X-Test : 1"]), [400], raw_ok=True)
case("http", "obs-fold", body_req(headers=["X-Test: a", " folded"]), [400], raw_ok=True)
case("http", "header-no-colon", body_req(headers=["Garbage"]), [400], raw_ok=True)
case("http", "nul-in-header", body_req(headers=[b"X-Test: a\x00b"]), [400], raw_ok=True)
case("http", "huge-header-200k", body_req(headers=["X-Big: {{repeat 200000 h}}"]), [431, 400], raw_ok=True)
case("http", "many-headers-500", body_req(headers=["{{repeat 500 X-Many: 1\r\n}}X-Last: 1"]), [431, 400], raw_ok=True)
case("http", "request-line-garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)), [400], raw_ok=True)
case("http", "space-in-target", b"GET /v1/tasks/task a HTTP/1.1\r\nHost: gateway.test\r\n\r\n", [400], raw_ok=True)
case("http", "connect-method", b"CONNECT gateway.test:443 HTTP/1.1\r\nHost: gateway.test:443\r\n\r\n", [400, 404, 405], raw_ok=True)
case("http", "asterisk-form", b"OPTIONS * HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer han1234\r\n\r\n", [400, 404, 405], raw_ok=True)
case("http", "content-length-negative", request("POST", VG, '{"prompt":null}', length=False, headers=["Content-Length: -15"]), [400], raw_ok=True)
case("http", "content-length-plus", request("POST", VG, '{"prompt":null}', length=False, headers=["Content-Length: +15"]), [400], raw_ok=True)
case("http", "content-length-hex", request("POST", VG, '{"prompt":null}', length=False, headers=["Content-Length: 0xf"]), [400], raw_ok=True)
case("http", "body-longer-than-length", request("POST", VG, '{"prompt":null}{"prompt":null}', length=False, headers=["Content-Length: 15"]), [400], raw_ok=True)
case("http", "body-shorter-than-length", request("POST", VG, '{"prompt":', length=False, headers=["Content-Length: 100"]), [408])
case("http", "get-with-body", request("GET", "/v1/models/x", '{"prompt":null}'), [404])
case("http", "pipelined-two-bad", request("POST", VG, '{"prompt":null}') + request("POST", IG, '{"prompt":5}'), [400])
case("http", "leading-crlf", b"\r\n\r\n" + request("POST", VG, '{"prompt":null}'), [400], raw_ok=True)


# === magic bytes without a header, shots longer than a minute (added last: no renumbering) ===
for name, data in [("png-signature-only", PNG[:8]), ("png-no-ihdr-dimensions", PNG[:16]),
                   ("png-idat-first", PNG[:8] + b"\0\0\0\x0dIDAT\0\0\0\x01\0\0\0\x01"),
                   ("jpeg-soi-only", JPEG[:3]), ("jpeg-no-segment", b"\xff\xd8\xff\x00\x00\x10"),
                   ("gif-no-screen", GIF[:6]), ("webp-no-chunk", WEBP[:12])]:
    case("media", name, post(IT, with_field(IT, "image", b64(data))), [400])
    case("media", f"{name}-video", post(VT, with_field(VT, "image", "data:image/png;base64," + b64(data))), [400])
for name, prompt in [("shot-over-a-minute", "[61s]a cat [5s]a dog"), ("shot-999999", "[5s]a [999999s]b"),
                     ("shot-60-point-01", "[60.01s]a")]:
    case("storyboard", name, post(VS, with_field(VS, "prompt", prompt)), [400])
    case("storyboard", f"chat-{name}", post(CHAT, with_field(CHAT, "messages", msgs(prompt))), [400])


def write():
    for old in HERE.glob("*.http"):
        old.unlink()
    for i, (category, name, raw, expect, notes, raw_ok) in enumerate(CASES, start=1):
        head = f"# expect: {' '.join(map(str, expect))}\n"
        if raw_ok:
            head += "# hyper-may-refuse\n"
        for note in notes:
            head += f"# {note}\n"
        data = head.encode() + raw
        assert len(data) < 100_000, (name, len(data))
        (HERE / f"{i:03d}-{category}-{name}.http").write_bytes(data)
    print(f"{len(CASES)} files")


if __name__ == "__main__":
    write()
