//! Where the upstream lives and how the client presents itself (sora-backend.md 1.1-1.2).
//! Every host is configurable (decisions 12), so the simulated backend can stand in for all.

/// Upstream hosts, client identity and timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// The business API, `BACKEND` (`sora.base_url`), without a trailing slash.
    pub base_url: String,
    /// ST -> AT exchange (`GET`).
    pub auth_session_url: String,
    /// RT -> AT exchange (`POST`).
    pub oauth_token_url: String,
    /// Sentinel proof-of-work challenge (`POST`).
    pub sentinel_url: String,
    /// OAuth client id for RT refresh when a token has none of its own.
    pub default_client_id: String,
    /// OAuth redirect URI sent with RT refresh.
    pub oauth_redirect_uri: String,
    /// User agent of ordinary business calls (the Sora Android app's).
    pub app_user_agent: String,
    /// User agent of sentinel-protected calls: the one the proof of work was built for.
    pub pow_user_agent: String,
    /// The upstream id of the standard video model (`sy_8`; newer backends `sy_8_20251208`).
    pub standard_video_model: String,
    /// Timeout of business calls, ms (`sora.timeout`, 120 s).
    pub request_timeout_ms: u64,
    /// Timeout of create calls and account/credential calls, ms (30 s).
    pub short_timeout_ms: u64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            base_url: "https://sora.chatgpt.com/backend".into(),
            auth_session_url: "https://sora.chatgpt.com/api/auth/session".into(),
            oauth_token_url: "https://auth.openai.com/oauth/token".into(),
            sentinel_url: "https://chatgpt.com/backend-api/sentinel/req".into(),
            default_client_id: "app_LlGpXReQgckcGGUo2JrYvtJK".into(),
            oauth_redirect_uri: "com.openai.chat://auth0.openai.com/ios/com.openai.chat/callback".into(),
            app_user_agent: "Sora/1.2026.007 (Android 15; 24122RKC7C; build 2600700)".into(),
            pow_user_agent: "Mozilla/5.0 (Linux; Android 6.0; Nexus 5 Build/MRA58N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36".into(),
            standard_video_model: "sy_8".into(),
            request_timeout_ms: 120_000,
            short_timeout_ms: 30_000,
        }
    }
}

impl UpstreamConfig {
    /// Every host at one origin, under the real paths: what `sora2api sim` serves and tests
    /// point at (`origin` like `http://127.0.0.1:8080`, no trailing slash).
    pub fn at_origin(origin: &str) -> Self {
        UpstreamConfig {
            base_url: format!("{origin}/backend"),
            auth_session_url: format!("{origin}/api/auth/session"),
            oauth_token_url: format!("{origin}/oauth/token"),
            sentinel_url: format!("{origin}/backend-api/sentinel/req"),
            ..UpstreamConfig::default()
        }
    }
}
