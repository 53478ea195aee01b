//! Scenario markers in prompt text (architecture rule 7): `#name[=value][xN][@poll]`.
//! The table of what each does is in the [module docs](super).

use crate::upstream::{TransportError, UpstreamReply};

use super::http::{self, HEAVY_LOAD_MESSAGE, INVALID_REQUEST_MESSAGE};

/// A fault a marker injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fault {
    /// `#fail=429|401|500|400|403|503` (any status: the matching error body).
    Status(u16),
    /// `#heavy` (503) or `#heavy=200`: the heavy-load message.
    Heavy(u16),
    /// `#cf`: a Cloudflare challenge page.
    Cloudflare,
    /// `#country`: 403 `unsupported_country_code`.
    Country,
    /// `#hang`: no reply (transport timeout).
    Hang,
    /// `#reset`: the connection drops.
    Reset,
    /// `#lost`: the submit is carried out (the task exists), then the connection drops before
    /// the reply: the client cannot know the task was created.
    LostReply,
    /// `#html`: 200 with an HTML page.
    Html,
    /// `#garbage`: 200 that is not JSON.
    Garbage,
}

/// Where a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// At the request that carries the prompt (create, enhance).
    Submit,
    /// At the polls that report the task (`@poll`).
    Poll,
}

/// A fault with how many times it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Injected {
    pub(super) fault: Fault,
    pub(super) times: u32,
    pub(super) phase: Phase,
}

/// Everything the markers of one prompt ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Markers {
    pub(super) faults: Vec<Injected>,
    /// `#policy`: the content-policy failure path.
    pub(super) policy: bool,
    /// `#queue=N`: stay `queued` for N polls.
    pub(super) queue_polls: Option<u32>,
    /// `#nourl[=N]`: succeed without a URL for N polls (`None` = the configured default).
    pub(super) nourl: Option<Option<u32>>,
    /// `#slow=MS`: the running phase lasts MS.
    pub(super) slow_ms: Option<u64>,
    /// `#cameofail`: cameo processing fails.
    pub(super) cameo_fail: bool,
}

impl Markers {
    /// Reads every marker of `text`; unknown `#words` are ordinary prompt text.
    pub(super) fn parse(text: &str) -> Self {
        let mut markers = Markers::default();
        for (i, _) in text.match_indices('#') {
            let rest = text.get(i + 1..).unwrap_or_default();
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '=' || c == '@'))
                .unwrap_or(rest.len());
            markers.apply(rest.get(..end).unwrap_or_default());
        }
        markers
    }

    fn apply(&mut self, token: &str) {
        let (token, phase) = match token.strip_suffix("@poll") {
            Some(t) => (t, Phase::Poll),
            None => (token, Phase::Submit),
        };
        let (head, value) = match token.split_once('=') {
            Some((h, v)) => (h, Some(v)),
            None => (token, None),
        };
        // `xN` ends the value if there is one, else the name.
        let (head, value, times) = match value {
            Some(v) => {
                let (v, n) = split_count(v);
                (head, Some(v), n)
            }
            None => {
                let (h, n) = split_count(head);
                (h, None, n)
            }
        };
        let num = value.and_then(|v| v.parse::<u64>().ok());
        let status = num.and_then(|n| u16::try_from(n).ok());
        let fault = match (head, value) {
            ("fail", Some(_)) => status.filter(|s| (400..=599).contains(s)).map(Fault::Status),
            ("heavy", None) => Some(Fault::Heavy(503)),
            ("heavy", Some(_)) => status.filter(|s| (200..=599).contains(s)).map(Fault::Heavy),
            ("cf", None) => Some(Fault::Cloudflare),
            ("country", None) => Some(Fault::Country),
            ("hang", None) => Some(Fault::Hang),
            ("reset", None) => Some(Fault::Reset),
            ("lost", None) => Some(Fault::LostReply),
            ("html", None) => Some(Fault::Html),
            ("garbage", None) => Some(Fault::Garbage),
            ("policy", None) => {
                self.policy = true;
                None
            }
            ("queue", Some(_)) => {
                self.queue_polls = num.and_then(|n| u32::try_from(n).ok());
                None
            }
            ("nourl", None) => {
                self.nourl = Some(None);
                None
            }
            ("nourl", Some(_)) => {
                self.nourl = Some(num.and_then(|n| u32::try_from(n).ok()));
                None
            }
            ("slow", Some(_)) => {
                self.slow_ms = num.map(|ms| ms.min(MAX_SLOW_MS));
                None
            }
            ("cameofail", None) => {
                self.cameo_fail = true;
                None
            }
            _ => None,
        };
        if let Some(fault) = fault {
            self.faults.push(Injected { fault, times, phase });
        }
    }

    /// The faults that fire at `phase`.
    pub(super) fn at(&self, phase: Phase) -> impl Iterator<Item = &Injected> {
        self.faults.iter().filter(move |f| f.phase == phase)
    }
}

