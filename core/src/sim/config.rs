//! The simulator's knobs.

/// How long each phase of a task lasts, in virtual milliseconds (spec 2.5, 2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Video `preprocessing` (observed ~1 s).
    pub preprocessing_ms: u64,
    /// Video `queued` (observed ~50 s).
    pub queued_ms: u64,
    /// Video `running`, progress 0.1 -> <1.0 (observed ~100 s for 10 s of video).
    pub running_ms: u64,
    /// Video `processing`, progress 1.0 (observed: briefly).
    pub processing_ms: u64,
    /// From leaving `pending/v2` to the drafts item appearing (observed ~4 s).
    pub draft_lag_ms: u64,
    /// Image `queued`, progress `null`.
    pub image_queued_ms: u64,
    /// Image `running`, progress 0 -> <1.
    pub image_running_ms: u64,
    /// Polls of `cameos/in_progress/{id}` that answer "in progress" before "Completed".
    pub cameo_polls: u32,
    /// Polls that see a `#nourl` draft or image without its URL (the marker's default).
    pub nourl_polls: u32,
}

impl Timings {
    /// The observed schedule: 1 s, 50 s, 100 s, 2 s, then the draft 4 s later; images 2 s
    /// queued and 8 s running; cameos complete on the third poll.
    pub const fn observed() -> Self {
        Timings {
            preprocessing_ms: 1_000,
            queued_ms: 50_000,
            running_ms: 100_000,
            processing_ms: 2_000,
            draft_lag_ms: 4_000,
            image_queued_ms: 2_000,
            image_running_ms: 8_000,
            cameo_polls: 2,
            nourl_polls: 2,
        }
    }

    /// Every phase zero long: a task is finished (and its draft visible) at the first poll;
    /// cameos complete on their first poll. Poll-counted markers (`#queue=N`, `#nourl`) still
    /// hold for their polls.
    pub const fn instant() -> Self {
        Timings {
            preprocessing_ms: 0,
            queued_ms: 0,
            running_ms: 0,
            processing_ms: 0,
            draft_lag_ms: 0,
            image_queued_ms: 0,
            image_running_ms: 0,
            cameo_polls: 0,
            nourl_polls: 2,
        }
    }

    /// This schedule with every duration multiplied by `percent / 100` (poll counts kept).
    pub const fn scaled(self, percent: u64) -> Self {
        Timings {
            preprocessing_ms: self.preprocessing_ms * percent / 100,
            queued_ms: self.queued_ms * percent / 100,
            running_ms: self.running_ms * percent / 100,
            processing_ms: self.processing_ms * percent / 100,
            draft_lag_ms: self.draft_lag_ms * percent / 100,
            image_queued_ms: self.image_queued_ms * percent / 100,
            image_running_ms: self.image_running_ms * percent / 100,
            ..self
        }
    }
}

impl Default for Timings {
    fn default() -> Self {
        Timings::observed()
    }
}

