//! The response body of a streaming request (`stream: true`): one task's events as
//! `chat.completion.chunk` frames (rendered by the core's [`StreamRenderer`]), a
//! [`KEEP_ALIVE`] comment whenever nothing else went out for the keep-alive interval, and
//! exactly one `data: [DONE]` at the end (client-api.md "Streaming", decisions 3).
//!
//! # Lagging, and a stream that loses its terminal event
//!
//! The events come from the task's `tokio::sync::broadcast` channel. A subscriber too slow
//! for the channel's capacity gets [`RecvError::Lagged`]: the body skips the lost events and
//! carries on. Only progress can be lost that way: the terminal event is the last one a task
//! ever sends, and a lagging broadcast receiver resumes at the oldest event still buffered,
//! so the newest one (the terminal event) is always still there.
//!
//! The one way to miss the terminal event is the channel closing without it
//! ([`RecvError::Closed`] before the renderer finished): the task's driver was aborted
//! (engine shutdown), or the client subscribed after the task sent its terminal event but
//! before the engine dropped its sender. Then the body:
//!
//! 1. asks the [`Fallback`] given with [`SseBody::with_fallback`], if any, once (keep-alives
//!    go on while it runs): a callback that looks the task up (typically [`Engine::get`]) and
//!    answers its [`Ending`] (`TaskRecord::ending`), or `None` if it has none;
//! 2. renders that ending; if there is none (no fallback, or `None`), it ends with one error
//!    frame (`type: server_error`, `code: stream_interrupted`, a message naming the task id
//!    and `GET /v1/tasks/{id}`) followed by `data: [DONE]`.
//!
//! So the stream never hangs on a task that will not send again, and always ends with
//! exactly one `[DONE]`.
//!
//! # Client disconnects
//!
//! Dropping the body (the client went away) drops only its receiver: the task keeps running
//! and its sender simply has one subscriber fewer (client-api.md: a disconnect never cancels
//! the task).
//!
//! [`Engine::get`]: crate::Engine::get

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http_body::{Body, Frame};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, Sleep};

use sora2api_core::error::{ErrorBody, ErrorEnvelope, ErrorType};
use sora2api_core::record::Ending;
use sora2api_core::render::{StreamRenderer, DONE, KEEP_ALIVE};
use sora2api_core::task::{Event, TaskId};

use crate::upstream::BoxFuture;

/// How long a stream may stay silent before a [`KEEP_ALIVE`] comment goes out (client-api.md:
/// at least every 15 s).
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The shortest keep-alive interval [`SseBody::with_keep_alive`] accepts (a zero interval
/// would flood the client with comments).
pub const MIN_KEEP_ALIVE: Duration = Duration::from_millis(100);

/// The `code` of the error frame that ends a stream whose events were lost.
pub const STREAM_INTERRUPTED: &str = "stream_interrupted";

/// Asked once when the task's channel closes before its terminal event: answers the task's
/// terminal event (for example from [`Engine::get`](crate::Engine::get)), or `None`.
pub type Fallback = Box<dyn FnOnce() -> BoxFuture<'static, Option<Ending>> + Send>;

/// The headers of every SSE response: `content-type: text/event-stream`,
/// `cache-control: no-cache` and `x-accel-buffering: no` (stops nginx from buffering the
/// stream).
///
/// No `connection: keep-alive`: it is a connection-specific header that HTTP/2 and HTTP/3
/// forbid (a response carrying it is malformed there), and HTTP/1.1 keeps connections alive
/// by default anyway.
pub fn sse_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
    ]
}

/// One pending `recv` on the task's channel; it owns the receiver and hands it back, so the
/// body needs no self-reference (and dropping the body drops the receiver).
type Recv = BoxFuture<'static, (Result<Event, RecvError>, broadcast::Receiver<Event>)>;

fn recv(mut events: broadcast::Receiver<Event>) -> Recv {
    Box::pin(async move {
        let next = events.recv().await;
        (next, events)
    })
}