/// The longest running phase `#slow=MS` asks for: one virtual day.
pub(super) const MAX_SLOW_MS: u64 = 86_400_000;

/// `"429x2"` -> `("429", 2)`; no suffix -> `(text, 1)`.
fn split_count(text: &str) -> (&str, u32) {
    if let Some(i) = text.rfind('x') {
        let (head, tail) =
            (text.get(..i).unwrap_or_default(), text.get(i + 1..).unwrap_or_default());
        if !head.is_empty() && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = tail.parse::<u32>() {
                return (head, n);
            }
        }
    }
    (text, 1)
}

/// What a fired fault answers.
pub(super) enum Outcome {
    Reply(UpstreamReply),
    Transport(TransportError),
}

/// The reply of a fault. `country` is the param of `unsupported_country_code`.
pub(super) fn outcome(fault: &Fault, country: &str) -> Outcome {
    Outcome::Reply(match *fault {
        Fault::Status(400) => http::invalid_request(),
        Fault::Status(401) => http::error(
            401,
            "Your authentication token has been invalidated. Please try signing in again.",
            "invalid_request_error",
            None,
            "token_invalidated",
        ),
        Fault::Status(429) => http::rate_limited(
            "Too many concurrent requests. Please wait for your other generations to finish.",
            RETRY_AFTER_S,
        ),
        Fault::Status(status) if status >= 500 => {
            http::error(status, "Internal server error", "server_error", None, "internal_error")
        }
        Fault::Status(status) => {
            http::error(status, INVALID_REQUEST_MESSAGE, "invalid_request_error", None, "error")
        }
        Fault::Heavy(status) => {
            http::error(status, HEAVY_LOAD_MESSAGE, "server_error", None, "heavy_load")
        }
        Fault::Cloudflare => {
            let mut reply = http::html(403, CF_PAGE);
            reply.headers.push(("cf-mitigated".into(), "challenge".into()));
            reply.headers.push(("server".into(), "cloudflare".into()));
            reply
        }
        Fault::Country => country_blocked(country),
        Fault::Hang => return Outcome::Transport(TransportError::Timeout),
        Fault::Reset | Fault::LostReply => return Outcome::Transport(TransportError::Reset),
        Fault::Html => http::html(200, "<!DOCTYPE html><html><head><title>Sora</title></head><body><div id=\"root\"></div></body></html>"),
        Fault::Garbage => UpstreamReply::json(200, "{\"id\":\"task_"),
    })
}

/// The `Retry-After` of a `#fail=429`, seconds.
pub(super) const RETRY_AFTER_S: u64 = 30;

/// 403 `unsupported_country_code` with the country as `param`.
pub(super) fn country_blocked(country: &str) -> UpstreamReply {
    http::error(
        403,
        "Sora is not available in your country.",
        "invalid_request_error",
        Some(country),
        "unsupported_country_code",
    )
}

/// A Cloudflare managed-challenge page (spec 4.1: "Just a moment", `challenge-platform`).
const CF_PAGE: &str = "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>\
<meta http-equiv=\"refresh\" content=\"390\"></head><body><div class=\"main-wrapper\">\
<h1>sora.chatgpt.com</h1><p>Verifying you are human. This may take a few seconds.</p></div>\
<script src=\"/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1\"></script></body></html>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_markers() {
        let m = Markers::parse("a cat #fail=429x2 #queue=3 #nourl #slow=5000 #policy #hang@poll");
        assert_eq!(
            m.faults,
            vec![
                Injected { fault: Fault::Status(429), times: 2, phase: Phase::Submit },
                Injected { fault: Fault::Hang, times: 1, phase: Phase::Poll },
            ]
        );
        assert_eq!(m.queue_polls, Some(3));
        assert_eq!(m.nourl, Some(None));
        assert_eq!(m.slow_ms, Some(5000));
        assert!(m.policy && !m.cameo_fail);
        let m = Markers::parse("#heavy=200 #heavyx3 #cf, #hashtag #fail=abc #");
        assert_eq!(m.faults.len(), 3);
        assert_eq!(
            m.faults[1],
            Injected { fault: Fault::Heavy(503), times: 3, phase: Phase::Submit }
        );
        assert_eq!(Markers::parse("plain prompt"), Markers::default());
    }
}
