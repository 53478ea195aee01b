//! Credential exchange (2.1): session token -> access token, refresh token -> access token.
//!
//! The session token travels only in the `cookie` header, the refresh token only in the
//! body; neither appears in a URL, another header or `Debug` output.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::config::UpstreamConfig;
use super::decode::{json, parse_rfc3339_ms, DecodeError, Lenient};
use super::headers::{json_body, pair, request, SESSION_COOKIE, SORA_WEB_ORIGIN};
use super::http::{Method, UpstreamReply, UpstreamRequest};
use crate::secret::Secret;

/// `GET <auth_session_url>` with the session cookie: exchanges an ST for an AT (short
/// timeout, through `proxy`, the token's). Decode with [`decode_session`].
pub fn session_to_access(
    cfg: &UpstreamConfig,
    session_token: &Secret,
    proxy: Option<String>,
) -> UpstreamRequest {
    let headers = vec![
        pair("cookie", format!("{SESSION_COOKIE}={}", session_token.expose())),
        pair("accept", "application/json"),
        pair("origin", SORA_WEB_ORIGIN),
        pair("referer", format!("{SORA_WEB_ORIGIN}/")),
    ];
    request(
        Method::Get,
        cfg.auth_session_url.clone(),
        headers,
        Bytes::new(),
        cfg.short_timeout_ms,
        proxy,
    )
}

#[derive(Serialize)]
struct RefreshBody<'a> {
    client_id: &'a str,
    grant_type: &'static str,
    redirect_uri: &'a str,
    refresh_token: &'a str,
}

/// `POST <oauth_token_url>`: exchanges an RT for an AT (short timeout, through `proxy`).
///
/// `client_id` is the token's own, else [`UpstreamConfig::default_client_id`]; the redirect
/// URI is [`UpstreamConfig::oauth_redirect_uri`]. Decode with [`decode_oauth`].
pub fn refresh_to_access(
    cfg: &UpstreamConfig,
    refresh_token: &Secret,
    client_id: Option<&str>,
    proxy: Option<String>,
) -> UpstreamRequest {
    let body = RefreshBody {
        client_id: client_id.filter(|c| !c.is_empty()).unwrap_or(&cfg.default_client_id),
        grant_type: "refresh_token",
        redirect_uri: &cfg.oauth_redirect_uri,
        refresh_token: refresh_token.expose(),
    };
    let headers =
        vec![pair("accept", "application/json"), pair("content-type", "application/json")];
    request(
        Method::Post,
        cfg.oauth_token_url.clone(),
        headers,
        json_body(&body),
        cfg.short_timeout_ms,
        proxy,
    )
}

/// A successful ST -> AT exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAccess {
    /// `accessToken`.
    pub access_token: Secret,
    /// `user.email`.
    pub email: Option<String>,
    /// `expires` (the session's expiry, RFC 3339) as unix ms.
    pub expires_unix_ms: Option<u64>,
}

#[derive(Deserialize)]
struct SessionReply {
    #[serde(default, rename = "accessToken")]
    access_token: Lenient<String>,
    #[serde(default)]
    user: Lenient<SessionUser>,
    #[serde(default)]
    expires: Lenient<String>,
}

#[derive(Deserialize)]
struct SessionUser {
    #[serde(default)]
    email: Lenient<String>,
}

/// Decodes the session reply. An empty or non-JSON body, or a missing `accessToken` (an
/// expired session answers `{}`), is an error.
pub fn decode_session(reply: &UpstreamReply) -> Result<SessionAccess, DecodeError> {
    let r: SessionReply = json(reply, "an object")?;
    let access_token =
        r.access_token.non_empty().ok_or(DecodeError::Missing { field: "accessToken" })?;
    Ok(SessionAccess {
        access_token: Secret::new(access_token),
        email: r.user.into_inner().and_then(|u| u.email.non_empty()),
        expires_unix_ms: r.expires.0.as_deref().and_then(parse_rfc3339_ms),
    })
}

/// A successful RT -> AT exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthTokens {
    /// `access_token`.
    pub access_token: Secret,
    /// `refresh_token`: the rotated RT; store it when present.
    pub refresh_token: Option<Secret>,
    /// `expires_in`, seconds.
    pub expires_in_s: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthReply {
    #[serde(default)]
    access_token: Lenient<String>,
    #[serde(default)]
    refresh_token: Lenient<String>,
    #[serde(default)]
    expires_in: Lenient<u64>,
}

