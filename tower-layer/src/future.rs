//! The response future of the service: the inner service's future, or one of ours.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project::pin_project;

use crate::body::{OwnedBody, ResponseBody};
use crate::upstream::BoxFuture;

/// The future of [`Sora2ApiService`](crate::Sora2ApiService): `Send` when the inner future
/// is; its error is the inner service's error (ours never fail: every failure is a response).
#[pin_project]
pub struct ResponseFuture<F> {
    #[pin]
    kind: Kind<F>,
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Inner(_) => "inner",
            Kind::Owned(_) => "owned",
        };
        f.debug_struct("ResponseFuture").field("kind", &kind).finish()
    }
}

#[pin_project(project = KindProj)]
enum Kind<F> {
    Inner(#[pin] F),
    Owned(BoxFuture<'static, Response<OwnedBody>>),
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        ResponseFuture { kind: Kind::Inner(future) }
    }

    pub(crate) fn owned(future: BoxFuture<'static, Response<OwnedBody>>) -> Self {
        ResponseFuture { kind: Kind::Owned(future) }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner(future) => match future.poll(cx) {
                Poll::Ready(result) => Poll::Ready(result.map(|r| r.map(ResponseBody::inner))),
                Poll::Pending => Poll::Pending,
            },
            KindProj::Owned(future) => match future.as_mut().poll(cx) {
                Poll::Ready(response) => Poll::Ready(Ok(response.map(ResponseBody::owned))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
