//! The fingerprint data table (spec 3.2) and the builder that turns it, the injected time and
//! the injected random picks into a [`ConfigArray`].

use super::{ConfigArray, PowError};

/// The value lists the config array's random fields are drawn from (spec 3.2).
///
/// [`PY_HEAD`] is the table of the reference client at HEAD. The lists only have to look like
/// a real browser (the server's verifier checks none of them), so they are data: a deployment
/// can refresh them without touching the solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FingerprintTable<'a> {
    /// Index 0: screen width + height.
    pub screen_sizes: &'a [u32],
    /// Index 2: `jsHeapSizeLimit` values.
    pub heap_limits: &'a [u64],
    /// Index 5: script URLs; an empty list gives `""` (as PY does).
    pub scripts: &'a [&'a str],
    /// Index 6: the deployment id; `None` is JSON `null` ("must be null" at PY HEAD).
    pub dpl: Option<&'a str>,
    /// Indices 7 and 8: `(language, languages)` pairs.
    pub languages: &'a [(&'a str, &'a str)],
    /// Index 9's initial value: an integer in this inclusive range.
    pub dynamic_start: (u32, u32),
    /// Index 10: navigator probes `name−value` (U+2212 MINUS SIGN, not `-`).
    pub navigator_probes: &'a [&'a str],
    /// Index 11: `document` keys.
    pub document_keys: &'a [&'a str],
    /// Index 12: `window` keys.
    pub window_keys: &'a [&'a str],
    /// Index 13: `performance.now()` in ms, uniform in this half-open range.
    pub perf_now_ms: (f64, f64),
    /// Index 16: `hardwareConcurrency` values.
    pub hardware_concurrency: &'a [u32],
}

/// The fingerprint table of the reference client (PY) at HEAD (spec 3.2).
pub const PY_HEAD: FingerprintTable<'static> = FingerprintTable {
    screen_sizes: &[1266, 1536, 1920, 2560, 3000, 3072, 3120, 3840],
    heap_limits: &[4_294_967_296, 4_294_705_152, 2_147_483_648],
    scripts: &[
        "https://sora-cdn.oaistatic.com/_next/static/chunks/polyfills-42372ed130431b0a.js",
        "https://sora-cdn.oaistatic.com/_next/static/chunks/6974-eaafbe7db9c73c96.js",
        "https://sora-cdn.oaistatic.com/_next/static/chunks/main-app-5f0c58611778fb36.js",
        "https://chatgpt.com/backend-api/sentinel/sdk.js",
    ],
    dpl: None,
    languages: &[
        ("zh-CN", "zh-CN,zh"),
        ("en-US", "en-US,en"),
        ("ja-JP", "ja-JP,ja,en"),
        ("ko-KR", "ko-KR,ko,en"),
    ],
    dynamic_start: (2, 10),
    navigator_probes: &[
        "mimeTypes−[object MimeTypeArray]",
        "userAgentData−[object NavigatorUAData]",
        "scheduling−[object Scheduling]",
        "keyboard−[object Keyboard]",
        "webkitPersistentStorage−[object DeprecatedStorageQuota]",
        "registerProtocolHandler−function registerProtocolHandler() { [native code] }",
        "storage−[object StorageManager]",
        "locks−[object LockManager]",
        "appCodeName−Mozilla",
        "permissions−[object Permissions]",
        "webdriver−false",
        "vendor−Google Inc.",
        "mediaDevices−[object MediaDevices]",
        "cookieEnabled−true",
        "product−Gecko",
        "productSub−20030107",
        "hardwareConcurrency−32",
        "onLine−true",
    ],
    document_keys: &[
        "__reactContainer$3k0e9yog4o3",
        "__reactContainer$ft149nhgior",
        "__reactResources$9nnifsagitb",
        "_reactListeningou2wvttp2d9",
        "_reactListeningu9qurgpwsme",
        "_reactListeningo743lnnpvdg",
        "location",
        "body",
    ],
    window_keys: &[
        "getSelection",
        "btoa",
        "__next_s",
        "crossOriginIsolated",
        "print",
        "0",
        "window",
        "self",
        "document",
        "name",
        "location",
        "navigator",
        "screen",
        "innerWidth",
        "innerHeight",
        "localStorage",
        "sessionStorage",
        "crypto",
        "performance",
    ],
    perf_now_ms: (10_000.0, 100_000.0),
    hardware_concurrency: &[4, 8, 12, 16, 24, 32],
};

