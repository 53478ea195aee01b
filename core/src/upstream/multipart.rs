//! Hand-written `multipart/form-data` (RFC 7578) bodies with a deterministic boundary.
//!
//! The boundary comes from a caller-supplied `u64` (the core draws no random numbers), so a
//! body is byte-for-byte reproducible in tests. Lines end in CRLF exactly.
//!
//! ```
//! use sora2api_core::upstream::Multipart;
//!
//! let mut form = Multipart::new(7);
//! form.text("use_case", "profile");
//! assert_eq!(form.content_type(), "multipart/form-data; boundary=----sora2api0000000000000007");
//! assert_eq!(
//!     &form.finish()[..],
//!     b"------sora2api0000000000000007\r\n\
//!       Content-Disposition: form-data; name=\"use_case\"\r\n\r\n\
//!       profile\r\n\
//!       ------sora2api0000000000000007--\r\n"
//! );
//! ```

use bytes::{Bytes, BytesMut};

/// A multipart form being written.
#[derive(Debug, Clone)]
pub struct Multipart {
    boundary: String,
    body: BytesMut,
}

impl Multipart {
    /// A new, empty form whose boundary is derived from `seed` (`----sora2api` + 16 hex
    /// digits). The shell passes a random `seed`; tests pass a fixed one.
    pub fn new(seed: u64) -> Self {
        Multipart { boundary: format!("----sora2api{seed:016x}"), body: BytesMut::new() }
    }

    /// The boundary.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The `Content-Type` header value, with the boundary.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// Appends a text field.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name, None);
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Appends a file field with its file name and content type.
    pub fn file(
        &mut self,
        name: &str,
        file_name: &str,
        content_type: &str,
        data: &[u8],
    ) -> &mut Self {
        self.open(name, Some(file_name));
        self.body.extend_from_slice(format!("Content-Type: {content_type}\r\n\r\n").as_bytes());
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Writes the closing boundary and returns the body.
    pub fn finish(mut self) -> Bytes {
        self.body.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        self.body.freeze()
    }

    fn open(&mut self, name: &str, file_name: Option<&str>) {
        let mut head = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"",
            self.boundary,
            quote(name)
        );
        if let Some(file_name) = file_name {
            head.push_str(&format!("; filename=\"{}\"", quote(file_name)));
        }
        head.push_str("\r\n");
        self.body.extend_from_slice(head.as_bytes());
    }
}

/// Escapes a name for a quoted header parameter (the WHATWG form encoding: `"` and line
/// breaks percent-encoded). Our names are fixed ASCII; this only guards against misuse.
fn quote(s: &str) -> String {
    s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_file_and_text() {
        let mut form = Multipart::new(0xdead_beef);
        form.file("file", "image.png", "image/png", b"\x89PNG\r\nbytes")
            .text("file_name", "image.png");
        let body = form.finish();
        let want: &[u8] = b"------sora2api00000000deadbeef\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"image.png\"\r\n\
Content-Type: image/png\r\n\
\r\n\
\x89PNG\r\nbytes\r\n\
------sora2api00000000deadbeef\r\n\
Content-Disposition: form-data; name=\"file_name\"\r\n\
\r\n\
image.png\r\n\
------sora2api00000000deadbeef--\r\n";
        assert_eq!(&body[..], want, "{}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn boundary_depends_on_seed_only() {
        assert_eq!(Multipart::new(1).boundary(), Multipart::new(1).boundary());
        assert_ne!(Multipart::new(1).boundary(), Multipart::new(2).boundary());
        assert!(Multipart::new(u64::MAX).boundary().len() <= 70, "RFC 2046 limit");
    }

    #[test]
    fn names_cannot_break_the_header() {
        let mut form = Multipart::new(0);
        form.text("a\"b\r\nc", "v");
        let body = form.finish();
        assert!(String::from_utf8_lossy(&body).contains("name=\"a%22b%0D%0Ac\""));
    }
}