/// Where the body is.
enum State {
    /// Waiting for the task's next event.
    Events(Recv),
    /// The channel closed before the terminal event; the fallback is looking the task up.
    Fallback(BoxFuture<'static, Option<Ending>>),
    /// `[DONE]` went out; the body has ended.
    Done,
}

/// What one poll of the current state produced.
enum Step {
    Received(Result<Event, RecvError>, broadcast::Receiver<Event>),
    Looked(Option<Ending>),
}

/// The SSE body of one streaming response: `http_body::Body<Data = Bytes, Error = Infallible>`.
///
/// Every frame is one or more complete SSE events. See the [module docs](self) for lagging,
/// lost terminal events and disconnects.
pub struct SseBody {
    task_id: TaskId,
    renderer: StreamRenderer,
    state: State,
    fallback: Option<Fallback>,
    keep_alive: Duration,
    /// When the next keep-alive is due; armed on the first poll or frame (a timer needs the
    /// runtime, which a constructor may not run in) and reset after every frame.
    timer: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for SseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("task_id", &self.task_id)
            .field("finished", &matches!(self.state, State::Done))
            .field("keep_alive", &self.keep_alive)
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

// === impl SseBody ===

impl SseBody {
    /// The stream of task `task_id`: `renderer` (made for the same task) renders what arrives
    /// on `events`, with the [default keep-alive](DEFAULT_KEEP_ALIVE) and no fallback.
    pub fn new(
        task_id: TaskId,
        renderer: StreamRenderer,
        events: broadcast::Receiver<Event>,
    ) -> SseBody {
        SseBody {
            task_id,
            renderer,
            state: State::Events(recv(events)),
            fallback: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            timer: None,
        }
    }

    /// Sends a keep-alive comment after `interval` of silence instead of 15 s (at least
    /// [`MIN_KEEP_ALIVE`]).
    pub fn with_keep_alive(mut self, interval: Duration) -> SseBody {
        self.keep_alive = interval.max(MIN_KEEP_ALIVE);
        self
    }

    /// Asks `fallback` for the terminal event if the channel closes without one.
    pub fn with_fallback(mut self, fallback: Fallback) -> SseBody {
        self.fallback = Some(fallback);
        self
    }

    /// The end of a stream that lost its terminal event: one error frame naming the task to
    /// poll, then `[DONE]`.
    fn interrupted(&self) -> String {
        let id = &self.task_id;
        let envelope = ErrorEnvelope {
            error: ErrorBody {
                message: format!(
                    "The event stream of task {id} ended before the task's result; \
                     use GET /v1/tasks/{id} to check its status"
                ),
                kind: ErrorType::ServerError,
                param: None,
                code: Some(STREAM_INTERRUPTED.into()),
            },
        };
        format!("data: {envelope}\n\n{DONE}")
    }

