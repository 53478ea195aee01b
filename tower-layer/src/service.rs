//! [`Sora2ApiService`]: the service [`Sora2ApiLayer`](crate::Sora2ApiLayer) makes.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::api;
use crate::body::{OwnedBody, ResponseBody};
use crate::error::error_response;
use crate::extract;
use crate::future::ResponseFuture;
use crate::layer::{Owner, Shared};

/// The gateway in front of an inner service `S`.
///
/// The mount contract (architecture property 3): `Clone + Send + Sync + 'static` when `S` is,
/// its future is `Send`, its body has `Data = Bytes`, and its error is `S::Error` (so
/// `Infallible` stays `Infallible`). Requests under the client API root or the admin prefix
/// are answered here and never reach `S`; every other request goes to `S` untouched.
#[derive(Clone)]
pub struct Sora2ApiService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Sora2ApiService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sora2ApiService").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S> Sora2ApiService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Sora2ApiService { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the gateway.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The engine that runs this gateway's tasks.
    pub fn engine(&self) -> &crate::Engine {
        &self.shared.engine
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Sora2ApiService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: Body<Data = bytes::Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = self.shared.clone();
        match shared.owner(req.uri().path()) {
            Owner::Inner => {
                // The inner service was made ready by `poll_ready`: call that one and keep
                // a fresh clone for the next request (tower's usual pattern).
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::inner(ready.call(req))
            }
            Owner::Api(path) => ResponseFuture::owned(Box::pin(api::handle(shared, path, req))),
            Owner::Admin(path) => ResponseFuture::owned(Box::pin(admin(shared, path, req))),
        }
    }
}

/// Hands an admin request to the admin API: the path below the admin prefix (query kept),
/// the body collected within the layer's limits.
async fn admin<B>(shared: Arc<Shared>, path: String, req: Request<B>) -> Response<OwnedBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some((_, handler)) = shared.admin.as_ref() else {
        return error_response(&sora2api_core::Error::Internal).map(OwnedBody::Full);
    };
    let (mut parts, body) = req.into_parts();
    let body =
        match extract::collect(&parts.headers, body, shared.max_body_bytes, shared.body_timeout)
            .await
        {
            Ok(body) => body,
            Err(err) => return error_response(&err).map(OwnedBody::Full),
        };
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    if let Ok(uri) = path_and_query.parse() {
        parts.uri = uri;
    }
    handler(Request::from_parts(parts, body)).await.map(OwnedBody::Full)
}