/// Decodes the OAuth token reply.
pub fn decode_oauth(reply: &UpstreamReply) -> Result<OAuthTokens, DecodeError> {
    let r: OAuthReply = json(reply, "an object")?;
    let access_token =
        r.access_token.non_empty().ok_or(DecodeError::Missing { field: "access_token" })?;
    Ok(OAuthTokens {
        access_token: Secret::new(access_token),
        refresh_token: r.refresh_token.non_empty().map(Secret::new),
        expires_in_s: r.expires_in.0,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ST: &str = "st-SECRET-xyz";
    const RT: &str = "rt-SECRET-abc";

    fn configs() -> [(UpstreamConfig, &'static str, &'static str); 2] {
        [
            (
                UpstreamConfig::default(),
                "https://sora.chatgpt.com/api/auth/session",
                "https://auth.openai.com/oauth/token",
            ),
            (
                UpstreamConfig::at_origin("http://sim"),
                "http://sim/api/auth/session",
                "http://sim/oauth/token",
            ),
        ]
    }

    #[test]
    fn session_request() {
        for (cfg, url, _) in configs() {
            let req = session_to_access(&cfg, &Secret::new(ST), Some("http://p".into()));
            assert_eq!(req.method, Method::Get);
            assert_eq!(req.url, url);
            let want: Vec<(String, String)> = [
                ("cookie", format!("__Secure-next-auth.session-token={ST}")),
                ("accept", "application/json".into()),
                ("origin", "https://sora.chatgpt.com".into()),
                ("referer", "https://sora.chatgpt.com/".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            assert_eq!(req.headers, want);
            assert!(req.body.is_empty());
            assert_eq!(req.timeout_ms, cfg.short_timeout_ms);
            assert_eq!(req.proxy.as_deref(), Some("http://p"));
            assert!(!format!("{req:?}").contains(ST));
        }
    }

    #[test]
    fn refresh_request() {
        for (cfg, _, url) in configs() {
            for (client, want_client) in [
                (None, "app_LlGpXReQgckcGGUo2JrYvtJK"),
                (Some(""), "app_LlGpXReQgckcGGUo2JrYvtJK"),
                (Some("app_1LOVE"), "app_1LOVE"),
            ] {
                let req = refresh_to_access(&cfg, &Secret::new(RT), client, None);
                assert_eq!(req.method, Method::Post);
                assert_eq!(req.url, url);
                assert_eq!(
                    req.headers,
                    vec![
                        ("accept".to_owned(), "application/json".to_owned()),
                        ("content-type".to_owned(), "application/json".to_owned())
                    ]
                );
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                assert_eq!(
                    body,
                    json!({"client_id":want_client,"grant_type":"refresh_token",
                           "redirect_uri":"com.openai.chat://auth0.openai.com/ios/com.openai.chat/callback",
                           "refresh_token":RT})
                );
                assert_eq!(req.timeout_ms, cfg.short_timeout_ms);
                assert_eq!(req.proxy, None);
                assert!(!req.url.contains(RT) && req.headers.iter().all(|(_, v)| !v.contains(RT)));
                assert!(!format!("{req:?}").contains(RT));
            }
        }
    }

    #[test]
    fn session_decoding() {
        let ok = UpstreamReply::json(
            200,
            r#"{"user":{"id":"user-1","email":"a@b.c","image":null},"expires":"2026-01-01T00:00:00.000Z","accessToken":"eyJ.new.at","x":1}"#,
        );
        let got = decode_session(&ok).unwrap();
        assert_eq!(got.access_token.expose(), "eyJ.new.at");
        assert_eq!(got.email.as_deref(), Some("a@b.c"));
        assert_eq!(got.expires_unix_ms, Some(1_767_225_600_000));
        assert!(!format!("{got:?}").contains("eyJ.new.at"));
        let cases = [
            (UpstreamReply::json(200, "{}"), DecodeError::Missing { field: "accessToken" }),
            (
                UpstreamReply::json(200, r#"{"accessToken":""}"#),
                DecodeError::Missing { field: "accessToken" },
            ),
            (UpstreamReply::json(200, ""), DecodeError::NotJson),
            (UpstreamReply::json(200, "<!DOCTYPE html>"), DecodeError::NotJson),
            (
                UpstreamReply::json(403, r#"{"accessToken":"x"}"#),
                DecodeError::Status { status: 403 },
            ),
        ];
        for (reply, want) in cases {
            assert_eq!(decode_session(&reply), Err(want));
        }
    }

    #[test]
    fn oauth_decoding() {
        let ok = UpstreamReply::json(
            200,
            r#"{"access_token":"at2","refresh_token":"rt2","expires_in":864000,"id_token":"x","scope":"openid"}"#,
        );
        assert_eq!(
            decode_oauth(&ok).unwrap(),
            OAuthTokens {
                access_token: Secret::new("at2"),
                refresh_token: Some(Secret::new("rt2")),
                expires_in_s: Some(864_000)
            }
        );
        let no_rotation =
            UpstreamReply::json(200, r#"{"access_token":"at2","refresh_token":null}"#);
        assert_eq!(
            decode_oauth(&no_rotation).unwrap(),
            OAuthTokens {
                access_token: Secret::new("at2"),
                refresh_token: None,
                expires_in_s: None
            }
        );
        assert_eq!(
            decode_oauth(&UpstreamReply::json(200, r#"{"error":"invalid_grant"}"#)),
            Err(DecodeError::Missing { field: "access_token" })
        );
    }
}
