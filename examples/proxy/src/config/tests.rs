#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use sora2api_tower::core::pool::Work;

use super::read::{env_name, EXAMPLE_API_KEY, SECTIONS, TOKEN_KEYS};
use super::*;
use crate::cli::GatewayArgs;

const EXAMPLE: &str = include_str!("../../sora2api.example.toml");
const MODULE: &str = include_str!("../config.rs");

/// A JWT for `you@example.com` expiring 2027-01-01T00:00:00Z (the example's).
const JWT: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjE3OTg3NjE2MDAsImh0dHBzOi8vYXBpLm9wZW5haS5jb20vcHJvZmlsZSI6eyJlbWFpbCI6InlvdUBleGFtcGxlLmNvbSJ9fQ.";
const JWT_EXP_MS: u64 = 1_798_761_600_000;
/// A JWT without claims.
const BARE_JWT: &str = "eyJhbGciOiJub25lIn0.e30.";

fn parse(text: &str) -> Config {
    Config::from_toml_str(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

fn error(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(config) => panic!("accepted:\n{text}\n{config:?}"),
        Err(err) => err,
    }
}

/// The error's message, checked to name `key`.
fn error_naming(text: &str, key: &str) -> String {
    let err = error(text);
    let shown = err.to_string();
    assert!(shown.contains(key), "{shown:?} does not name {key}");
    shown
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The example with its commented-out `[[tokens]]` block switched on.
fn example_with_tokens() -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in EXAMPLE.lines() {
        if line.starts_with("# --- begin tokens example") {
            inside = true;
        } else if line.starts_with("# --- end tokens example") {
            inside = false;
        } else if inside {
            out.push_str(line.strip_prefix("# ").unwrap_or(line));
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

// === the example file ===

#[test]
fn the_example_file_shows_every_default() {
    let config = parse(EXAMPLE);
    let expected = Config {
        global: GlobalConfig {
            api_key: Some(Secret::new(EXAMPLE_API_KEY)),
            ..Config::default().global
        },
        ..Config::default()
    };
    assert_eq!(config, expected);
    assert_eq!(config.warnings, Vec::<String>::new());
    // Every default, as the server gets it.
    assert_eq!(config.machine_config(), MachineConfig::default());
    assert_eq!(config.pool_config(), PoolConfig::default());
    assert_eq!(config.http_upstream_config(), HttpUpstreamConfig::default());
    assert_eq!(config.listen_addr(), "0.0.0.0:8000".parse().unwrap());
    assert_eq!(config.data_dir(), Path::new("data"));
    assert_eq!(config.api_keys(), vec![Secret::new(EXAMPLE_API_KEY)]);
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(10));
    assert_eq!(config.limits.max_body_bytes, 64 << 20);
    assert_eq!(config.limits.blocking_wait, Duration::from_secs(600));
    assert_eq!(config.pow_service.mode, PowMode::Local);
    assert_eq!(config.global.admin_password, None);
    assert!(config.tokens.is_empty());
    // Using the placeholder key works, with a warning.
    let mut checked = config.clone();
    checked.check().unwrap();
    assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
    assert!(checked.warnings[0].contains("placeholder"), "{:?}", checked.warnings);
}

#[test]
fn the_example_token_block_parses() {
    let config = parse(&example_with_tokens());
    let [token] = &config.token_records()[..] else { panic!("{:?}", config.tokens) };
    assert_eq!(token.access_token.expose(), JWT);
    assert_eq!(token.email.as_deref(), Some("you@example.com"));
    assert_eq!(token.expires_at_ms, Some(JWT_EXP_MS));
    assert_eq!(token.session_token, Some(Secret::new("session-token")));
    assert_eq!(token.refresh_token, Some(Secret::new("refresh-token")));
    assert_eq!(token.client_id.as_deref(), Some("app_LlGpXReQgckcGGUo2JrYvtJK"));
    assert_eq!(token.proxy_url.as_deref(), Some("socks5h://127.0.0.1:1080"));
    assert!(token.enabled_for(Work::Image) && token.enabled_for(Work::Video));
    assert_eq!((token.image_concurrency, token.video_concurrency), (Some(1), Some(3)));
    assert_eq!(token.remark.as_deref(), Some("main account"));
    assert_eq!(token.state, TokenRecord::new(Secret::new("x")).state);
}

#[test]
fn every_key_is_in_the_example_and_the_docs() {
    let example_keys: BTreeSet<String> = EXAMPLE
        .lines()
        .map(|l| l.trim_start_matches("# ").trim_start_matches('#').trim())
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.to_owned()))
        .collect();
    for (section, keys) in SECTIONS {
        assert!(EXAMPLE.contains(&format!("\n[{section}]\n")), "[{section}] not in the example");
        for key in *keys {
            let aliases = ["polling_mode_enabled", "poll_interval"];
            if *section == "call_logic" && aliases.contains(key) {
                assert!(MODULE.contains(&format!("`call_logic.{key}")), "{key}");
                assert!(MODULE.contains(&env_name(section, key)), "{section}.{key}");
                continue;
            }
            assert!(example_keys.contains(*key), "{section}.{key} not in the example");
            let row = format!("//! | `{section}.{key}` |");
            let line = MODULE.lines().find(|l| l.starts_with(&row));
            let line = line.unwrap_or_else(|| panic!("{section}.{key} not in the key table"));
            assert!(line.contains(&env_name(section, key)), "{line}");
        }
    }
    for key in TOKEN_KEYS {
        assert!(example_keys.contains(*key), "tokens.{key} not in the example");
        assert!(MODULE.contains(&format!("`{key}`")), "tokens.{key} not in the docs");
    }
}

// === values ===

#[test]
fn every_key_is_read() {
    let text = format!(
        r#"
        [server]
        host = "::1"
        port = 9000
        shutdown_grace = 0
        [global]
        api_key = "key-one"
        api_keys = ["key-two", "key-one"]
        admin_username = "root"
        admin_password = "pass word"
        [sora]
        base_url = "http://127.0.0.1:8080/backend/"
        auth_session_url = "http://127.0.0.1:8080/api/auth/session"
        oauth_token_url = "http://127.0.0.1:8080/oauth/token"
        sentinel_url = "http://127.0.0.1:8080/backend-api/sentinel/req"
        timeout = 30.5
        poll_interval = 0.25
        create_recovery_window = 4
        [generation]
        image_timeout = 60
        video_timeout = 7200
        [admin]
        error_ban_threshold = 0
        task_retry_enabled = false
        task_max_retries = 7
        [proxy]
        proxy_enabled = true
        proxy_url = "http://user:secret@proxy.example:3128"
        [call_logic]
        call_mode = "polling"
        [pow_service]
        mode = "external"
        server_url = "http://localhost:8002"
        api_key = "pow-key"
        use_token_for_pow = true
        [storage]
        data_dir = "/var/lib/sora2api"
        [limits]
        max_body_bytes = 1024
        blocking_wait = 1.5
        max_tasks = 7
        max_upstream_calls = 9

        [[tokens]]
        access_token = "Bearer {JWT}"
        image_enabled = false
        image_concurrency = 0
        video_concurrency = -1

        [[tokens]]
        access_token = "{BARE_JWT}"
        "#
    );
    let mut config = parse(&text);
    config.check().unwrap();
    assert_eq!(config.warnings, Vec::<String>::new());
    assert_eq!(config.listen_addr(), "[::1]:9000".parse().unwrap());
    assert_eq!(config.server.shutdown_grace, Duration::ZERO);
    assert_eq!(
        config.api_keys(),
        vec![Secret::new("key-one"), Secret::new("key-two")],
        "api_key first, duplicates once"
    );
    assert_eq!(config.global.admin_username, "root");
    assert_eq!(config.global.admin_password, Some(Secret::new("pass word")));
    assert_eq!(config.data_dir(), Path::new("/var/lib/sora2api"));
    assert_eq!(config.limits.max_body_bytes, 1024);
    assert_eq!(config.limits.blocking_wait, Duration::from_millis(1_500));
    assert_eq!(config.limits.max_tasks, 7);
    assert_eq!(config.http_upstream_config().max_in_flight, 9);
    assert_eq!(config.pow_service.mode, PowMode::External);
    assert_eq!(config.pow_service.server_url.as_deref(), Some("http://localhost:8002"));
    assert_eq!(config.pow_service.api_key, Some(Secret::new("pow-key")));
    assert!(config.pow_service.use_token_for_pow);

    let machine = config.machine_config();
    let upstream = UpstreamConfig::at_origin("http://127.0.0.1:8080");
    assert_eq!(
        machine,
        MachineConfig {
            upstream: UpstreamConfig { request_timeout_ms: 30_500, ..upstream },
            poll_interval_ms: 250,
            create_recovery_window_ms: 4_000,
            image_timeout_ms: 60_000,
            video_timeout_ms: 7_200_000,
            max_retries: 0,
            ..MachineConfig::default()
        },
        "the trailing slash of base_url is dropped; retries off means none"
    );
    assert_eq!(
        config.pool_config(),
        PoolConfig { strategy: Strategy::RoundRobin, error_threshold: 0, ..PoolConfig::default() }
    );
    assert_eq!(
        config.http_upstream_config().global_proxy.as_deref(),
        Some("http://user:secret@proxy.example:3128")
    );

    let tokens = config.token_records();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0].access_token.expose(), JWT, "a Bearer prefix is dropped");
    assert_eq!(tokens[0].expires_at_ms, Some(JWT_EXP_MS));
    assert!(!tokens[0].image_enabled && tokens[0].video_enabled);
    assert_eq!((tokens[0].image_concurrency, tokens[0].video_concurrency), (Some(0), None));
    assert_eq!((tokens[1].email.as_deref(), tokens[1].expires_at_ms), (None, None));

    // Retries on: task_max_retries counts.
    config.admin.task_retry_enabled = true;
    assert_eq!(config.machine_config().max_retries, 7);
    // A disabled proxy is not used, but its URL was checked.
    config.proxy.proxy_enabled = false;
    assert_eq!(config.http_upstream_config().global_proxy, None);
}

