//! Authentication of the API, when configured: a bearer token, HTTP basic auth, or either.
//! Webhooks are not behind it: they authenticate by their key.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::App;
use super::error::ApiError;

/// Whether `given` equals `expected`, in time that does not depend on where they differ.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}

/// The credentials an `Authorization` header carries.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    Bearer(String),
    /// The decoded `user:password`.
    Basic(Vec<u8>),
    /// A scheme weft does not take, or a malformed value.
    Unusable,
}

fn credentials(header: &str) -> Credentials {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Credentials::Bearer(rest.to_string())
    } else if scheme.eq_ignore_ascii_case("basic") {
        base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_or(Credentials::Unusable, Credentials::Basic)
    } else {
        Credentials::Unusable
    }
}

/// Refuses a request without valid credentials for what is configured (401).
pub(crate) async fn require_token(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Response {
    if app.auth_token.is_none() && app.basic_auth.is_none() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(credentials);
    let valid = match (&given, &app.auth_token, &app.basic_auth) {
        (Some(Credentials::Bearer(t)), Some(expected), _) => {
            same_secret(t.as_bytes(), expected.as_bytes())
        }
        (Some(Credentials::Basic(pair)), _, Some(expected)) => {
            same_secret(pair, expected.as_bytes())
        }
        _ => false,
    };
    if valid {
        return next.run(req).await;
    }
    let schemes = match (&app.auth_token, &app.basic_auth) {
        (Some(_), Some(_)) => "`Authorization: Bearer <token>` or HTTP basic auth",
        (Some(_), None) => "`Authorization: Bearer <token>` (the server's WEFT_AUTH_TOKEN)",
        _ => "HTTP basic auth (the server's WEFT_BASIC_AUTH user and password)",
    };
    match given {
        None => unauthorized(&app, &format!("authentication required: send {schemes}")),
        Some(_) => unauthorized(
            &app,
            &format!("the credentials are not valid: send {schemes}"),
        ),
    }
}

fn unauthorized(app: &App, message: &str) -> Response {
    let mut resp = ApiError::unauthorized(message).into_response();
    let challenge = if app.auth_token.is_some() {
        "Bearer realm=\"weft\""
    } else {
        "Basic realm=\"weft\""
    };
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static(challenge),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_whole_secrets() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }

    #[test]
    fn reads_bearer_and_basic_headers() {
        assert_eq!(credentials("Bearer abc"), Credentials::Bearer("abc".into()));
        assert_eq!(
            credentials("bearer  abc "),
            Credentials::Bearer("abc".into())
        );
        // "ada:s3cret"
        assert_eq!(
            credentials("Basic YWRhOnMzY3JldA=="),
            Credentials::Basic(b"ada:s3cret".to_vec())
        );
        assert_eq!(credentials("Basic not-base64!"), Credentials::Unusable);
        assert_eq!(credentials("Digest x"), Credentials::Unusable);
    }
}
