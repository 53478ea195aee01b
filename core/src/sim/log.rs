//! The request log (spec 8 item 13).

use bytes::Bytes;

use crate::upstream::{Method, UpstreamRequest};

/// One request the simulator received, with what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The virtual time it arrived, unix ms.
    pub at_ms: u64,
    /// The method.
    pub method: Method,
    /// Path and query, e.g. `/backend/nf/pending/v2`.
    pub path_and_query: String,
    /// The headers as sent (names lower case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// The reply's status; `None` when a transport fault (`#hang`, `#reset`) answered.
    pub status: Option<u16>,
}

impl LoggedRequest {
    pub(super) fn new(at_ms: u64, req: &UpstreamRequest, status: Option<u16>) -> Self {
        LoggedRequest {
            at_ms,
            method: req.method,
            path_and_query: req.path_and_query().to_owned(),
            headers: req.headers.clone(),
            body: req.body.clone(),
            status,
        }
    }

    /// The first value of a header, by name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query.split_once('?').map_or(self.path_and_query.as_str(), |(p, _)| p)
    }

    /// Whether this request went to a sentinel-protected create route (`video_gen`,
    /// `nf/create`, `nf/create/storyboard`, `…/long_video_extension`, `project_y/post`).
    pub fn is_sentinel_route(&self) -> bool {
        self.method == Method::Post && super::is_sentinel_path(self.path())
    }
}