#[test]
fn hosts_and_ports() {
    for (host, addr) in [
        ("0.0.0.0", "0.0.0.0:8000"),
        ("127.0.0.1", "127.0.0.1:8000"),
        ("localhost", "127.0.0.1:8000"),
        ("::", "[::]:8000"),
        ("[::1]", "[::1]:8000"),
    ] {
        let config = parse(&format!("[server]\nhost = \"{host}\""));
        assert_eq!(config.listen_addr(), addr.parse().unwrap(), "{host}");
    }
    for port in [0, 65_535] {
        assert_eq!(parse(&format!("[server]\nport = {port}")).server.port, port);
    }
}

#[test]
fn the_reference_setting_toml_loads_with_warnings() {
    // The reference's layout and keys (its defaults), including sections we do not have.
    let text = r#"
        [global]
        api_key = "han1234"
        admin_username = "admin"
        admin_password = "admin"

        [sora]
        base_url = "https://sora.chatgpt.com/backend"
        timeout = 120
        max_retries = 3
        poll_interval = 2.5
        max_poll_attempts = 600

        [server]
        host = "0.0.0.0"
        port = 8000

        [debug]
        enabled = false
        log_requests = true

        [cache]
        enabled = false
        timeout = 600
        base_url = "http://127.0.0.1:8000"

        [generation]
        image_timeout = 300
        video_timeout = 1500

        [admin]
        error_ban_threshold = 3
        task_retry_enabled = true
        task_max_retries = 3
        auto_disable_on_401 = true

        [proxy]
        proxy_enabled = false
        proxy_url = ""
        image_upload_proxy_enabled = false
        image_upload_proxy_url = ""

        [watermark_free]
        watermark_free_enabled = false
        parse_method = "third_party"

        [token_refresh]
        at_auto_refresh_enabled = false
        client_ids = "app_a,app_b"

        [call_logic]
        polling_mode_enabled = true
        poll_interval = 4

        [timezone]
        timezone_offset = 8

        [pow_service]
        mode = "local"
        use_token_for_pow = false
        server_url = "http://localhost:8002"
        api_key = "your-secure-api-key-here"
        proxy_enabled = false
        proxy_url = ""
        "#;
    let mut config = parse(text);
    // Aliases: the legacy polling flag and call_logic's poll interval (which wins).
    assert_eq!(config.call_logic.call_mode, Strategy::RoundRobin);
    assert_eq!(config.sora.poll_interval, Duration::from_secs(4));
    assert_eq!(config.generation.video_timeout, Duration::from_secs(1_500));
    let ignored: Vec<&str> =
        config.warnings.iter().map(|w| w.split(' ').next().unwrap_or_default()).collect();
    assert_eq!(
        ignored,
        [
            "[cache]",
            "[debug]",
            "[timezone]",
            "[token_refresh]",
            "[watermark_free]",
            "admin.auto_disable_on_401",
            "pow_service.proxy_enabled",
            "pow_service.proxy_url",
            "proxy.image_upload_proxy_enabled",
            "proxy.image_upload_proxy_url",
            "sora.max_poll_attempts",
            "sora.max_retries",
        ]
    );
    assert!(config.warnings.iter().all(|w| w.contains("ignored")), "{:?}", config.warnings);
    // The published credentials are warned about.
    config.warnings.clear();
    config.check().unwrap();
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(config.warnings[0].contains("published default"));
    assert!(config.warnings[1].starts_with("global.admin_password"));
    // call_mode, when given, wins over the legacy flag.
    let text = "[call_logic]\npolling_mode_enabled = true\ncall_mode = \"default\"";
    assert_eq!(parse(text).call_logic.call_mode, Strategy::Random);
}

