//! The admin route table: path -> [`Route`], the methods each route takes, and the action
//! name logs carry (never an id that is a secret: ids here are token numbers, key
//! fingerprints and task ids).

use http::Method;
use sora2api_core::pool::TokenId;

use super::settings::View;

/// One admin route, with what its path carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// `POST /login`.
    Login,
    /// `POST /logout`.
    Logout,
    /// `POST /admin/password`.
    Password,
    /// `GET, POST /tokens`.
    Tokens,
    /// `POST /tokens/import`.
    Import,
    /// `PUT, DELETE /tokens/{id}`.
    Token(TokenId),
    /// `POST /tokens/{id}/enable`.
    Enable(TokenId),
    /// `POST /tokens/{id}/disable`.
    Disable(TokenId),
    /// `POST /tokens/{id}/test`.
    Test(TokenId),
    /// `POST /tokens/{id}/refresh`.
    Refresh(TokenId),
    /// `PUT /tokens/{id}/status` (the original's `{is_active}` switch).
    Status(TokenId),
    /// `GET, POST /admin/apikeys`.
    ApiKeys,
    /// `DELETE /admin/apikeys/{fingerprint}`.
    ApiKey(String),
    /// `POST /admin/apikeys/delete`.
    ApiKeysDelete,
    /// `POST /admin/apikey` (the original's replace-all).
    ApiKeyReplace,
    /// `GET, POST` on a settings route.
    Settings(View),
    /// `GET /stats`.
    Stats,
    /// `POST /tasks/{task_id}/cancel`.
    Cancel(String),
}

impl Route {
    /// The route of a path relative to the admin prefix (one trailing `/` is ignored).
    pub(super) fn resolve(path: &str) -> Option<Route> {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let id = |s: &str| s.parse::<u64>().ok().map(TokenId);
        Some(match segments.as_slice() {
            ["login"] => Route::Login,
            ["logout"] => Route::Logout,
            ["stats"] => Route::Stats,
            ["tokens"] => Route::Tokens,
            ["tokens", "import"] => Route::Import,
            ["tokens", n] => Route::Token(id(n)?),
            ["tokens", n, "enable"] => Route::Enable(id(n)?),
            ["tokens", n, "disable"] => Route::Disable(id(n)?),
            ["tokens", n, "test"] => Route::Test(id(n)?),
            ["tokens", n, "refresh"] => Route::Refresh(id(n)?),
            ["tokens", n, "status"] => Route::Status(id(n)?),
            ["admin", "password"] => Route::Password,
            ["admin", "config"] => Route::Settings(View::Admin),
            ["admin", "apikey"] => Route::ApiKeyReplace,
            ["admin", "apikeys"] => Route::ApiKeys,
            ["admin", "apikeys", "delete"] => Route::ApiKeysDelete,
            ["admin", "apikeys", fingerprint] if !fingerprint.is_empty() => {
                Route::ApiKey((*fingerprint).to_owned())
            }
            ["proxy", "config"] => Route::Settings(View::Proxy),
            ["generation", "timeout"] => Route::Settings(View::Timeout),
            ["call-logic", "config"] => Route::Settings(View::CallLogic),
            ["pow", "config"] => Route::Settings(View::Pow),
            ["tasks", task, "cancel"] if !task.is_empty() => Route::Cancel((*task).to_owned()),
            _ => return None,
        })
    }

    /// The methods the route takes, for `Allow`.
    pub(super) fn allowed(&self) -> &'static str {
        match self {
            Route::Tokens | Route::ApiKeys | Route::Settings(_) => "GET, POST",
            Route::Token(_) => "PUT, DELETE",
            Route::Status(_) => "PUT",
            Route::ApiKey(_) => "DELETE",
            Route::Stats => "GET",
            _ => "POST",
        }
    }

    /// Whether the route takes `method`.
    pub(super) fn allows(&self, method: &Method) -> bool {
        self.allowed().split(", ").any(|m| m == method.as_str())
    }

    /// What the request does, for the log (`token.enable id=3`-like: a name and the token id
    /// where there is one).
    pub(super) fn action(&self, method: &Method) -> String {
        let get = *method == Method::GET;
        match self {
            Route::Login => "login".into(),
            Route::Logout => "logout".into(),
            Route::Password => "password.change".into(),
            Route::Tokens if get => "tokens.list".into(),
            Route::Tokens => "token.add".into(),
            Route::Import => "tokens.import".into(),
            Route::Token(id) if *method == Method::DELETE => format!("token.delete id={id}"),
            Route::Token(id) => format!("token.update id={id}"),
            Route::Enable(id) => format!("token.enable id={id}"),
            Route::Disable(id) => format!("token.disable id={id}"),
            Route::Test(id) => format!("token.test id={id}"),
            Route::Refresh(id) => format!("token.refresh id={id}"),
            Route::Status(id) => format!("token.status id={id}"),
            Route::ApiKeys if get => "apikeys.list".into(),
            Route::ApiKeys => "apikeys.add".into(),
            Route::ApiKey(_) | Route::ApiKeysDelete => "apikeys.remove".into(),
            Route::ApiKeyReplace => "apikeys.replace".into(),
            Route::Settings(view) if get => format!("settings.show {view:?}"),
            Route::Settings(view) => format!("settings.change {view:?}"),
            Route::Stats => "stats".into(),
            Route::Cancel(task) => format!("task.cancel {task}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(Route::resolve("/login"), Some(Route::Login));
        assert_eq!(Route::resolve("/tokens/"), Some(Route::Tokens));
        assert_eq!(Route::resolve("/tokens/3/enable"), Some(Route::Enable(TokenId(3))));
        assert_eq!(Route::resolve("/tokens/import"), Some(Route::Import));
        assert_eq!(Route::resolve("/tokens/x/enable"), None);
        assert_eq!(Route::resolve("/admin/apikeys/delete"), Some(Route::ApiKeysDelete));
        assert_eq!(
            Route::resolve("/admin/apikeys/0a1b2c3d"),
            Some(Route::ApiKey("0a1b2c3d".into()))
        );
        assert_eq!(Route::resolve("/pow/config"), Some(Route::Settings(View::Pow)));
        assert_eq!(Route::resolve("/tasks/task_x/cancel"), Some(Route::Cancel("task_x".into())));
        for unknown in ["", "/", "login", "/nope", "/tokens/1/2/3", "//login", "/tasks//cancel"] {
            assert_eq!(Route::resolve(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn methods() {
        assert!(Route::Tokens.allows(&Method::GET) && Route::Tokens.allows(&Method::POST));
        assert!(!Route::Tokens.allows(&Method::DELETE));
        assert!(Route::Token(TokenId(1)).allows(&Method::PUT));
        assert!(Route::Status(TokenId(1)).allows(&Method::PUT));
        assert!(!Route::Stats.allows(&Method::POST));
        assert_eq!(Route::Login.allowed(), "POST");
    }
}
