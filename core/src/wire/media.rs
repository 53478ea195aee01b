//! Media fields: base64 or data URIs for images, and base64, data URIs or http(s) URLs for
//! videos. Decoding makes the one copy of the media the gateway keeps.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use bytes::Bytes;

use crate::error::Error;
use crate::request::{Media, MediaFormat, VideoInput};

/// Size limits applied while decoding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest decoded image, in bytes (default 20 MiB).
    pub max_image_bytes: usize,
    /// Largest decoded inline video, in bytes (default 48 MiB: what fits in a 64 MiB body).
    pub max_video_bytes: usize,
    /// Longest prompt, in bytes (default 64 KiB).
    pub max_prompt_bytes: usize,
    /// Longest video URL, in bytes (default 4 KiB).
    pub max_url_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_image_bytes: 20 << 20,
            max_video_bytes: 48 << 20,
            max_prompt_bytes: 64 << 10,
            max_url_bytes: 4 << 10,
        }
    }
}

const fn engine(alphabet: &'static alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

const STANDARD: GeneralPurpose = engine(&alphabet::STANDARD);
const URL_SAFE: GeneralPurpose = engine(&alphabet::URL_SAFE);

/// Splits `data:<mime>[;params];base64,<payload>` into (mime, payload); bare base64 gives
/// `(None, text)`.
fn split_data_uri<'t>(
    text: &'t str,
    param: &'static str,
) -> Result<(Option<&'t str>, &'t str), Error> {
    let Some(rest) = strip_prefix_ignore_case(text, "data:") else {
        return Ok((None, text));
    };
    let (header, payload) = rest.split_once(',').ok_or_else(|| {
        Error::invalid(param, format!("{param} is a data URI without a comma before its data"))
    })?;
    let mut fields = header.split(';');
    let mime = fields.next().unwrap_or_default().trim();
    if !fields.any(|f| f.trim().eq_ignore_ascii_case("base64")) {
        return Err(Error::invalid(
            param,
            format!("{param} data URI must be base64-encoded: data:<type>;base64,<data>"),
        ));
    }
    Ok((Some(mime), payload))
}

fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// Decodes base64 (standard or URL-safe alphabet, padding optional, line breaks allowed),
/// refusing before allocating when the result would exceed `max`.
fn decode_base64(payload: &str, param: &'static str, max: usize) -> Result<Vec<u8>, Error> {
    let payload = payload.trim();
    if payload.is_empty() {
        return Err(Error::invalid(param, format!("{param} is empty")));
    }
    let estimate = base64::decoded_len_estimate(payload.len());
    if estimate > max.saturating_add(3) {
        return Err(too_large(param, estimate, max));
    }
    let first = STANDARD.decode(payload);
    let bytes = match first {
        Ok(bytes) => bytes,
        Err(_) if payload.bytes().any(|b| b == b'-' || b == b'_') => URL_SAFE
            .decode(payload)
            .map_err(|e| Error::invalid(param, format!("{param} is not valid base64: {e}")))?,
        Err(_) if payload.bytes().any(|b| b.is_ascii_whitespace()) => {
            // Some encoders wrap lines; this rare path costs one extra copy.
            let joined: Vec<u8> = payload.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            STANDARD
                .decode(joined)
                .map_err(|e| Error::invalid(param, format!("{param} is not valid base64: {e}")))?
        }
        Err(e) => return Err(Error::invalid(param, format!("{param} is not valid base64: {e}"))),
    };
    if bytes.len() > max {
        return Err(too_large(param, bytes.len(), max));
    }
    Ok(bytes)
}

fn too_large(param: &'static str, size: usize, max: usize) -> Error {
    Error::invalid(
        param,
        format!("{param} is too large: about {size} bytes decoded, the limit is {max} bytes"),
    )
}