// === errors ===

#[test]
fn bad_ports() {
    for (value, found) in
        [("70000", "an integer 70000"), ("-1", "an integer -1"), ("\"8000\"", "a string \"8000\"")]
    {
        let shown = error_naming(&format!("[server]\nport = {value}"), "server.port");
        assert_eq!(
            shown,
            format!("server.port: expected a port, an integer 0-65535, found {found}")
        );
    }
    let shown = error_naming("[server]\nhost = \"example.com\"", "server.host");
    assert!(shown.contains("expected an IP address") && shown.contains("example.com"), "{shown}");
}

#[test]
fn bad_urls() {
    for (key, value, says) in [
        ("base_url", "not a url", "is not a URL"),
        ("base_url", "ftp://files.example/backend", "scheme \"ftp\""),
        ("auth_session_url", "https://", "is not a URL"),
        ("oauth_token_url", "file:///etc/passwd", "scheme \"file\""),
        ("sentinel_url", "", "is not a URL"),
    ] {
        let shown = error_naming(&format!("[sora]\n{key} = \"{value}\""), &format!("sora.{key}"));
        assert!(shown.contains(says), "{shown}");
        assert!(shown.contains(&format!("{value:?}")), "the value is shown: {shown}");
        assert!(shown.contains("http"), "what is expected: {shown}");
    }
    let shown =
        error_naming("[pow_service]\nserver_url = \"localhost:8002\"", "pow_service.server_url");
    assert!(shown.contains("scheme \"localhost\""), "{shown}");
}