/// The time and identity a fingerprint is built for. The core reads no clock: the shell
/// passes the wall clock and the time zone it wants the "browser" to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowEnv<'a> {
    /// Wall clock, unix milliseconds.
    pub now_unix_ms: u64,
    /// The browser's UTC offset in minutes (`480` for `GMT+0800`, `-300` for `GMT-0500`).
    pub utc_offset_minutes: i32,
    /// The time zone name shown in parentheses (`CST`, `UTC`).
    pub tz_name: &'a str,
    /// The user agent the request is sent with (index 4).
    pub user_agent: &'a str,
}

/// The random choices of one fingerprint, as raw random words.
///
/// Each list pick takes its word modulo the list's length, so an explicit index below the
/// length picks exactly that entry. Fill it from the shell's RNG, or derive every field from
/// one word with [`FingerprintPicks::from_seed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FingerprintPicks {
    /// Picks [`FingerprintTable::screen_sizes`].
    pub screen: u64,
    /// Picks [`FingerprintTable::heap_limits`].
    pub heap_limit: u64,
    /// Picks [`FingerprintTable::scripts`].
    pub script: u64,
    /// Picks [`FingerprintTable::languages`].
    pub language: u64,
    /// Picks the value in [`FingerprintTable::dynamic_start`].
    pub dynamic_start: u64,
    /// Picks [`FingerprintTable::navigator_probes`].
    pub navigator: u64,
    /// Picks [`FingerprintTable::document_keys`].
    pub document: u64,
    /// Picks [`FingerprintTable::window_keys`].
    pub window: u64,
    /// Its top 53 bits place `performance.now()` in [`FingerprintTable::perf_now_ms`].
    pub perf_now: u64,
    /// Picks [`FingerprintTable::hardware_concurrency`].
    pub hardware: u64,
    /// The 128 random bits of the index-14 uuid4 (version and variant bits are overwritten).
    pub uuid: [u8; 16],
}

// === impl FingerprintPicks ===

impl FingerprintPicks {
    /// Derives every pick from one random word (splitmix64), for shells that draw one `u64`.
    pub fn from_seed(seed: u64) -> Self {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let screen = next();
        let heap_limit = next();
        let script = next();
        let language = next();
        let dynamic_start = next();
        let navigator = next();
        let document = next();
        let window = next();
        let perf_now = next();
        let hardware = next();
        let uuid = ((u128::from(next()) << 64) | u128::from(next())).to_be_bytes();
        FingerprintPicks {
            screen,
            heap_limit,
            script,
            language,
            dynamic_start,
            navigator,
            document,
            window,
            perf_now,
            hardware,
            uuid,
        }
    }
}

// === impl FingerprintTable ===

