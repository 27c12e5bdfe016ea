//! Who may call the server: bearer tokens and the protected `champion` alias.
//!
//! [`Access`] decides, for every request, who the caller is and whether it may do what it
//! asks ([`require_token`], a middleware over the MLflow API and Spire's segment API):
//!
//! - **Tokens configured** (any live token made by `spire tokens create`): every request
//!   but `GET /healthz` needs
//!   `Authorization: Bearer SECRET`. Reads need a `read` token or better; writes a `write`
//!   token or better. No token is `UNAUTHENTICATED` (401), a token of too small a role is
//!   `PERMISSION_DENIED` (403).
//! - **No token configured**: the server listens on loopback only (the CLI enforces that),
//!   and local callers may read and write without a token. A token that is sent must
//!   still be valid (`UNAUTHENTICATED` otherwise).
//!
//! Whichever the mode, the `champion` alias moves through the API only for an `admin`
//! token (or the admin token given to `spire serve`, which on its own opens nothing
//! else), so no MLflow client bypasses Spire's promotion gate.
//! Tokens are looked up by their SHA-256 on every request, so a revocation is immediate.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use spire_registry::{Registry, RegistryError, Role, TokenStore};

use crate::error::{ApiError, ErrorCode};

/// The alias only the promotion gate or an admin may move.
pub const PROTECTED_ALIAS: &str = "champion";

/// Who made a request (put in the request's extensions by [`require_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, `admin token`, or `local` for an unauthenticated loopback caller.
    pub name: String,
    /// What the caller may do.
    pub role: Role,
}

/// How the server checks callers.
#[derive(Clone)]
pub struct Access {
    registry: Option<Registry>,
    /// SHA-256 of the admin token given to `spire serve`, if any.
    admin_token_hash: Option<[u8; 32]>,
    /// Whether requests need a token.
    enforced: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("enforced", &self.enforced)
            .field("admin_token", &self.admin_token_hash.map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl Default for Access {
    fn default() -> Access {
        Access::open()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl Access {
    /// No tokens: every caller may read and write (for a loopback-only server), and nobody
    /// may move `champion` through the API.
    pub fn open() -> Access {
        Access {
            registry: None,
            admin_token_hash: None,
            enforced: false,
        }
    }

    /// Checks tokens against `registry`, plus the optional `admin_token`. Requests need a
    /// token when the registry holds a live token (checked now, at start).
    pub async fn from_registry(
        registry: Registry,
        admin_token: Option<&str>,
    ) -> Result<Access, RegistryError> {
        let admin_token_hash = admin_token.filter(|t| !t.is_empty()).map(digest);
        let enforced = registry.has_live_tokens().await?;
        Ok(Access {
            registry: Some(registry),
            admin_token_hash,
            enforced,
        })
    }

    /// Whether requests need a token (so the server may listen beyond loopback).
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    /// Whether an admin token was given.
    pub fn has_admin_token(&self) -> bool {
        self.admin_token_hash.is_some()
    }

    /// Who sent `headers`: the admin token, a live registry token, or (without a token,
    /// when tokens are not enforced) the local caller. A token that matches nothing is
    /// `UNAUTHENTICATED`, even when tokens are not enforced.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(secret) = bearer(headers) else {
            if self.enforced {
                return Err(ApiError::new(
                    ErrorCode::Unauthenticated,
                    "this server needs a token: send `Authorization: Bearer <token>` (make \
                     one with `spire tokens create NAME --role read|write`; MLflow clients \
                     read it from MLFLOW_TRACKING_TOKEN)",
                ));
            }
            return Ok(Caller {
                name: "local".into(),
                role: Role::Write,
            });
        };
        if let Some(expected) = self.admin_token_hash {
            let got = digest(secret);
            let same = got
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if same {
                return Ok(Caller {
                    name: "admin token".into(),
                    role: Role::Admin,
                });
            }
        }
        let found = match &self.registry {
            Some(registry) => registry.verify_token(secret).await?,
            None => None,
        };
        found
            .map(|t| Caller {
                name: t.name,
                role: t.role,
            })
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "the bearer token is unknown or revoked (see `spire tokens list`)",
                )
            })
    }
}