#[test]
fn bad_proxies_never_show_the_url() {
    for (value, says) in [
        ("ftp://user:hunter2@proxy:21", "\"ftp\" is not supported"),
        ("socks4://user:hunter2@proxy:1080", "\"socks4\" is not supported"),
        ("user:hunter2@proxy:1080", "not supported"),
        ("hunter2", "not a valid absolute URL"),
    ] {
        let shown = error_naming(&format!("[proxy]\nproxy_url = \"{value}\""), "proxy.proxy_url");
        assert!(shown.contains(says), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    let text = format!("[[tokens]]\naccess_token = \"{JWT}\"\nproxy_url = \"gopher://hunter2@p\"");
    let shown = error_naming(&text, "tokens[0].proxy_url");
    assert!(shown.contains("gopher") && !shown.contains("hunter2"), "{shown}");
}

#[test]
fn bad_durations() {
    for (key, value) in [
        ("sora.timeout", "-1"),
        ("sora.timeout", "0"),
        ("sora.poll_interval", "-0.5"),
        ("sora.poll_interval", "nan"),
        ("generation.image_timeout", "\"300\""),
        ("generation.video_timeout", "1e12"),
        ("limits.blocking_wait", "0.0000001"),
        ("server.shutdown_grace", "-3"),
    ] {
        let (section, name) = key.split_once('.').unwrap();
        let shown = error_naming(&format!("[{section}]\n{name} = {value}"), key);
        assert!(shown.contains("expected a number of seconds"), "{shown}");
    }
}

#[test]
fn wrong_types() {
    for (text, key, expected) in [
        ("[admin]\ntask_retry_enabled = \"yes\"", "admin.task_retry_enabled", "true or false"),
        ("[admin]\nerror_ban_threshold = 1.5", "admin.error_ban_threshold", "0-1000"),
        ("[admin]\ntask_max_retries = 101", "admin.task_max_retries", "0-100"),
        ("[global]\napi_keys = \"one\"", "global.api_keys", "an array of strings"),
        ("[global]\napi_keys = [\"one\", 2]", "global.api_keys[1]", "a string"),
        ("[global]\nadmin_username = \"\"", "global.admin_username", "must not be empty"),
        ("[call_logic]\ncall_mode = \"random\"", "call_logic.call_mode", "\"polling\""),
        ("[pow_service]\nmode = \"remote\"", "pow_service.mode", "\"external\""),
        ("[limits]\nmax_body_bytes = 0", "limits.max_body_bytes", "bytes > 0"),
        ("[limits]\nmax_tasks = 0", "limits.max_tasks", "tasks > 0"),
        ("[limits]\nmax_upstream_calls = 0", "limits.max_upstream_calls", "calls > 0"),
        ("[storage]\ndata_dir = 5", "storage.data_dir", "a string"),
        ("server = 5", "server", "a [server] table"),
        ("tokens = \"none\"", "tokens", "[[tokens]] entries"),
        ("tokens = [1]", "tokens[0]", "a [[tokens]] table"),
    ] {
        let shown = error_naming(text, key);
        assert!(shown.contains(expected), "{text}: {shown}");
    }
}

#[test]
fn unknown_keys_name_the_nearest_known_one() {
    for (text, key, suggestion) in [
        ("[server]\nprot = 1", "server.prot", Some("server.port")),
        ("[server]\nhots = \"::\"", "server.hots", Some("server.host")),
        ("[global]\napi_kye = \"x\"", "global.api_kye", Some("global.api_key")),
        ("[sever]\nport = 1", "[sever]", Some("[server]")),
        ("[global]\nport = 1", "global.port", Some("server.port")),
        ("port = 1", "port", Some("server.port")),
        ("[server]\nbanana = 1", "server.banana", None),
        ("[frobnicate]\nx = 1", "[frobnicate]", None),
        (
            "[[tokens]]\nacess_token = \"x\"",
            "tokens[0].acess_token",
            Some("tokens[0].access_token"),
        ),
    ] {
        let err = error(text);
        assert_eq!(
            err,
            ConfigError::UnknownKey { key: key.into(), suggestion: suggestion.map(Into::into) },
            "{text}"
        );
        assert_eq!(err.key(), Some(key));
        let shown = err.to_string();
        match suggestion {
            Some(s) => assert_eq!(shown, format!("unknown key {key}; did you mean {s}?")),
            None => assert_eq!(shown, format!("unknown key {key}")),
        }
    }
}

#[test]
fn bad_tokens_are_named_by_index_and_never_shown() {
    let secret = "not-a-jwt-but-very-secret";
    let text =
        format!("[[tokens]]\naccess_token = \"{JWT}\"\n[[tokens]]\naccess_token = \"{secret}\"");
    let shown = error_naming(&text, "tokens[1].access_token");
    assert!(shown.contains("not a JWT") && !shown.contains("very-secret"), "{shown}");

    for (entry, key, says) in [
        ("remark = \"no token\"", "tokens[0].access_token", "missing"),
        ("access_token = 5", "tokens[0].access_token", "found an integer (not shown"),
        ("access_token = \"a.!!!.c\"", "tokens[0].access_token", "not base64url"),
        ("session_token = \"two words\"", "tokens[0].session_token", "spaces"),
        ("refresh_token = \"\"", "tokens[0].refresh_token", "empty"),
        ("client_id = \" \"", "tokens[0].client_id", "empty"),
        ("image_concurrency = -2", "tokens[0].image_concurrency", "-1 (unlimited)"),
        ("video_concurrency = 1.5", "tokens[0].video_concurrency", "-1 (unlimited)"),
        ("video_enabled = \"no\"", "tokens[0].video_enabled", "true or false"),
    ] {
        let access = if entry.starts_with("access_token") || entry.starts_with("remark") {
            String::new()
        } else {
            format!("access_token = \"{JWT}\"\n")
        };
        let shown = error_naming(&format!("[[tokens]]\n{access}{entry}"), key);
        assert!(shown.contains(says), "{entry}: {shown}");
    }
    let text = format!("[[tokens]]\naccess_token = \"{JWT}\"\nsession_token = \"two words\"");
    assert!(!error(&text).to_string().contains("two words"));

    let twice =
        format!("[[tokens]]\naccess_token = \"{JWT}\"\n[[tokens]]\naccess_token = \" {JWT}\"");
    let shown = error_naming(&twice, "tokens[1].access_token");
    assert!(shown.contains("the same access token as tokens[0]"), "{shown}");
}

#[test]
fn secrets_are_never_shown() {
    for (text, key) in [
        ("[global]\napi_key = \"sk hidden\"", "global.api_key"),
        ("[global]\napi_key = 123456789", "global.api_key"),
        ("[global]\napi_keys = [\"ok\", \"sk\\thidden\"]", "global.api_keys[1]"),
        ("[global]\nadmin_password = 123456789", "global.admin_password"),
        ("[pow_service]\napi_key = false", "pow_service.api_key"),
    ] {
        let shown = error_naming(text, key);
        assert!(!shown.contains("hidden") && !shown.contains("123456789"), "{shown}");
        assert!(!shown.contains("false"), "{shown}");
    }
    // Debug of a whole configuration shows no secret and no proxy credentials.
    let text = format!(
        "[global]\napi_key = \"sk-hidden\"\nadmin_password = \"pw-hidden\"\n\
         [proxy]\nproxy_url = \"http://u:pw-proxy@p:1\"\n[pow_service]\napi_key = \"pow-hidden\"\n\
         [[tokens]]\naccess_token = \"{JWT}\"\nrefresh_token = \"rt-hidden\""
    );
    let shown = format!("{:?}", parse(&text));
    for hidden in ["sk-hidden", "pw-hidden", "pw-proxy", "pow-hidden", "rt-hidden", JWT] {
        assert!(!shown.contains(hidden), "{hidden} in {shown}");
    }
}

#[test]
fn syntax_errors_give_the_position_without_the_line() {
    let err = error("[server]\nport = 8000\n[global]\napi_key = \"sk-unterminated\n");
    let ConfigError::Syntax { line, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*line, 4);
    let shown = err.to_string();
    assert!(shown.starts_with("not valid TOML at line 4, column "), "{shown}");
    assert!(!shown.contains("sk-unterminated"), "{shown}");
    assert_eq!(err.key(), None);
    // A key given twice is a syntax error too.
    let err = error("[server]\nport = 1\nport = 2\n");
    assert!(matches!(err, ConfigError::Syntax { line: 3, .. }), "{err:?}");
}

// === environment, flags, check, load ===

#[test]
fn the_environment_overrides_the_file() {
    let mut config = parse("[server]\nport = 8000\n[global]\napi_key = \"from-file\"");
    config
        .apply_env(env(&[
            ("SORA2API_SERVER_PORT", "9000"),
            ("SORA2API_SERVER_HOST", "127.0.0.1"),
            ("SORA2API_GLOBAL_API_KEY", "from-env"),
            ("SORA2API_GLOBAL_API_KEYS", "a, b,c"),
            ("SORA2API_SORA_BASE_URL", "http://127.0.0.1:8080/backend"),
            ("SORA2API_SORA_TIMEOUT", "12.5"),
            ("SORA2API_ADMIN_TASK_RETRY_ENABLED", "0"),
            ("SORA2API_PROXY_PROXY_ENABLED", "TRUE"),
            ("SORA2API_PROXY_PROXY_URL", "socks5://127.0.0.1:1080"),
            ("SORA2API_CALL_LOGIC_POLLING_MODE_ENABLED", "1"),
            ("SORA2API_STORAGE_DATA_DIR", "/srv/sora2api"),
            ("SORA2API_LIMITS_MAX_BODY_BYTES", "2048"),
            ("PATH", "/usr/bin"),
            ("SORA2API_SERVER_PROT", "1"),
            ("SORA2API_LOG", "debug"),
        ]))
        .unwrap();
    assert_eq!(config.listen_addr(), "127.0.0.1:9000".parse().unwrap());
    assert_eq!(
        config.api_keys(),
        ["from-env", "a", "b", "c"].map(Secret::new).to_vec(),
        "the variable replaces the file's key; lists are comma-separated"
    );
    assert_eq!(config.sora.base_url, "http://127.0.0.1:8080/backend");
    assert_eq!(config.sora.timeout, Duration::from_millis(12_500));
    assert!(!config.admin.task_retry_enabled);
    assert_eq!(
        config.http_upstream_config().global_proxy.as_deref(),
        Some("socks5://127.0.0.1:1080")
    );
    assert_eq!(config.call_logic.call_mode, Strategy::RoundRobin);
    assert_eq!(config.data_dir(), Path::new("/srv/sora2api"));
    assert_eq!(config.limits.max_body_bytes, 2048);
    // Unknown SORA2API_ variables warn (with the nearest name); others are not ours.
    assert_eq!(
        config.warnings,
        [
            "environment variable SORA2API_LOG is not a setting",
            "environment variable SORA2API_SERVER_PROT is not a setting; did you mean \
             SORA2API_SERVER_PORT?",
        ]
    );
}

#[test]
fn environment_errors_name_the_key_and_the_variable() {
    for (var, value, says) in [
        ("SORA2API_SERVER_PORT", "http", "server.port (SORA2API_SERVER_PORT): expected a port"),
        ("SORA2API_SORA_TIMEOUT", "-5", "sora.timeout (SORA2API_SORA_TIMEOUT): expected"),
        (
            "SORA2API_PROXY_PROXY_ENABLED",
            "yes",
            "proxy.proxy_enabled (SORA2API_PROXY_PROXY_ENABLED)",
        ),
        ("SORA2API_SORA_BASE_URL", "sora.example", "sora.base_url (SORA2API_SORA_BASE_URL)"),
        ("SORA2API_CALL_LOGIC_POLL_INTERVAL", "0", "call_logic.poll_interval"),
    ] {
        let mut config = Config::default();
        let err = config.apply_env(env(&[(var, value)])).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with(says), "{shown}");
        assert!(shown.contains(value), "the value is shown: {shown}");
    }
    let mut config = Config::default();
    config.apply_env(env(&[("SORA2API_GLOBAL_API_KEYS", "")])).unwrap();
    assert_eq!(config.api_keys(), vec![]);
    let err = config.apply_env(env(&[("SORA2API_GLOBAL_API_KEYS", "a,,b")])).unwrap_err();
    assert_eq!(err.key(), Some("global.api_keys (SORA2API_GLOBAL_API_KEYS)[1]"));
    let err = config.apply_env(env(&[("SORA2API_GLOBAL_API_KEY", "two words")])).unwrap_err();
    assert!(!err.to_string().contains("two words"), "{err}");
    let err = config.apply_env(env(&[("SORA2API_GLOBAL_ADMIN_PASSWORD", "")])).unwrap_err();
    assert_eq!(err.key(), Some("global.admin_password (SORA2API_GLOBAL_ADMIN_PASSWORD)"));
}

#[test]
fn flags_override_file_and_environment() {
    let mut config = parse("[server]\nport = 8000\n[storage]\ndata_dir = \"file\"");
    config.apply_env(env(&[("SORA2API_SERVER_PORT", "9000")])).unwrap();
    config.apply_flags(&GatewayArgs::default());
    assert_eq!(config.listen_addr(), "0.0.0.0:9000".parse().unwrap());
    config.apply_flags(&GatewayArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some("flag".into()),
        ..GatewayArgs::default()
    });
    assert_eq!(config.listen_addr(), "127.0.0.1:0".parse().unwrap());
    assert_eq!(config.data_dir(), Path::new("flag"));
}