impl FingerprintTable<'_> {
    /// Assembles the config array from this table, the environment and the random picks.
    ///
    /// Index 1 is [`browser_date`] of `env`; index 17 is `env.now_unix_ms − perf_now`.
    /// Fails if a list other than `scripts` is empty or a range is empty or not finite.
    pub fn build(
        &self,
        env: &PowEnv<'_>,
        picks: &FingerprintPicks,
    ) -> Result<ConfigArray, PowError> {
        let (lo, hi) = self.dynamic_start;
        let span = u64::from(hi)
            .checked_sub(u64::from(lo))
            .ok_or(PowError::EmptyRange { field: "dynamic_start" })?;
        // span <= u32::MAX, so span + 1 does not overflow and the sum stays <= hi.
        let offset = picks.dynamic_start % (span + 1);
        let dynamic_start = u32::try_from(u64::from(lo) + offset)
            .map_err(|_| PowError::EmptyRange { field: "dynamic_start" })?;

        let (p_lo, p_hi) = self.perf_now_ms;
        if !(p_lo.is_finite() && p_hi.is_finite() && p_lo <= p_hi) {
            return Err(PowError::EmptyRange { field: "perf_now_ms" });
        }
        // Top 53 bits as a fraction in [0, 1), as Python's random.random().
        let fraction = (picks.perf_now >> 11) as f64 / (1u64 << 53) as f64;
        let perf_now = p_lo + fraction * (p_hi - p_lo);
        let (language, languages) = *pick(self.languages, picks.language, "languages")?;

        Ok(ConfigArray {
            screen: *pick(self.screen_sizes, picks.screen, "screen_sizes")?,
            date: browser_date(env.now_unix_ms, env.utc_offset_minutes, env.tz_name),
            heap_limit: *pick(self.heap_limits, picks.heap_limit, "heap_limits")?,
            user_agent: env.user_agent.to_owned(),
            script: pick(self.scripts, picks.script, "scripts").map_or("", |s| *s).to_owned(),
            dpl: self.dpl.map(str::to_owned),
            language: language.to_owned(),
            languages: languages.to_owned(),
            dynamic_start,
            navigator_probe: (*pick(self.navigator_probes, picks.navigator, "navigator_probes")?)
                .to_owned(),
            document_key: (*pick(self.document_keys, picks.document, "document_keys")?).to_owned(),
            window_key: (*pick(self.window_keys, picks.window, "window_keys")?).to_owned(),
            perf_now,
            uuid: uuid4(picks.uuid),
            empty: String::new(),
            hardware_concurrency: *pick(
                self.hardware_concurrency,
                picks.hardware,
                "hardware_concurrency",
            )?,
            // u64 -> f64 is exact below 2^53 ms (year 287396).
            time_origin: env.now_unix_ms as f64 - perf_now,
        })
    }
}