/// Decodes an image field: bare base64 or `data:image/...;base64,...`. The bytes must be a
/// PNG, JPEG, GIF or WebP image.
pub fn decode_image(text: &str, param: &'static str, limits: &Limits) -> Result<Media, Error> {
    let (mime, payload) = split_data_uri(text, param)?;
    if let Some(mime) = mime {
        if !mime.to_ascii_lowercase().starts_with("image/") {
            return Err(Error::invalid(
                param,
                format!(
                    "{param} must be an image (data:image/...), not data:{}",
                    crate::error::echo(mime)
                ),
            ));
        }
    } else if looks_like_url(text) {
        return Err(Error::invalid(
            param,
            format!("{param} must be base64 image data or a data:image/...;base64 URI; image URLs are not fetched"),
        ));
    }
    let bytes = decode_base64(payload, param, limits.max_image_bytes)?;
    match MediaFormat::sniff(&bytes) {
        Some(format) if format.is_image() => match missing_image_header(format, &bytes) {
            None => Ok(Media { bytes: Bytes::from(bytes), format }),
            Some(what) => Err(Error::invalid(
                param,
                format!("{param} is not a complete {}: {what}", format.name()),
            )),
        },
        _ => Err(Error::invalid(param, format!("{param} is not a PNG, JPEG, GIF or WebP image"))),
    }
}

/// What is missing after an image's magic bytes, if anything: the magic alone is not an
/// image. Checked: PNG, the `IHDR` chunk first with a non-zero width and height; JPEG, the
/// start-of-image followed by a real segment marker with a length; GIF, a non-zero logical
/// screen size; WebP, a `VP8 `, `VP8L` or `VP8X` chunk. Not a decoder: the upstream judges
/// the rest.
fn missing_image_header(format: MediaFormat, bytes: &[u8]) -> Option<&'static str> {
    let nonzero = |b: Option<&[u8]>| b.is_some_and(|b| b.iter().any(|&x| x != 0));
    match format {
        MediaFormat::Png => {
            let ihdr = bytes.get(8..16) == Some(b"\0\0\0\x0dIHDR");
            (!(ihdr && nonzero(bytes.get(16..20)) && nonzero(bytes.get(20..24)))).then_some(
                "the signature is not followed by an IHDR header with a width and a height",
            )
        }
        MediaFormat::Jpeg => {
            let marker = bytes.get(3).copied().unwrap_or(0);
            let segment = matches!(marker, 0xc0..=0xcf | 0xdb | 0xdd | 0xe0..=0xef | 0xfe)
                && marker != 0xc8
                && marker != 0xcc;
            let length = bytes.get(4..6).map_or(0, |l| u16::from_be_bytes([l[0], l[1]]));
            (!(segment && length >= 2))
                .then_some("the start-of-image marker is not followed by a segment")
        }
        MediaFormat::Gif => (!(nonzero(bytes.get(6..8)) && nonzero(bytes.get(8..10))))
            .then_some("the header has no logical screen width and height"),
        MediaFormat::Webp => {
            let chunk = bytes.get(12..16);
            let known = matches!(chunk, Some(b"VP8 " | b"VP8L" | b"VP8X"));
            (!known).then_some("the RIFF header is not followed by a VP8, VP8L or VP8X chunk")
        }
        MediaFormat::Mp4 | MediaFormat::Webm => None,
    }
}

/// Decodes a video field: an `http(s)` URL (kept for the shell to fetch), bare base64, or a
/// `data:video/...;base64,...` URI (`data:application/...` too, as the original accepts). Inline
/// bytes must be an MP4/QuickTime or WebM video.
pub fn decode_video(text: &str, param: &'static str, limits: &Limits) -> Result<VideoInput, Error> {
    let trimmed = text.trim();
    if strip_prefix_ignore_case(trimmed, "http://").is_some()
        || strip_prefix_ignore_case(trimmed, "https://").is_some()
    {
        return video_url(trimmed, param, limits).map(VideoInput::Url);
    }
    if looks_like_url(trimmed) {
        return Err(Error::invalid(
            param,
            format!("{param} URL must use http or https; or send base64 data or a data:video/...;base64 URI"),
        ));
    }
    let (mime, payload) = split_data_uri(trimmed, param)?;
    if let Some(mime) = mime {
        let mime = mime.to_ascii_lowercase();
        if !(mime.starts_with("video/") || mime.starts_with("application/")) {
            return Err(Error::invalid(
                param,
                format!(
                    "{param} must be a video (data:video/...), not data:{}",
                    crate::error::echo(&mime)
                ),
            ));
        }
    }
    let bytes = decode_base64(payload, param, limits.max_video_bytes)?;
    match MediaFormat::sniff(&bytes) {
        Some(format) if !format.is_image() => {
            Ok(VideoInput::Inline(Media { bytes: Bytes::from(bytes), format }))
        }
        _ => Err(Error::invalid(param, format!("{param} is not an MP4, MOV or WebM video"))),
    }
}

