//! The lifecycle procedures against the simulated backend (feature `sim`).

use super::*;
use crate::secret::Secret;
use crate::sim::{AccountSpec, Sim, SimConfig, Sora2Access};
use crate::upstream::{Auth, UpstreamConfig};

const HOUR: u64 = 3_600_000;

fn cfg() -> UpstreamConfig {
    UpstreamConfig::at_origin("http://127.0.0.1:9")
}

fn refresh(sim: &mut Sim, now: u64, material: RefreshMaterial) -> Result<Refreshed, RefreshError> {
    let mut r = Refresh::new(&cfg(), material);
    loop {
        match r.next(now) {
            RefreshStep::Send(req) => r.handle(now, sim.handle(now, &req).into_result()).unwrap(),
            RefreshStep::Done(result) => return result,
        }
    }
}

fn enrich(sim: &mut Sim, now: u64, access_token: &str) -> Result<TokenProfile, EnrichError> {
    let mut e = Enrich::new(&cfg(), Auth::new(Secret::new(access_token)));
    loop {
        match e.next(now) {
            EnrichStep::Send(req) => e.handle(now, sim.handle(now, &req).into_result()).unwrap(),
            EnrichStep::Done(result) => return result,
        }
    }
}

#[test]
fn refresh_against_the_simulator() {
    let mut sim = Sim::new(SimConfig::fast());
    let start = sim.config().start_ms;
    let ttl = sim.config().refreshed_token_ttl_ms;
    let acct = sim.add_account(AccountSpec::pro("ada@example.com"));
    let (st, rt) = (acct.session_token.clone().unwrap(), acct.refresh_token.clone().unwrap());
    let now = start + HOUR;
    let material = |st: Option<&str>, rt: &str, client: &str| RefreshMaterial {
        session_token: st.map(Secret::new),
        refresh_token: Some(Secret::new(rt)),
        client_id: Some(client.to_owned()),
        proxy: None,
    };

    // ST -> AT: a working AT, its expiry and e-mail from the JWT, the RT untouched.
    let fresh = refresh(&mut sim, now, material(Some(&st), &rt, &acct.client_id)).unwrap();
    assert_eq!(fresh.via, Credential::SessionToken);
    assert_eq!(fresh.refresh_token, None);
    assert_eq!(fresh.expires_at_ms, Some((now + ttl) / 1000 * 1000));
    assert_eq!(fresh.email.as_deref(), Some("ada@example.com"));
    assert_ne!(fresh.access_token.expose(), acct.access_token);
    assert!(enrich(&mut sim, now, fresh.access_token.expose()).is_ok());

    // A dead ST falls through to the RT, which rotates: keep the new one.
    let fresh = refresh(&mut sim, now, material(Some("st-unknown"), &rt, &acct.client_id)).unwrap();
    assert_eq!(fresh.via, Credential::RefreshToken);
    let rotated = fresh.refresh_token.clone().unwrap();
    assert_ne!(rotated.expose(), rt);
    assert!(enrich(&mut sim, now, fresh.access_token.expose()).is_ok());

    // The rotated-away RT is refused (`refresh_token_reused`), so is another client's.
    let reused = refresh(&mut sim, now, material(None, &rt, &acct.client_id));
    assert_eq!(reused, Err(RefreshError::Rejected));
    let other_client = refresh(&mut sim, now, material(None, rotated.expose(), "app_other"));
    assert_eq!(other_client, Err(RefreshError::Rejected));
    // The kept one works.
    let again = refresh(&mut sim, now, material(None, rotated.expose(), &acct.client_id));
    assert!(again.unwrap().refresh_token.is_some());

    // A revoked account: ST and RT both fail.
    let revoked = sim.add_account(AccountSpec { revoked: true, ..AccountSpec::pro("rev@x.io") });
    let m = RefreshMaterial {
        session_token: revoked.session_token.map(Secret::new),
        refresh_token: revoked.refresh_token.map(Secret::new),
        client_id: Some(revoked.client_id),
        proxy: None,
    };
    assert_eq!(refresh(&mut sim, now, m), Err(RefreshError::Rejected));
}

