//! The response body of the service: the inner service's body, passed through untouched, or
//! one of ours (a full JSON body, or an SSE stream).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project::pin_project;

use crate::sse::SseBody;

/// The body of every response of [`Sora2ApiService`](crate::Sora2ApiService):
/// `Data = Bytes`, `Error` = the inner body's error (our own bodies never fail).
#[pin_project]
#[derive(Debug)]
pub struct ResponseBody<B> {
    #[pin]
    kind: Kind<B>,
}

#[pin_project(project = KindProj)]
#[derive(Debug)]
enum Kind<B> {
    /// The inner service's body.
    Inner(#[pin] B),
    /// A whole body, sent as one frame (`None` once sent).
    Full(Option<Bytes>),
    /// An event stream.
    Sse(SseBody),
}

impl<B> ResponseBody<B> {
    /// The inner service's body.
    pub(crate) fn inner(body: B) -> Self {
        ResponseBody { kind: Kind::Inner(body) }
    }

    /// One of ours.
    pub(crate) fn owned(body: OwnedBody) -> Self {
        let kind = match body {
            OwnedBody::Full(bytes) => Kind::Full((!bytes.is_empty()).then_some(bytes)),
            OwnedBody::Sse(sse) => Kind::Sse(sse),
        };
        ResponseBody { kind }
    }
}

/// The bodies the layer makes itself.
#[derive(Debug)]
pub(crate) enum OwnedBody {
    /// A complete body (JSON).
    Full(Bytes),
    /// A task's event stream.
    Sse(SseBody),
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner(body) => body.poll_frame(cx),
            KindProj::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            KindProj::Sse(sse) => match Pin::new(sse).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner(body) => body.is_end_stream(),
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Sse(sse) => sse.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner(body) => body.size_hint(),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Sse(sse) => sse.size_hint(),
        }
    }
}