    /// Starts the keep-alive countdown anew: the next comment is due `keep_alive` from now.
    fn rearm(&mut self) {
        let deadline = Instant::now() + self.keep_alive;
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// The next text to send (possibly empty), or `None` while nothing is ready.
    fn poll_text(&mut self, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let step = match &mut self.state {
            State::Done => return Poll::Ready(None),
            State::Events(next) => match next.as_mut().poll(cx) {
                Poll::Ready((result, events)) => Step::Received(result, events),
                Poll::Pending => return Poll::Pending,
            },
            State::Fallback(lookup) => match lookup.as_mut().poll(cx) {
                Poll::Ready(event) => Step::Looked(event),
                Poll::Pending => return Poll::Pending,
            },
        };
        let text = match step {
            Step::Received(Ok(event), events) => {
                let text = self.renderer.event(&event);
                if !self.renderer.is_finished() {
                    self.state = State::Events(recv(events));
                }
                text
            }
            // Lost progress: skip it (the terminal event is never among the lost, see above).
            Step::Received(Err(RecvError::Lagged(_)), events) => {
                self.state = State::Events(recv(events));
                String::new()
            }
            Step::Received(Err(RecvError::Closed), _) => match self.fallback.take() {
                Some(fallback) => {
                    self.state = State::Fallback(fallback());
                    return Poll::Ready(Some(String::new()));
                }
                None => {
                    self.state = State::Done;
                    return Poll::Ready(Some(self.interrupted()));
                }
            },
            Step::Looked(ending) => {
                let mut text = ending.map(|e| self.renderer.end(&e)).unwrap_or_default();
                if !self.renderer.is_finished() {
                    text.push_str(&self.interrupted());
                }
                self.state = State::Done;
                text
            }
        };
        if self.renderer.is_finished() {
            self.state = State::Done;
        }
        Poll::Ready(Some(text))
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            match this.poll_text(cx) {
                Poll::Ready(None) => return Poll::Ready(None),
                // Nothing to send for this event (or a skipped lag): look again.
                Poll::Ready(Some(text)) if text.is_empty() => continue,
                Poll::Ready(Some(text)) => {
                    this.rearm();
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(text)))));
                }
                Poll::Pending => break,
            }
        }
        if this.timer.is_none() {
            this.rearm();
        }
        if let Some(timer) = &mut this.timer {
            if timer.as_mut().poll(cx).is_ready() {
                this.rearm();
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                    KEEP_ALIVE.as_bytes(),
                )))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use sora2api_core::task::{Flow, TaskResult};

    fn id() -> TaskId {
        TaskId::new(1_730_000_000_000, 7)
    }

    fn renderer() -> StreamRenderer {
        StreamRenderer::new(&id(), 1_730_000_000, "sora2-landscape-10s")
    }

    fn started() -> Event {
        Event::Started(Flow::Generation { with_image: false })
    }

    fn progress(percent: f32) -> Event {
        Event::VideoProgress { percent, status: "running".into() }
    }

    fn completed() -> Event {
        Event::Completed(TaskResult::Videos(vec!["https://x/1.mp4".into()]))
    }

    /// The next frame as text, `None` once the body ended.
    async fn next(body: &mut SseBody) -> Option<String> {
        let frame = body.frame().await?.unwrap();
        Some(String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap())
    }

    /// Every frame up to the end, with the (paused) time each arrived, in seconds from now.
    async fn collect(mut body: SseBody) -> Vec<(u64, String)> {
        let start = Instant::now();
        let mut frames = Vec::new();
        while let Some(frame) = next(&mut body).await {
            frames.push(((Instant::now() - start).as_secs(), frame));
        }
        assert!(body.is_end_stream());
        frames
    }

    fn text(frames: &[(u64, String)]) -> String {
        frames.iter().map(|(_, f)| f.as_str()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn events_become_frames_in_order_and_a_terminal_event_ends_the_body() {
        let (tx, rx) = broadcast::channel(16);
        let events = [started(), progress(10.0), progress(55.0), completed()];
        for e in &events {
            tx.send(e.clone()).unwrap();
        }
        let frames = collect(SseBody::new(id(), renderer(), rx)).await;

        let mut expected = renderer();
        let want: String = events.iter().map(|e| expected.event(e)).collect();
        let got = text(&frames);
        assert_eq!(got, want);
        assert_eq!(got.matches(DONE).count(), 1);
        assert!(got.ends_with(DONE));
        // One id for every chunk.
        let chunks: Vec<&str> = got.split("\n\n").filter(|c| c.starts_with("data: {")).collect();
        assert!(chunks.len() >= 4);
        let one_id = format!(r#""id":"chatcmpl-{}""#, id());
        assert!(chunks.iter().all(|c| c.contains(&one_id)), "{got}");
        // The sender is still alive, yet the body ended right after [DONE].
        assert!(frames.iter().all(|(t, _)| *t == 0));
        tx.send(progress(99.0)).unwrap_err();
    }

    #[tokio::test(start_paused = true)]
    async fn silence_of_40_s_sends_keep_alives_at_15_and_30_s() {
        let (tx, rx) = broadcast::channel(16);
        tx.send(started()).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(40)).await;
            tx.send(completed()).unwrap();
        });
        let frames = collect(SseBody::new(id(), renderer(), rx)).await;
        let keep_alives: Vec<u64> =
            frames.iter().filter(|(_, f)| f == KEEP_ALIVE).map(|(t, _)| *t).collect();
        assert_eq!(keep_alives, [15, 30]);
        assert_eq!(frames.first().map(|(t, _)| *t), Some(0));
        assert_eq!(frames.last().map(|(t, _)| *t), Some(40));
        assert!(frames.last().unwrap().1.ends_with(DONE));
    }

    #[tokio::test(start_paused = true)]
    async fn no_keep_alive_while_events_flow_faster_than_the_interval() {
        let (tx, rx) = broadcast::channel(16);
        tokio::spawn(async move {
            tx.send(started()).unwrap();
            for i in 1..=6u8 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                tx.send(progress(f32::from(i) * 10.0)).unwrap();
            }
            tokio::time::sleep(Duration::from_secs(14)).await;
            tx.send(completed()).unwrap();
        });
        let frames = collect(SseBody::new(id(), renderer(), rx)).await;
        assert!(frames.iter().all(|(_, f)| f != KEEP_ALIVE), "{frames:?}");
        assert_eq!(frames.last().map(|(t, _)| *t), Some(74));
    }

    #[tokio::test(start_paused = true)]
    async fn every_frame_resets_the_keep_alive_countdown() {
        let (tx, rx) = broadcast::channel(16);
        tokio::spawn(async move {
            tx.send(started()).unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            tx.send(progress(20.0)).unwrap();
            tokio::time::sleep(Duration::from_secs(25)).await;
            tx.send(completed()).unwrap();
        });
        let frames = collect(SseBody::new(id(), renderer(), rx)).await;
        let keep_alives: Vec<u64> =
            frames.iter().filter(|(_, f)| f == KEEP_ALIVE).map(|(t, _)| *t).collect();
        // Progress at 10 s: the next keep-alive is due at 25 s, not 15 s.
        assert_eq!(keep_alives, [25]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_keep_alive_interval_is_configurable() {
        let (tx, rx) = broadcast::channel(16);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(12)).await;
            tx.send(completed()).unwrap();
        });
        let body = SseBody::new(id(), renderer(), rx).with_keep_alive(Duration::from_secs(5));
        let frames = collect(body).await;
        let keep_alives: Vec<u64> =
            frames.iter().filter(|(_, f)| f == KEEP_ALIVE).map(|(t, _)| *t).collect();
        assert_eq!(keep_alives, [5, 10]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_stream_skips_progress_and_still_ends_with_the_terminal_event() {
        let (tx, rx) = broadcast::channel(2);
        tx.send(started()).unwrap();
        for i in 0..10u8 {
            tx.send(progress(f32::from(i) * 5.0)).unwrap();
        }
        tx.send(completed()).unwrap();
        let got = text(&collect(SseBody::new(id(), renderer(), rx)).await);
        assert_eq!(got.matches(DONE).count(), 1);
        assert!(got.ends_with(DONE));
        assert!(got.contains("https://x/1.mp4"), "{got}");
        assert!(!got.contains(STREAM_INTERRUPTED));
    }

    #[tokio::test(start_paused = true)]
    async fn a_channel_closed_without_a_terminal_event_ends_with_an_error_frame() {
        let (tx, rx) = broadcast::channel(16);
        tx.send(started()).unwrap();
        tx.send(progress(30.0)).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            drop(tx);
        });
        let frames = collect(SseBody::new(id(), renderer(), rx)).await;
        let (at, last) = frames.last().unwrap();
        assert_eq!(*at, 20);
        let error = last.strip_suffix(DONE).unwrap();
        assert!(error.starts_with(r#"data: {"error":{"#), "{error}");
        assert!(error.contains(&format!("GET /v1/tasks/{}", id())), "{error}");
        assert!(error.contains(r#""type":"server_error""#), "{error}");
        assert!(error.contains(STREAM_INTERRUPTED), "{error}");
        assert_eq!(text(&frames).matches(DONE).count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_asks_the_fallback_for_the_terminal_event() {
        let (tx, rx) = broadcast::channel(16);
        tx.send(started()).unwrap();
        drop(tx);
        let fallback: Fallback = Box::new(|| {
            Box::pin(async {
                // A slow lookup: keep-alives go on meanwhile.
                tokio::time::sleep(Duration::from_secs(16)).await;
                Ending::from_event(&completed())
            })
        });
        let frames = collect(SseBody::new(id(), renderer(), rx).with_fallback(fallback)).await;
        assert_eq!(frames.iter().filter(|(_, f)| f == KEEP_ALIVE).count(), 1);
        let got = text(&frames);
        assert!(got.contains("https://x/1.mp4"), "{got}");
        assert!(!got.contains(STREAM_INTERRUPTED));
        assert_eq!(got.matches(DONE).count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fallback_without_a_terminal_event_ends_with_the_error_frame() {
        for answer in [None, Ending::from_event(&progress(40.0))] {
            let (tx, rx) = broadcast::channel(16);
            drop(tx);
            let fallback: Fallback = Box::new(move || Box::pin(async move { answer }));
            let got =
                text(&collect(SseBody::new(id(), renderer(), rx).with_fallback(fallback)).await);
            assert!(got.contains(STREAM_INTERRUPTED), "{got}");
            assert_eq!(got.matches(DONE).count(), 1);
            assert!(got.ends_with(DONE));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_body_early_leaves_the_sender_usable() {
        let (tx, rx) = broadcast::channel(16);
        tx.send(started()).unwrap();
        let mut body = SseBody::new(id(), renderer(), rx);
        assert!(next(&mut body).await.unwrap().contains(r#""role":"assistant""#));
        assert_eq!(tx.receiver_count(), 1);
        drop(body);
        assert_eq!(tx.receiver_count(), 0);
        // No receivers: the send just reports it, the task carries on.
        assert!(tx.send(progress(50.0)).is_err());
        let late = tx.subscribe();
        tx.send(completed()).unwrap();
        drop(late);
    }

    #[test]
    fn headers_are_for_event_streams_and_carry_no_connection_header() {
        let headers = sse_headers();
        let pairs: Vec<(&str, &str)> =
            headers.iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(
            pairs,
            [
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
                ("x-accel-buffering", "no")
            ]
        );
    }
}
