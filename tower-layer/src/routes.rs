//! The client API's route table (client-api.md "Endpoints"), below the layer's path prefix.

use http::Method;

use sora2api_core::translate::Endpoint;
use sora2api_core::Error;

/// A client API route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /v1/models`.
    Models,
    /// `GET /v1/tasks/{task_id}`, with the id as sent (not yet validated).
    Task(String),
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST` to a dedicated generation endpoint.
    Generate(Endpoint),
}

/// The path every client route starts with (below the prefix); everything under it is ours.
pub(crate) const API_ROOT: &str = "/v1";

/// The route for `method` and `path` (below the prefix, starting with [`API_ROOT`]):
/// [`Error::RouteNotFound`] for an unknown path, [`Error::MethodNotAllowed`] (with the
/// `Allow` value) for a known path with another method.
pub(crate) fn route(method: &Method, path: &str) -> Result<Route, Error> {
    let not_found = || Error::RouteNotFound { method: method.to_string(), path: shorten(path) };
    let (route, allowed) = match path {
        "/v1/models" => (Route::Models, Method::GET),
        "/v1/chat/completions" => (Route::Chat, Method::POST),
        _ => match (path.strip_prefix("/v1/tasks/"), Endpoint::from_path(path)) {
            (_, Some(endpoint)) => (Route::Generate(endpoint), Method::POST),
            (Some(id), None) if !id.is_empty() && !id.contains('/') => {
                (Route::Task(id.to_owned()), Method::GET)
            }
            _ => return Err(not_found()),
        },
    };
    if *method != allowed {
        let allowed = if allowed == Method::GET { "GET" } else { "POST" };
        return Err(Error::MethodNotAllowed { method: shorten(method.as_str()), allowed });
    }
    Ok(route)
}

/// A path or method as echoed in an error message: at most 200 characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(route(&Method::GET, "/v1/models"), Ok(Route::Models));
        assert_eq!(route(&Method::POST, "/v1/chat/completions"), Ok(Route::Chat));
        assert_eq!(route(&Method::GET, "/v1/tasks/task_x"), Ok(Route::Task("task_x".into())));
        for endpoint in Endpoint::ALL {
            assert_eq!(route(&Method::POST, endpoint.path()), Ok(Route::Generate(endpoint)));
            let err = route(&Method::GET, endpoint.path()).unwrap_err();
            assert_eq!((err.status(), err.allow_header()), (405, Some("POST")));
        }
        let err = route(&Method::POST, "/v1/models").unwrap_err();
        assert_eq!((err.status(), err.allow_header()), (405, Some("GET")));
        for unknown in ["/v1/", "/v1/tasks/", "/v1/tasks/a/b", "/v1/models/", "/v1/images"] {
            assert_eq!(route(&Method::GET, unknown).unwrap_err().status(), 404, "{unknown}");
        }
        let long = format!("/v1/{}", "a".repeat(5000));
        let msg = route(&Method::GET, &long).unwrap_err().message();
        assert!(msg.len() < 300, "{}", msg.len());
    }
}
