//! The Sora backend client, sans-IO: request builders, reply decoding and the one
//! classification of replies (sora-backend.md sections 1-4, decisions 12-17).
//!
//! Everything Sora-specific lives here (and in the simulated backend); the task engine above
//! speaks in canonical requests, events and outcomes.
//!
//! # The three steps of every call
//!
//! 1. **Build**: a pure function takes the [`UpstreamConfig`] (hosts, user agents, timeouts),
//!    the [`Auth`] of the token (access token, session token, own proxy) and the call's inputs,
//!    and returns an [`UpstreamRequest`]: method, URL, the headers of the call's profile, body,
//!    timeout and proxy. Nothing is random or timed here: uuids, multipart boundary seeds and
//!    sentinel tokens ([`SentinelToken`]) come in as arguments.
//! 2. **Classify**: the shell sends it and hands back an [`UpstreamReply`] (or a
//!    [`TransportError`]); [`classify()`] (or [`classify_transport`]) says what it means as a
//!    [`Class`]: retry or not, whether it counts against the token, a message for the client.
//! 3. **Decode**: for [`Class::Ok`], a `decode_*` function reads the few fields the caller
//!    needs into a typed result, tolerating extra fields and nulls; a [`DecodeError`] never
//!    carries the body.
//!
//! Profiles (1.2): P-APP for business calls; P-APP with a sentinel (`video_gen`,
//! `nf/create/storyboard`, `long_video_extension`); P-CREATE for `nf/create`; P-ACCOUNT for
//! `/me`, `billing/subscriptions`, `invite/mine`, `m/bootstrap` and `nf/check`. The access
//! token goes only into `authorization`, the session token only into `cookie`, the refresh
//! token only into the OAuth body; [`UpstreamRequest`]'s `Debug` redacts them.
//!
//! ```
//! use sora2api_core::catalog;
//! use sora2api_core::secret::Secret;
//! use sora2api_core::upstream::{
//!     self, classify, Auth, Class, SentinelToken, UpstreamConfig, UpstreamReply, VideoSource,
//! };
//!
//! let cfg = UpstreamConfig::at_origin("http://127.0.0.1:8080");
//! let auth = Auth::new(Secret::new("eyJ.at.sig")).with_proxy("http://proxy:3128");
//! let sentinel = SentinelToken::build(
//!     "gAAAAABanswer", "dx", "ctoken", "0b7e1c52-3f6a-4d38-9c1e-5a2b7d4e8f90", upstream::SENTINEL_FLOW,
//! );
//! let video = catalog::model("sora2pro-hd-portrait-15s").unwrap().video().unwrap();
//!
//! let req = upstream::nf_create(&cfg, &auth, &sentinel, video, "a cat", VideoSource::Text, None);
//! assert_eq!(req.url, "http://127.0.0.1:8080/backend/nf/create");
//! assert_eq!(req.header("oai-device-id"), Some(sentinel.device_id()));
//! assert_eq!(req.proxy.as_deref(), Some("http://proxy:3128"));
//! assert!(!format!("{req:?}").contains("eyJ.at.sig"));
//!
//! let reply = UpstreamReply::json(200, r#"{"id":"task_01km4f6bzff73vjq6hgpk3d0pw","task_type":"video_gen"}"#);
//! assert_eq!(classify(&reply), Class::Ok);
//! assert_eq!(upstream::decode_task_id(&reply).unwrap(), "task_01km4f6bzff73vjq6hgpk3d0pw");
//!
//! let stale = UpstreamReply::json(400, r#"{"error":{"message":"Hmmm","code":"invalid_request"}}"#);
//! assert_eq!(classify(&stale), Class::InvalidRequest);
//! ```

mod account;
mod characters;
mod classify;
mod config;
mod credentials;
mod decode;
mod headers;
mod http;
mod images;
mod jwt;
mod listing;
mod multipart;
mod sentinel;
#[cfg(test)]
mod test_support;
mod videos;

pub use account::{
    billing_subscriptions, decode_enhance, decode_invite, decode_me, decode_nf_check,
    decode_subscription, enhance_prompt, invite_mine, m_bootstrap, me, nf_check, Invite, Me, Quota,
    Subscription, PRO_PLAN_ID,
};
pub use characters::{
    cameo_in_progress, cameo_update_v2, character_username, characters_finalize,
    characters_from_generation, characters_upload, decode_cameo_progress, decode_file_upload,
    decode_finalize, decode_username_available, delete_character, file_upload, username_check,
    CameoProfile, CameoProgress, FileUseCase, DEFAULT_TIMESTAMPS,
};
pub use classify::{classify, classify_transport, Class};
pub use config::UpstreamConfig;
pub use credentials::{
    decode_oauth, decode_session, refresh_to_access, session_to_access, OAuthTokens, SessionAccess,
};
pub use decode::{decode_id, decode_task_id, parse_rfc3339_ms, progress_percent, DecodeError};
pub use headers::{Auth, SentinelToken, SESSION_COOKIE, SORA_WEB_ORIGIN};
pub use http::{Method, TransportError, UpstreamReply, UpstreamRequest};
pub use images::{decode_recent_tasks, image_gen, recent_tasks, upload_image, ImageTaskStatus};
pub use jwt::{jwt_claims, JwtClaims, JwtError};
pub use listing::{decode_pending_listing, decode_recent_listing, Listed};
pub use multipart::Multipart;
pub use sentinel::{sentinel_req, SENTINEL_FLOW};
pub use videos::{
    decode_drafts, decode_pending, drafts, drafts_v2, long_video_extension, nf_create,
    nf_create_storyboard, pending_v2, upstream_model, Draft, DraftOutcome, DraftsPage,
    ExtensionDuration, VideoPending, VideoSource,
};