#[test]
fn enrich_against_the_simulator() {
    let mut sim = Sim::new(SimConfig::fast());
    let start = sim.config().start_ms;
    let now = start + HOUR;
    let day = 86_400;
    let cases: Vec<(AccountSpec, Result<TokenProfile, EnrichError>)> = vec![
        (
            AccountSpec::pro("pro@x.io"),
            Ok(TokenProfile {
                plan_type: Some("chatgpt_pro".into()),
                pro: true,
                sora2_supported: true,
                quota_remaining: Some(30),
                quota_resets_at_ms: Some(start + day * 1000),
                ..TokenProfile::default()
            }),
        ),
        (
            AccountSpec::free("free@x.io"),
            Ok(TokenProfile {
                plan_type: Some("chatgpt_plus".into()),
                sora2_supported: true,
                quota_remaining: Some(30),
                quota_resets_at_ms: Some(start + day * 1000),
                ..TokenProfile::default()
            }),
        ),
        (
            AccountSpec { sora2: Sora2Access::AfterBootstrap, ..AccountSpec::free("boot@x.io") },
            Ok(TokenProfile {
                plan_type: Some("chatgpt_plus".into()),
                sora2_supported: true,
                quota_remaining: Some(30),
                quota_resets_at_ms: Some(start + day * 1000),
                ..TokenProfile::default()
            }),
        ),
        (
            AccountSpec { sora2: Sora2Access::Unavailable, ..AccountSpec::free("no@x.io") },
            Ok(TokenProfile { plan_type: Some("chatgpt_plus".into()), ..TokenProfile::default() }),
        ),
        (
            AccountSpec { quota: 0, ..AccountSpec::pro("empty@x.io") },
            Ok(TokenProfile {
                plan_type: Some("chatgpt_pro".into()),
                pro: true,
                sora2_supported: true,
                quota_remaining: Some(0),
                quota_resets_at_ms: Some(start + day * 1000),
                rate_limited: true,
                ..TokenProfile::default()
            }),
        ),
        (
            AccountSpec { country_blocked: Some("CN".into()), ..AccountSpec::pro("cn@x.io") },
            Err(EnrichError::CountryUnsupported { country: Some("CN".into()) }),
        ),
        (AccountSpec { revoked: true, ..AccountSpec::pro("rev@x.io") }, Err(EnrichError::Invalid)),
        (
            AccountSpec { expires_in_ms: HOUR / 2, ..AccountSpec::pro("old@x.io") },
            Err(EnrichError::Expired),
        ),
    ];
    // Every account is added before the first request: its times count from `start`.
    let minted: Vec<_> = cases.iter().map(|(spec, _)| sim.add_account(spec.clone())).collect();
    for (acct, (_, want)) in minted.into_iter().zip(cases) {
        let email = acct.email.clone();
        let got = enrich(&mut sim, now, &acct.access_token);
        match (got, want) {
            (Ok(got), Ok(want)) => {
                // Compare what the table names; the rest is the simulator's own data.
                assert_eq!(got.email.as_deref(), Some(email.as_str()), "{email}");
                assert_eq!(got.plan_type, want.plan_type, "{email}");
                assert_eq!(got.pro, want.pro, "{email}");
                assert!(got.plan_title.is_some() && got.subscription_end_ms.is_some(), "{email}");
                assert_eq!(got.sora2_supported, want.sora2_supported, "{email}");
                assert_eq!(got.invite_code.is_some(), want.sora2_supported, "{email}");
                assert_eq!(got.quota_remaining, want.quota_remaining, "{email}");
                assert_eq!(got.quota_resets_at_ms, want.quota_resets_at_ms, "{email}");
                assert_eq!(got.rate_limited, want.rate_limited, "{email}");
            }
            (got, want) => assert_eq!(got, want, "{email}"),
        }
    }
}
