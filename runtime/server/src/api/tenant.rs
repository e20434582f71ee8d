//! Tenants: both of Kestra's path styles reach the same routes. `/api/v1/{tenant}/...` (Kestra
//! 1.x) is rewritten to `/api/v1/...` before routing, with the tenant kept as a request
//! extension; `/api/v1/...` (Kestra 0.x) is the tenant `main`. A tenant is a storage-key prefix
//! (`tenants/{tenant}/`; `main` is the store's root), so one tenant's repositories never read
//! another's keys.

use axum::extract::{FromRequestParts, Request};
use axum::http::Uri;
use axum::http::request::Parts;
use weft_store::{DynStore, PrefixedStore};

use super::error::{ApiError, ApiResult};

/// The tenant of Kestra's open-source edition, and of paths without one.
pub(crate) const DEFAULT_TENANT: &str = "main";

/// First path segments after `/api/v1/` that are resources, never tenants.
const RESOURCES: &[&str] = &["flows", "executions", "logs", "triggers", "worker"];

/// The tenant a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tenant(pub(crate) String);

impl Tenant {
    /// The tenant's view of `store`; a tenant name that is not an id is refused.
    pub(crate) fn store(&self, store: &DynStore) -> ApiResult<DynStore> {
        if self.0 == DEFAULT_TENANT {
            return Ok(store.clone());
        }
        let valid = self
            .0
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && self.0.len() <= 64
            && self
                .0
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ApiError::bad_request(format!(
                "invalid tenant `{}`: a tenant is 1 to 64 letters, digits, `-` or `_`, starting with a letter or digit",
                self.0
            )));
        }
        // `/api/v1/{resource}/...` is never read as a tenant: such a tenant could not be reached
        if RESOURCES.contains(&self.0.as_str()) {
            return Err(ApiError::bad_request(format!(
                "invalid tenant `{}`: the name of an API resource ({}) cannot be a tenant",
                self.0,
                RESOURCES.join(", ")
            )));
        }
        let view = PrefixedStore::new(store.clone(), &format!("tenants/{}/", self.0))
            .map_err(|e| ApiError::bad_request(format!("invalid tenant `{}`: {e}", self.0)))?;
        Ok(std::sync::Arc::new(view))
    }
}

/// Moves the tenant of `/api/v1/{tenant}/...` into an extension and rewrites the path.
pub(crate) fn rewrite(mut req: Request) -> Request {
    let mut tenant = DEFAULT_TENANT.to_string();
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/api/v1/")
        && let Some((first, tail)) = rest.split_once('/')
        && !RESOURCES.contains(&first)
        && !tail.is_empty()
    {
        let new_path = match req.uri().query() {
            Some(q) => format!("/api/v1/{tail}?{q}"),
            None => format!("/api/v1/{tail}"),
        };
        tenant = first.to_string();
        if let Ok(uri) = Uri::builder().path_and_query(new_path).build() {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(Tenant(tenant));
    req
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Tenant>()
            .cloned()
            .unwrap_or_else(|| Tenant(DEFAULT_TENANT.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(path: &str) -> (String, String) {
        let req = Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let req = rewrite(req);
        let tenant = req.extensions().get::<Tenant>().unwrap().0.clone();
        (tenant, req.uri().to_string())
    }

    #[test]
    fn both_path_styles_reach_the_same_route() {
        assert_eq!(
            rewritten("/api/v1/flows/ns/id?source=true"),
            ("main".into(), "/api/v1/flows/ns/id?source=true".into())
        );
        assert_eq!(
            rewritten("/api/v1/acme/flows/ns/id?source=true"),
            ("acme".into(), "/api/v1/flows/ns/id?source=true".into())
        );
        assert_eq!(
            rewritten("/api/v1/executions/webhook/ns/f/k"),
            ("main".into(), "/api/v1/executions/webhook/ns/f/k".into())
        );
        assert_eq!(
            rewritten("/api/v1/main/executions/abc"),
            ("main".into(), "/api/v1/executions/abc".into())
        );
        assert_eq!(
            rewritten("/api/v1/worker/attempts"),
            ("main".into(), "/api/v1/worker/attempts".into())
        );
        assert_eq!(
            rewritten("/api/v1/acme/worker/attempts"),
            ("acme".into(), "/api/v1/worker/attempts".into())
        );
        assert_eq!(rewritten("/health"), ("main".into(), "/health".into()));
    }

    #[test]
    fn a_bad_tenant_name_is_refused() {
        let store: DynStore = std::sync::Arc::new(weft_store::MemoryStore::new());
        assert!(Tenant("..".into()).store(&store).is_err());
        assert!(Tenant("a.b".into()).store(&store).is_err());
        assert!(Tenant("acme".into()).store(&store).is_ok());
    }
}