/// The role a request needs: reads (`GET`, `HEAD`, and the `POST` searches MLflow clients
/// send) need `read`; everything else `write`. `None`: no check (`/healthz`).
pub fn needed_role(method: &Method, path: &str) -> Option<Role> {
    if path == "/healthz" {
        return None;
    }
    let read = method == Method::GET
        || method == Method::HEAD
        || (method == Method::POST
            && (path.ends_with("/search") || path.ends_with("/get-latest-versions")));
    Some(if read { Role::Read } else { Role::Write })
}

/// Middleware: finds the caller ([`Access::caller`]), checks its role against
/// [`needed_role`], and hands the [`Caller`] to the handler as a request extension.
pub async fn require_token(State(access): State<Access>, mut req: Request, next: Next) -> Response {
    let Some(needed) = needed_role(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let caller = match access.caller(req.headers()).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    if !caller.role.allows(needed) {
        return ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "token {:?} has role {}; {} {} needs a {} token",
                caller.name,
                caller.role,
                req.method(),
                req.uri().path(),
                needed
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Checks that `caller` may move `alias` of `model` and names the actor for the audit log;
/// the protected alias needs an admin (`PERMISSION_DENIED`, 403, otherwise).
pub fn alias_actor(caller: &Caller, model: &str, alias: &str) -> Result<String, ApiError> {
    if alias.eq_ignore_ascii_case(PROTECTED_ALIAS) && !caller.role.allows(Role::Admin) {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "the '{PROTECTED_ALIAS}' alias of model '{model}' is protected: it moves \
                 through Spire's promotion gate (`spire models promote`), or through this API \
                 only with an admin token (`spire tokens create NAME --role admin`, or \
                 `spire serve --admin-token` / SPIRE_ADMIN_TOKEN)"
            ),
        ));
    }
    Ok(format!("mlflow-api ({})", caller.name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[tokio::test]
    async fn admin_token_callers_and_the_open_mode() {
        let registry = Registry::open("sqlite::memory:").await.unwrap();
        let access = Access::from_registry(registry.clone(), Some("s3cret"))
            .await
            .unwrap();
        assert!(
            !access.enforced(),
            "an admin token alone opens nothing else"
        );
        let admin = access.caller(&with_bearer("s3cret")).await.unwrap();
        assert_eq!(admin.role, Role::Admin);
        assert!(alias_actor(&admin, "m", "champion").is_ok());
        let err = access.caller(&with_bearer("wrong")).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthenticated);
        assert!(!format!("{access:?}").contains("s3cret"));

        let reader = registry.create_token("reader", Role::Read).await.unwrap();
        let access = Access::from_registry(registry, None).await.unwrap();
        assert!(access.enforced());
        let err = access.caller(&HeaderMap::new()).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthenticated);
        let caller = access.caller(&with_bearer(&reader.secret)).await.unwrap();
        assert_eq!((caller.name.as_str(), caller.role), ("reader", Role::Read));

        let open = Access::open();
        let local = open.caller(&HeaderMap::new()).await.unwrap();
        assert_eq!(local.role, Role::Write);
        let err = alias_actor(&local, "m", "Champion").unwrap_err();
        assert_eq!(err.code, ErrorCode::PermissionDenied);
        assert_eq!(
            alias_actor(&local, "m", "challenger").unwrap(),
            "mlflow-api (local)"
        );
        assert!(open.caller(&with_bearer("made-up")).await.is_err());
    }

    #[test]
    fn searches_are_reads() {
        let role = |m: Method, p: &str| needed_role(&m, p);
        assert_eq!(role(Method::GET, "/healthz"), None);
        assert_eq!(
            role(Method::GET, "/api/2.0/mlflow/runs/get"),
            Some(Role::Read)
        );
        assert_eq!(
            role(Method::POST, "/api/2.0/mlflow/runs/search"),
            Some(Role::Read)
        );
        assert_eq!(
            role(
                Method::POST,
                "/ajax-api/2.0/mlflow/registered-models/get-latest-versions"
            ),
            Some(Role::Read)
        );
        assert_eq!(
            role(Method::POST, "/api/2.0/mlflow/runs/log-metric"),
            Some(Role::Write)
        );
        assert_eq!(
            role(Method::PUT, "/api/2.0/mlflow-artifacts/artifacts/1/r/a.txt"),
            Some(Role::Write)
        );
        assert_eq!(role(Method::POST, "/v1/reload"), Some(Role::Write));
    }
}
