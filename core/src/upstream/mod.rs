//! The Sora backend client, sans-IO: request builders, reply decoding and the one
//! classification of replies (sora-backend.md sections 1-4, decisions 12-17).
//!
//! Everything Sora-specific lives here and in [`crate::sim`]; the task engine above speaks in
//! canonical requests, events and outcomes.

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
    decode_finalize, delete_character, file_upload, CameoProfile, CameoProgress, FileUseCase,
    DEFAULT_TIMESTAMPS,
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
pub use multipart::Multipart;
pub use sentinel::{
    decode_sentinel, sentinel_header, sentinel_req, ProofOfWork, SentinelChallenge, SENTINEL_FLOW,
};
pub use videos::{
    decode_drafts, decode_pending, drafts, drafts_v2, long_video_extension, nf_create,
    nf_create_storyboard, pending_v2, upstream_model, Draft, DraftOutcome, DraftsPage,
    ExtensionDuration, VideoPending, VideoSource,
};