/// A scheme such as `ftp://` or `file:`; base64 never contains `:`.
fn looks_like_url(text: &str) -> bool {
    let head = text.get(..text.len().min(16)).unwrap_or(text);
    head.contains("://") || strip_prefix_ignore_case(text, "file:").is_some()
}

/// Checks the form of an http(s) URL: a host, no whitespace or control characters, bounded
/// length. Where it may point (private addresses, redirects) is the fetching shell's policy.
fn video_url(url: &str, param: &'static str, limits: &Limits) -> Result<String, Error> {
    if url.len() > limits.max_url_bytes {
        return Err(Error::invalid(
            param,
            format!("{param} URL is longer than {} bytes", limits.max_url_bytes),
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            param,
            format!("{param} URL must not contain spaces or control characters"),
        ));
    }
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(Error::invalid(param, format!("{param} URL has no host")));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;

    /// A PNG's signature and `IHDR` chunk (1x1, 8-bit RGBA, CRC).
    const PNG: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    const MP4: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0";

    fn limits() -> Limits {
        Limits { max_image_bytes: 64, max_video_bytes: 64, ..Limits::default() }
    }

    #[test]
    fn images_decode_from_bare_and_data_uri() {
        let b64 = B64.encode(PNG);
        for text in [
            b64.clone(),
            format!("data:image/png;base64,{b64}"),
            format!("DATA:Image/PNG;charset=x;BASE64,{b64}"),
        ] {
            let m = decode_image(&text, "image", &limits()).unwrap();
            assert_eq!((m.bytes.as_ref(), m.format), (PNG, MediaFormat::Png), "{text}");
        }
        let unpadded = b64.trim_end_matches('=');
        assert_eq!(decode_image(unpadded, "image", &limits()).unwrap().bytes.as_ref(), PNG);
        let wrapped = format!("{}\n{}", &b64[..8], &b64[8..]);
        assert_eq!(decode_image(&wrapped, "image", &limits()).unwrap().bytes.as_ref(), PNG);
    }

    #[test]
    fn bad_images_say_why() {
        let png = B64.encode(PNG);
        let big = B64.encode([0u8; 100]);
        let cases = [
            (String::new(), "image is empty"),
            ("data:image/png;base64,".into(), "image is empty"),
            ("!!!!".into(), "image is not valid base64: Invalid symbol 33, offset 0."),
            ("data:image/png,abc".into(), "image data URI must be base64-encoded: data:<type>;base64,<data>"),
            ("data:image/png;base64".into(), "image is a data URI without a comma before its data"),
            (format!("data:video/mp4;base64,{png}"), "image must be an image (data:image/...), not data:video/mp4"),
            (B64.encode(b"just some text"), "image is not a PNG, JPEG, GIF or WebP image"),
            (B64.encode(MP4), "image is not a PNG, JPEG, GIF or WebP image"),
            (big, "image is too large: about 102 bytes decoded, the limit is 64 bytes"),
            ("https://example.com/cat.png".into(), "image must be base64 image data or a data:image/...;base64 URI; image URLs are not fetched"),
        ];
        for (text, message) in cases {
            let err = decode_image(&text, "image", &limits()).unwrap_err();
            assert_eq!((err.param(), err.message().as_str()), (Some("image"), message), "{text}");
        }
    }

    #[test]
    fn magic_bytes_alone_are_not_an_image() {
        let png_header = "image is not a complete PNG: the signature is not followed by an IHDR header with a width and a height";
        let jpeg_header =
            "image is not a complete JPEG: the start-of-image marker is not followed by a segment";
        let cases: [(&[u8], &str); 11] = [
            (&PNG[..8], png_header),
            (&PNG[..16], png_header),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIDAT\0\0\0\x01\0\0\0\x01", png_header),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\0\0\0\0\x01\x08\x06", png_header),
            (b"\xff\xd8\xff", jpeg_header),
            (b"\xff\xd8\xff\x00\x00\x10", jpeg_header),
            (b"\xff\xd8\xff\xe0\x00", jpeg_header),
            (b"GIF89a", "image is not a complete GIF: the header has no logical screen width and height"),
            (b"GIF89a\0\0\x01\0", "image is not a complete GIF: the header has no logical screen width and height"),
            (b"RIFF\0\0\0\0WEBP", "image is not a complete WebP: the RIFF header is not followed by a VP8, VP8L or VP8X chunk"),
            (b"RIFF\0\0\0\0WEBPJUNK", "image is not a complete WebP: the RIFF header is not followed by a VP8, VP8L or VP8X chunk"),
        ];
        for (bytes, message) in cases {
            let err = decode_image(&B64.encode(bytes), "image", &limits()).unwrap_err();
            assert_eq!(
                (err.param(), err.message().as_str()),
                (Some("image"), message),
                "{bytes:?}"
            );
        }
        // Plausible headers pass (the upstream judges the rest).
        let good: [(&[u8], MediaFormat); 4] = [
            (PNG, MediaFormat::Png),
            (b"\xff\xd8\xff\xe0\x00\x10JFIF\0", MediaFormat::Jpeg),
            (b"GIF89a\x01\0\x01\0\x80\0\0", MediaFormat::Gif),
            (b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0", MediaFormat::Webp),
        ];
        for (bytes, format) in good {
            let media = decode_image(&B64.encode(bytes), "image", &limits()).unwrap();
            assert_eq!(media.format, format);
        }
    }

    #[test]
    fn videos_decode_or_stay_urls() {
        let b64 = B64.encode(MP4);
        for text in [
            b64.clone(),
            format!("data:video/mp4;base64,{b64}"),
            format!("data:application/octet-stream;base64,{b64}"),
        ] {
            let v = decode_video(&text, "video", &limits()).unwrap();
            assert!(
                matches!(v, VideoInput::Inline(ref m) if m.bytes.as_ref() == MP4 && m.format == MediaFormat::Mp4),
                "{text}"
            );
        }
        for url in
            ["https://example.com/v.mp4", "HTTP://user@host:8080/a?b#c", " http://127.0.0.1/x "]
        {
            assert_eq!(
                decode_video(url, "video", &limits()).unwrap(),
                VideoInput::Url(url.trim().into())
            );
        }
    }

    #[test]
    fn bad_videos_say_why() {
        let cases = [
            ("ftp://example.com/v.mp4".to_owned(), "video URL must use http or https; or send base64 data or a data:video/...;base64 URI"),
            ("file:///etc/passwd".into(), "video URL must use http or https; or send base64 data or a data:video/...;base64 URI"),
            ("https://".into(), "video URL has no host"),
            ("https://a b/".into(), "video URL must not contain spaces or control characters"),
            (format!("https://{}", "a".repeat(5000)), "video URL is longer than 4096 bytes"),
            (format!("data:image/png;base64,{}", B64.encode(PNG)), "video must be a video (data:video/...), not data:image/png"),
            (B64.encode(PNG), "video is not an MP4, MOV or WebM video"),
        ];
        for (text, message) in cases {
            let err = decode_video(&text, "video", &limits()).unwrap_err();
            assert_eq!((err.param(), err.message().as_str()), (Some("video"), message), "{text}");
        }
    }
}