#[test]
fn check_needs_an_api_key_and_urls_for_what_is_enabled() {
    let mut config = Config::default();
    let err = config.check().unwrap_err();
    assert_eq!(err.key(), Some("global.api_key"));
    assert!(err.to_string().contains("SORA2API_GLOBAL_API_KEY"), "{err}");
    config.apply_env(env(&[("SORA2API_GLOBAL_API_KEYS", "k1")])).unwrap();
    config.check().unwrap();
    assert_eq!(config.warnings, Vec::<String>::new());

    let mut proxied = parse("[global]\napi_key = \"k\"\n[proxy]\nproxy_enabled = true");
    let err = proxied.check().unwrap_err();
    assert_eq!(err.key(), Some("proxy.proxy_url"));
    let mut external = parse("[global]\napi_key = \"k\"\n[pow_service]\nmode = \"external\"");
    let err = external.check().unwrap_err();
    assert_eq!(err.key(), Some("pow_service.server_url"));
    assert!(err.to_string().contains("external"), "{err}");
}

#[test]
fn load_reads_the_file_then_environment_then_flags() {
    let dir = std::env::temp_dir().join(format!("sora2api-config-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sora2api.toml");
    std::fs::write(&file, "[server]\nport = 8001\n[storage]\ndata_dir = \"from-file\"").unwrap();
    let args = GatewayArgs {
        config: Some(file.clone()),
        data_dir: Some("from-flag".into()),
        ..GatewayArgs::default()
    };
    let config = Config::load(
        &args,
        env(&[("SORA2API_GLOBAL_API_KEY", "k"), ("SORA2API_SERVER_PORT", "8002")]),
    )
    .unwrap();
    assert_eq!(config.server.port, 8002);
    assert_eq!(config.data_dir(), Path::new("from-flag"));
    // check() ran: no key, no start.
    assert_eq!(Config::load(&args, env(&[])).unwrap_err().key(), Some("global.api_key"));
    // The process environment reads without panicking.
    assert!(env_vars().iter().any(|(name, _)| name == "PATH"));
    // No --config: defaults and environment only.
    let defaults = Config::load(&GatewayArgs::default(), env(&[("SORA2API_GLOBAL_API_KEY", "k")]));
    assert_eq!(defaults.unwrap().server.port, 8000);
    // A file that cannot be read names it.
    let missing = GatewayArgs { config: Some(dir.join("missing.toml")), ..GatewayArgs::default() };
    let err = Config::load(&missing, env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
