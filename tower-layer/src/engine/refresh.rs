//! Single-flight credential refresh: one [`Refresh`] per token at a time; every task that
//! asks meanwhile waits for the same result.

use std::collections::HashMap;
use std::sync::Arc;

use sora2api_core::lifecycle::{Refresh, RefreshError, RefreshMaterial, RefreshStep};
use sora2api_core::pool::{Credentials, TokenId};
use tokio::sync::watch;

use super::{lock, Inner};
use crate::clock;

/// The refresh result channel: `None` while running, then `Some(result)`.
type Outcome = Option<Result<Credentials, RefreshError>>;

/// Refreshes in flight, by token.
#[derive(Default)]
pub(super) struct InFlight(HashMap<TokenId, watch::Receiver<Outcome>>);

// === impl Inner (refresh) ===

impl Inner {
    /// Fresh credentials for `token` (ST -> AT, then RT -> AT), stored in the pool with the
    /// rotated RT; the [`RefreshError`] when the token cannot be refreshed (a token that is not
    /// in the pool has [`RefreshError::NoMaterial`]). Concurrent callers for the same token
    /// share one refresh. The refresh runs in its own task, so a caller that goes away
    /// (cancelled) does not stop it for the others.
    pub(super) async fn refresh(
        self: &Arc<Self>,
        token: TokenId,
    ) -> Result<Credentials, RefreshError> {
        let mut rx = {
            let mut in_flight = lock(&self.refreshes);
            match in_flight.0.get(&token) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    in_flight.0.insert(token, rx.clone());
                    let inner = self.clone();
                    tokio::spawn(async move {
                        let result = inner.run_refresh(token).await;
                        lock(&inner.refreshes).0.remove(&token);
                        tx.send_replace(Some(result));
                    });
                    rx
                }
            }
        };
        // The sender is dropped only after sending; a runtime shutting down is transient.
        let result = rx.wait_for(Option::is_some).await.map_err(|_| RefreshError::Transient)?;
        result.clone().unwrap_or(Err(RefreshError::Transient))
    }

    /// One refresh procedure against the upstream. Every failure (rejected material, a
    /// transient error, an already expired result) is an error: the machine then treats the
    /// token as unusable for this attempt.
    async fn run_refresh(&self, token: TokenId) -> Result<Credentials, RefreshError> {
        let material = {
            let state = lock(&self.pool);
            let r = state.pool.get(token).ok_or(RefreshError::NoMaterial)?;
            RefreshMaterial {
                session_token: r.session_token.clone(),
                refresh_token: r.refresh_token.clone(),
                client_id: r.client_id.clone(),
                proxy: r.proxy_url.clone(),
            }
        };
        let mut refresh = Refresh::new(&self.machine().upstream, material);
        let fresh = loop {
            match refresh.next(clock::now_ms()) {
                RefreshStep::Send(req) => {
                    let outcome = self.upstream.send(req).await;
                    // `next` just asked for this request: `handle` cannot refuse it.
                    let _ = refresh.handle(clock::now_ms(), outcome);
                }
                RefreshStep::Done(result) => break result?,
            }
        };
        lock(&self.pool).pool.set_credentials(
            token,
            fresh.access_token,
            fresh.expires_at_ms,
            fresh.refresh_token,
        );
        // Removed meanwhile: nothing holds the new credentials.
        self.credentials(token).ok_or(RefreshError::NoMaterial)
    }
}