/// `list[word % len]`, or [`PowError::EmptyTable`].
fn pick<'t, T>(list: &'t [T], word: u64, field: &'static str) -> Result<&'t T, PowError> {
    let len = u64::try_from(list.len()).map_err(|_| PowError::EmptyTable { field })?;
    let index = word.checked_rem(len).ok_or(PowError::EmptyTable { field })?;
    usize::try_from(index).ok().and_then(|i| list.get(i)).ok_or(PowError::EmptyTable { field })
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The browser date string of index 1: `"%a %b %d %Y %H:%M:%S GMT+HHMM (NAME)"` in the given
/// UTC offset, e.g. `Wed Jan 07 2026 12:00:00 GMT+0800 (CST)`.
///
/// ```
/// use sora2api_core::pow::browser_date;
///
/// assert_eq!(browser_date(1_767_758_400_000, 480, "CST"), "Wed Jan 07 2026 12:00:00 GMT+0800 (CST)");
/// assert_eq!(browser_date(1_767_758_400_000, -300, "EST"), "Tue Jan 06 2026 23:00:00 GMT-0500 (EST)");
/// ```
pub fn browser_date(now_unix_ms: u64, utc_offset_minutes: i32, tz_name: &str) -> String {
    // u64 / 1000 < 2^54 and |offset| * 60 < 2^38: no i64 overflow.
    let secs = i64::try_from(now_unix_ms / 1000).unwrap_or(i64::MAX / 2)
        + i64::from(utc_offset_minutes) * 60;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
    let sign = if utc_offset_minutes < 0 { '-' } else { '+' };
    let abs = utc_offset_minutes.unsigned_abs();
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT{}{:02}{:02} ({})",
        WEEKDAYS.get(weekday).unwrap_or(&"Thu"),
        MONTHS.get(month.wrapping_sub(1) as usize).unwrap_or(&"Jan"),
        day,
        year,
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        sign,
        abs / 60,
        abs % 60,
        tz_name,
    )
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// Formats 16 random bytes as a lowercase uuid4 (version 4, RFC 4122 variant).
///
/// ```
/// assert_eq!(sora2api_core::pow::uuid4([0; 16]), "00000000-0000-4000-8000-000000000000");
/// ```
pub fn uuid4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: [u8; 16] = *b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> PowEnv<'static> {
        PowEnv {
            now_unix_ms: 1_767_758_412_346,
            utc_offset_minutes: 480,
            tz_name: "CST",
            user_agent: "UA",
        }
    }

    #[test]
    fn table_sizes_match_the_spec() {
        assert_eq!(PY_HEAD.screen_sizes.len(), 8);
        assert_eq!(PY_HEAD.scripts.len(), 4);
        assert_eq!(PY_HEAD.navigator_probes.len(), 18);
        assert_eq!(PY_HEAD.document_keys.len(), 8);
        assert_eq!(PY_HEAD.window_keys.len(), 19);
        assert!(PY_HEAD.navigator_probes.iter().all(|p| p.contains('\u{2212}')));
    }

    #[test]
    fn explicit_picks_reproduce_the_test_vector_fields() {
        let picks = FingerprintPicks {
            screen: 2,
            heap_limit: 1,
            script: 2,
            language: 1,
            dynamic_start: 3,
            navigator: 10,
            document: 6,
            window: 6,
            perf_now: 0,
            hardware: 3,
            uuid: [0; 16],
        };
        let c = PY_HEAD.build(&env(), &picks).unwrap();
        assert_eq!(c.screen, 1920);
        assert_eq!(c.date, "Wed Jan 07 2026 12:00:12 GMT+0800 (CST)");
        assert_eq!(c.heap_limit, 4_294_705_152);
        assert_eq!(
            c.script,
            "https://sora-cdn.oaistatic.com/_next/static/chunks/main-app-5f0c58611778fb36.js"
        );
        assert_eq!((c.language.as_str(), c.languages.as_str()), ("en-US", "en-US,en"));
        assert_eq!(c.dynamic_start, 5);
        assert_eq!(c.navigator_probe, "webdriver−false");
        assert_eq!(c.document_key, "location");
        assert_eq!(c.window_key, "window");
        assert_eq!(c.perf_now, 10_000.0);
        assert_eq!(c.uuid, "00000000-0000-4000-8000-000000000000");
        assert_eq!(c.hardware_concurrency, 16);
        assert_eq!(c.time_origin, 1_767_758_402_346.0);
        assert_eq!(c.dpl, None);
        assert_eq!(c.empty, "");
    }

    #[test]
    fn seeded_picks_are_deterministic_and_in_range() {
        for seed in 0..2000u64 {
            let c = PY_HEAD.build(&env(), &FingerprintPicks::from_seed(seed)).unwrap();
            assert_eq!(c, PY_HEAD.build(&env(), &FingerprintPicks::from_seed(seed)).unwrap());
            assert!((2..=10).contains(&c.dynamic_start));
            assert!((10_000.0..100_000.0).contains(&c.perf_now));
            assert!(PY_HEAD.scripts.contains(&c.script.as_str()));
            assert_eq!(c.uuid.len(), 36);
        }
    }

    #[test]
    fn empty_lists_and_ranges_are_errors_not_panics() {
        let picks = FingerprintPicks::from_seed(1);
        let t = FingerprintTable { window_keys: &[], ..PY_HEAD };
        assert_eq!(t.build(&env(), &picks), Err(PowError::EmptyTable { field: "window_keys" }));
        let t = FingerprintTable { dynamic_start: (3, 2), ..PY_HEAD };
        assert!(t.build(&env(), &picks).is_err());
        let t = FingerprintTable { perf_now_ms: (f64::NAN, 1.0), ..PY_HEAD };
        assert!(t.build(&env(), &picks).is_err());
        let t = FingerprintTable { scripts: &[], dynamic_start: (0, u32::MAX), ..PY_HEAD };
        assert_eq!(t.build(&env(), &picks).unwrap().script, "");
    }

    #[test]
    fn dates_across_offsets_and_extremes() {
        assert_eq!(browser_date(0, 0, "UTC"), "Thu Jan 01 1970 00:00:00 GMT+0000 (UTC)");
        assert_eq!(browser_date(0, -210, "NST"), "Wed Dec 31 1969 20:30:00 GMT-0330 (NST)");
        assert_eq!(
            browser_date(951_782_400_000, 0, "UTC"),
            "Tue Feb 29 2000 00:00:00 GMT+0000 (UTC)"
        );
        let _ = browser_date(u64::MAX, i32::MAX, "");
        let _ = browser_date(u64::MAX, i32::MIN, "");
    }
}
