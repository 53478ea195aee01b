//! Reply and error shapes (spec 4.1), query strings, JSON bodies and multipart forms.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::upstream::UpstreamReply;

/// The exact message of the observed `invalid_request` 400 (spec 2.4).
pub const INVALID_REQUEST_MESSAGE: &str = "Hmmm something didn't look right with your request. \
     Please try again later or visit https://help.openai.com if this issue persists.";

/// The overload message (spec 4.1).
pub const HEAVY_LOAD_MESSAGE: &str = "We're under heavy load, please try again later.";

/// A JSON reply.
pub(super) fn json_reply(status: u16, body: &Value) -> UpstreamReply {
    UpstreamReply::json(status, body.to_string())
}

/// A reply with no body (204).
pub(super) fn empty(status: u16) -> UpstreamReply {
    UpstreamReply { status, headers: Vec::new(), body: Bytes::new() }
}

/// An error in the OpenAI envelope `{"error":{"message","type","param","code"}}`.
pub(super) fn error(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: &str,
) -> UpstreamReply {
    json_reply(
        status,
        &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
    )
}

/// The observed 400 `invalid_request` body, byte for byte what the backend sends for a bad
/// or stale sentinel and for a malformed body.
pub(super) fn invalid_request() -> UpstreamReply {
    error(400, INVALID_REQUEST_MESSAGE, "invalid_request_error", None, "invalid_request")
}

/// 404 for an object that does not exist (or belongs to another account).
pub(super) fn not_found(what: &str) -> UpstreamReply {
    error(404, &format!("{what} not found"), "invalid_request_error", None, "not_found")
}

/// 429 `rate_limit_exceeded` with `Retry-After` (seconds).
pub(super) fn rate_limited(message: &str, retry_after_s: u64) -> UpstreamReply {
    let mut reply = error(429, message, "invalid_request_error", None, "rate_limit_exceeded");
    reply.headers.push(("retry-after".into(), retry_after_s.max(1).to_string()));
    reply
}

/// An HTML reply.
pub(super) fn html(status: u16, body: &str) -> UpstreamReply {
    UpstreamReply {
        status,
        headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
        body: Bytes::copy_from_slice(body.as_bytes()),
    }
}

/// A binary reply (media).
pub(super) fn binary(content_type: &str, body: &'static [u8]) -> UpstreamReply {
    UpstreamReply {
        status: 200,
        headers: vec![("content-type".into(), content_type.into())],
        body: Bytes::from_static(body),
    }
}

// === query strings ===

/// The value of `key` in a query string (`a=1&b=2`), percent-decoded.
pub(super) fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `limit` from a query: absent -> `default`; present, it must be an integer in `1..=max`.
pub(super) fn limit(query: &str, default: usize, max: usize) -> Result<usize, UpstreamReply> {
    match query_param(query, "limit") {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(invalid_request()),
        },
    }
}

// === JSON bodies ===

/// A JSON object body; anything else is a 400 `invalid_request`.
pub(super) fn json_object(body: &[u8]) -> Result<Map<String, Value>, UpstreamReply> {
    serde_json::from_slice(body).map_err(|_| invalid_request())
}

/// A required non-empty string field.
pub(super) fn req_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a str, UpstreamReply> {
    match obj.get(key).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(invalid_request()),
    }
}

/// An optional string field: absent or `null` -> `None`; a non-string -> 400.
pub(super) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, UpstreamReply> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid_request()),
    }
}

/// A required unsigned integer field.
pub(super) fn req_u64(obj: &Map<String, Value>, key: &str) -> Result<u64, UpstreamReply> {
    obj.get(key).and_then(Value::as_u64).ok_or_else(invalid_request)
}

/// An optional array field: absent or `null` -> empty; a non-array -> 400.
pub(super) fn opt_array<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a [Value], UpstreamReply> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(invalid_request()),
    }
}

// === multipart/form-data ===

/// One part of a multipart form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    pub(super) name: String,
    pub(super) filename: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) data: Vec<u8>,
}

impl Part {
    pub(super) fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// Parses a `multipart/form-data` body with the boundary of its `content-type` header.
/// `None` when the header is not multipart, has no boundary, or the body is not well formed.
pub(super) fn multipart(content_type: Option<&str>, body: &[u8]) -> Option<Vec<Part>> {
    let content_type = content_type?;
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_owned())
    })?;
    if boundary.is_empty() {
        return None;
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let start = find(rest, &delimiter)?;
    rest = rest.get(start + delimiter.len()..)?;
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(parts); // the closing delimiter
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(rest.get(..header_end)?).ok()?;
        rest = rest.get(header_end + 4..)?;
        let mut close = b"\r\n".to_vec();
        close.extend_from_slice(&delimiter);
        let data_end = find(rest, &close)?;
        let data = rest.get(..data_end)?.to_vec();
        rest = rest.get(data_end + close.len()..)?;
        parts.push(parse_part_head(head, data)?);
    }
}

fn parse_part_head(head: &str, data: Vec<u8>) -> Option<Part> {
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let (key, value) = line.split_once(':')?;
        if key.trim().eq_ignore_ascii_case("content-disposition") {
            let mut fields = value.split(';');
            if !fields.next()?.trim().eq_ignore_ascii_case("form-data") {
                return None;
            }
            for field in fields {
                let Some((k, v)) = field.split_once('=') else { continue };
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim() {
                    "name" => name = Some(v),
                    "filename" => filename = Some(v),
                    _ => {}
                }
            }
        } else if key.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    Some(Part { name: name?, filename, content_type, data })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The part named `name`.
pub(super) fn part<'a>(parts: &'a [Part], name: &str) -> Option<&'a Part> {
    parts.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_round_trip() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file_name\"\r\n\r\nimage.png\r\n--XyZ--\r\n";
        let parts = multipart(Some("multipart/form-data; boundary=XyZ"), body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].filename.as_deref(), Some("image.png"));
        assert_eq!(parts[0].data, b"\x89PNG");
        assert_eq!(parts[1].text(), Some("image.png"));
        assert!(multipart(Some("application/json"), body).is_none());
        assert!(multipart(Some("multipart/form-data; boundary=XyZ"), b"--XyZ\r\nbroken").is_none());
    }

    #[test]
    fn query_and_limit() {
        assert_eq!(query_param("limit=5&cursor=a%2Bb", "cursor").as_deref(), Some("a+b"));
        assert_eq!(limit("", 15, 100).ok(), Some(15));
        assert_eq!(limit("limit=0", 15, 100).err().map(|r| r.status), Some(400));
        assert_eq!(limit("limit=abc", 15, 100).err().map(|r| r.status), Some(400));
    }
}
