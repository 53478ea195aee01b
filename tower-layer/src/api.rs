//! The client API (client-api.md): what the service does with a request it owns.
//!
//! Order of checks: the API key (so an unknown path tells a prober nothing), the route and
//! method, then for generations the content type, the body (size and time limits), the
//! translation into one canonical request, and the task store. Then the answer depends on
//! the mode:
//!
//! | mode | answer |
//! |---|---|
//! | `async_mode: true` | `200` with the acknowledgement, at once |
//! | `stream: true` | `200` SSE: progress as `reasoning_content`, the result as `content`, `[DONE]` |
//! | neither | waits for the end: `200` `chat.completion`; a failure's own status and envelope; after the wait limit `202` with the acknowledgement (decisions 1) |
//!
//! Every generation answer carries the task id in `X-Task-Id`. A client that goes away stops
//! nothing: the response future or body is dropped, the task runs on (decisions 2).

use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{HeaderName, Request, Response, StatusCode};
use http_body::Body;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use sora2api_core::record::{Ending, TaskRecord};
use sora2api_core::render::{
    async_ack, chat_completion, final_content, models_json, task_json, StreamRenderer,
};
use sora2api_core::request::ResponseMode;
use sora2api_core::task::{Event, TaskId};
use sora2api_core::translate;
use sora2api_core::Error;

use crate::body::OwnedBody;
use crate::error::{error_response, json_response, stored_error_response};
use crate::extract;
use crate::layer::Shared;
use crate::routes::{self, Route};
use crate::sse::{sse_headers, SseBody};
use crate::Engine;

/// The header that names a generation's task.
pub const TASK_ID_HEADER: HeaderName = HeaderName::from_static("x-task-id");

/// Answers one client API request (`path` is below the layer's prefix).
pub(crate) async fn handle<B>(
    shared: Arc<Shared>,
    path: String,
    req: Request<B>,
) -> Response<OwnedBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %path,
        task_id = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    async move {
        let response = match answer(&shared, &path, req).await {
            Ok(response) => response,
            Err(err) => error_response(&err).map(OwnedBody::Full),
        };
        tracing::Span::current().record("status", response.status().as_u16());
        tracing::debug!("answered");
        response
    }
    .instrument(span)
    .await
}

async fn answer<B>(
    shared: &Shared,
    path: &str,
    req: Request<B>,
) -> Result<Response<OwnedBody>, Error>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let authorized = shared.keys.is_none()
        || extract::bearer(req.headers(), false)
            .is_some_and(|key| shared.keys.as_ref().is_some_and(|keys| keys.check(key)));
    if !authorized {
        return Err(Error::Unauthenticated);
    }
    let full = |r: Response<Bytes>| r.map(OwnedBody::Full);
    match routes::route(req.method(), path)? {
        Route::Models => Ok(full(json_response(200, models_json()))),
        Route::Task(id) => {
            let id = TaskId::parse(&id)?;
            match shared.engine.get(&id).await? {
                Some(record) => Ok(full(json_response(200, task_json(&record.view())))),
                None => Err(Error::TaskNotFound { task_id: id.as_str().to_owned() }),
            }
        }
        Route::Chat => {
            let body = read_json(shared, req).await?;
            let call = translate::chat(&body, &shared.media_limits)?;
            drop(body);
            generate(shared, call).await
        }
        Route::Generate(endpoint) => {
            let body = read_json(shared, req).await?;
            let call = translate::dedicated(endpoint, &body, &shared.media_limits)?;
            drop(body);
            generate(shared, call).await
        }
    }
}

/// The body of a JSON request, within the layer's limits.
async fn read_json<B>(shared: &Shared, req: Request<B>) -> Result<Bytes, Error>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if !extract::is_json(req.headers()) {
        return Err(Error::UnsupportedMediaType);
    }
    let (parts, body) = req.into_parts();
    extract::collect(&parts.headers, body, shared.max_body_bytes, shared.body_timeout).await
}

/// Accepts the task and answers as its mode says.
async fn generate(
    shared: &Shared,
    call: sora2api_core::request::ClientCall,
) -> Result<Response<OwnedBody>, Error> {
    let submitted = shared.engine.submit(call).await?;
    let record = submitted.record;
    tracing::Span::current().record("task_id", tracing::field::display(&record.id));
    let mut response = match record.mode {
        ResponseMode::Async => ack(&record, StatusCode::OK),
        ResponseMode::Stream => {
            let renderer = StreamRenderer::new(&record.id, created_s(&record), &record.model);
            let engine = shared.engine.clone();
            let id = record.id.clone();
            let body = SseBody::new(record.id.clone(), renderer, submitted.events)
                .with_keep_alive(shared.keep_alive)
                .with_fallback(Box::new(move || {
                    Box::pin(async move { ending(&engine, &id).await })
                }));
            let mut response = Response::new(OwnedBody::Sse(body));
            response.headers_mut().extend(sse_headers());
            response
        }
        ResponseMode::Blocking => {
            let mut events = submitted.events;
            // What the stored ending drops: when to retry (a 503 for no tokens needs it).
            let mut retry_after = None;
            let wait = async {
                loop {
                    match events.recv().await {
                        Ok(event) => {
                            if let Event::Failed(err) = &event {
                                retry_after = err.retry_after_secs();
                            }
                            if let Some(ending) = Ending::from_event(&event) {
                                return Some(ending);
                            }
                        }
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return ending(&shared.engine, &record.id).await,
                    }
                }
            };
            match tokio::time::timeout(shared.blocking_wait, wait).await {
                Ok(Some(ending)) => match ending.into_result() {
                    Ok(result) => {
                        let body = chat_completion(
                            &record.id,
                            created_s(&record),
                            &record.model,
                            &final_content(&result),
                        );
                        json_response(200, body).map(OwnedBody::Full)
                    }
                    Err(err) => stored_error_response(&err, retry_after).map(OwnedBody::Full),
                },
                // The wait limit, or the engine stopped before the end: the task is durable
                // and continues (here or after a restart); the client polls it.
                Ok(None) | Err(_) => ack(&record, StatusCode::ACCEPTED),
            }
        }
    };
    if let Ok(value) = HeaderValue::from_str(record.id.as_str()) {
        response.headers_mut().insert(TASK_ID_HEADER, value);
    }
    Ok(response)
}

/// The acknowledgement body with `status` (200 for async mode, 202 after a blocking wait).
fn ack(record: &TaskRecord, status: StatusCode) -> Response<OwnedBody> {
    json_response(status.as_u16(), async_ack(&record.id, record.kind)).map(OwnedBody::Full)
}

/// The chat completion's `created`: when the task was accepted, unix seconds.
fn created_s(record: &TaskRecord) -> u64 {
    record.created_at_ms / 1000
}

/// How task `id` ended, from the engine's memory or the store.
async fn ending(engine: &Engine, id: &TaskId) -> Option<Ending> {
    engine.get(id).await.ok().flatten().and_then(|record| record.ending())
}