/// Everything configurable about the simulated backend. Start from [`SimConfig::default`]
/// (the observed, strict behaviour) and change what a test needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Phase durations.
    pub timings: Timings,
    /// Every task completes on the first poll (benchmarks, demo): [`Timings::instant`] is used
    /// instead of the `timings` field.
    pub instant: bool,
    /// The proof-of-work difficulty `sentinel/req` hands out (hex, even length). `"06a7c5"`
    /// (about 38 hashes) by default; tests use `"ff"` (every answer passes).
    pub pow_difficulty: String,
    /// `proofofwork.required`. When false, creates accept a structurally valid `gAAAAAB…~S`
    /// or the reused requirements token `gAAAAAC…~S` without a hash check.
    pub pow_required: bool,
    /// How long an issued sentinel token (`c`) is accepted, ms (9 minutes by default).
    pub sentinel_ttl_ms: u64,
    /// Each sentinel token is accepted by one create only.
    pub sentinel_single_use: bool,
    /// Creates must carry `oai-device-id` equal to the header's `id`, and that `id` must be
    /// the one sent to `sentinel/req` (PY does this; GO sends no device id).
    pub strict_device_id: bool,
    /// Reject the sentinel of these create attempts (1-based, counting every sentinel-checked
    /// call, accepted or not) with the 400 `invalid_request`: PY's one-shot refresh path.
    pub reject_sentinel_on_attempts: Vec<u64>,
    /// `GET …/drafts/v2` answers 404, so the legacy-path fallback can be tested.
    pub drafts_v2_404: bool,
    /// Base URL of the result files handed out, e.g. `http://127.0.0.1:8080/media`. Its path
    /// (`/media`) is where [`Sim::handle`](super::Sim::handle) serves them.
    pub media_origin: String,
    /// Seed of every id, token and proof-of-work seed.
    pub seed: u64,
    /// The virtual wall clock at construction (unix ms): accounts added before the first
    /// request are minted relative to it.
    pub start_ms: u64,
    /// How many public posts (`s_…`) exist from the start, usable as remix targets; see
    /// [`Sim::posts`](super::Sim::posts).
    pub seeded_posts: usize,
    /// Accept any well-formed `s_<32hex>` as `remix_target_id`, existing or not.
    pub accept_any_remix_target: bool,
    /// Status of the Pro-gating rejection (`sy_ore`, `size: large` or 750 frames on a non-Pro
    /// account): 403 by default, or 400. The body is `code: "pro_required"`.
    pub pro_gating_status: u16,
    /// `POST /oauth/token` rotates the refresh token (the old one then answers
    /// `refresh_token_reused`).
    pub rotate_refresh_tokens: bool,
    /// Lifetime of access tokens minted by the session and OAuth exchanges, ms.
    pub refreshed_token_ttl_ms: u64,
    /// Usernames already taken: `characters/finalize` and `username/set` answer 409 for them.
    pub taken_usernames: Vec<String>,
    /// Drafts carry `download_urls.no_watermark` (else `null`).
    pub expose_no_watermark: bool,
    /// `GET /project_y/post/{id}` answers only requests with `oai-package-name:
    /// com.openai.sora` (the app profile, spec 2.7); others get 403.
    pub post_detail_requires_app: bool,
    /// The OAuth client id of accounts that do not name their own.
    pub default_client_id: String,
    /// Length of a quota window, seconds: when an account's reset time passes, its quota is
    /// refilled and the next reset is this much later.
    pub quota_window_s: u64,
    /// Accept access tokens minted by [`mint_offline_token`](super::mint_offline_token) with
    /// this [`Self::seed`]: the first use of one creates its account (or attaches the token to
    /// the account with its email). Off by default (only tokens this simulator minted are
    /// known); `sora2api sim` turns it on so `sora2api sim mint-token` works.
    pub accept_offline_tokens: bool,
    /// A new task shows in `nf/pending/v2` and `v2/recent_tasks` only this long after its
    /// create was accepted (ms; 0 by default): the gap GO works around (sora-backend.md 2.5,
    /// "never seen and 30 s have passed"). The real length is unknown.
    pub listing_delay_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            timings: Timings::observed(),
            instant: false,
            pow_difficulty: "06a7c5".into(),
            pow_required: true,
            sentinel_ttl_ms: 540_000,
            sentinel_single_use: false,
            strict_device_id: true,
            reject_sentinel_on_attempts: Vec::new(),
            drafts_v2_404: false,
            media_origin: "http://127.0.0.1:8080/media".into(),
            seed: 0x5017_a5e1,
            start_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            seeded_posts: 3,
            accept_any_remix_target: false,
            pro_gating_status: 403,
            rotate_refresh_tokens: true,
            refreshed_token_ttl_ms: 10 * 24 * 3_600_000,
            taken_usernames: vec!["taken".into()],
            expose_no_watermark: false,
            post_detail_requires_app: false,
            default_client_id: "app_LlGpXReQgckcGGUo2JrYvtJK".into(),
            quota_window_s: 86_400,
            accept_offline_tokens: false,
            listing_delay_ms: 0,
        }
    }
}

impl SimConfig {
    /// The default configuration, fast: [`Self::instant`], difficulty `"ff"`.
    pub fn fast() -> Self {
        SimConfig { instant: true, pow_difficulty: "ff".into(), ..SimConfig::default() }
    }

    /// The schedule in force.
    pub(super) fn timings(&self) -> Timings {
        if self.instant {
            Timings::instant()
        } else {
            self.timings
        }
    }

    /// The path prefix media is served under (the path of [`Self::media_origin`], no
    /// trailing slash; `""` for an origin without a path).
    pub(super) fn media_path(&self) -> &str {
        let after_scheme =
            self.media_origin.split_once("://").map_or(self.media_origin.as_str(), |(_, r)| r);
        after_scheme.find('/').map_or("", |i| &after_scheme[i..]).trim_end_matches('/')
    }
}
