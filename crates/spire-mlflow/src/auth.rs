//! Protection of the `champion` alias: through the MLflow API it moves only with the admin
//! token (`Authorization: Bearer TOKEN`), so no MLflow client can bypass Spire's promotion
//! gate. Every other alias is open.

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};

/// The alias only the promotion gate or an admin may move.
pub const PROTECTED_ALIAS: &str = "champion";

/// Who may move protected aliases.
#[derive(Clone, Default)]
pub struct AliasGuard {
    /// SHA-256 of the admin token; `None`: nobody may move `champion` through the API.
    admin_token_hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for AliasGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliasGuard")
            .field("admin_token", &self.admin_token_hash.map(|_| "***"))
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl AliasGuard {
    /// A guard accepting `admin_token` (an empty token counts as none).
    pub fn new(admin_token: Option<&str>) -> AliasGuard {
        AliasGuard {
            admin_token_hash: admin_token.filter(|t| !t.is_empty()).map(digest),
        }
    }

    /// Whether the request carries the admin token (compared by hash, in constant time).
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = self.admin_token_hash else {
            return false;
        };
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let got = digest(token.trim());
        got.iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Checks that the request may move `alias` of `model` and names the actor for the
    /// audit log; a protected alias without the admin token is `PERMISSION_DENIED` (403).
    pub fn alias_actor(
        &self,
        headers: &HeaderMap,
        model: &str,
        alias: &str,
    ) -> Result<String, ApiError> {
        let admin = self.is_admin(headers);
        if alias.eq_ignore_ascii_case(PROTECTED_ALIAS) && !admin {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "the '{PROTECTED_ALIAS}' alias of model '{model}' is protected: it moves \
                     through Spire's promotion gate (`spire models promote`), or through this \
                     API only with the admin token (Authorization: Bearer <token> matching \
                     `spire serve --admin-token` / SPIRE_ADMIN_TOKEN)"
                ),
            ));
        }
        Ok(if admin {
            "mlflow-api (admin token)".to_string()
        } else {
            "mlflow-api".to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn champion_needs_the_admin_token() {
        let guard = AliasGuard::new(Some("s3cret"));
        assert!(guard
            .alias_actor(&bearer("s3cret"), "m", "champion")
            .is_ok());
        for headers in [HeaderMap::new(), bearer("wrong")] {
            let err = guard.alias_actor(&headers, "m", "Champion").unwrap_err();
            assert_eq!(err.code, ErrorCode::PermissionDenied);
        }
        assert_eq!(
            guard
                .alias_actor(&HeaderMap::new(), "m", "challenger")
                .unwrap(),
            "mlflow-api"
        );
        let open = AliasGuard::new(None);
        assert!(open.alias_actor(&bearer(""), "m", "champion").is_err());
        assert!(!format!("{guard:?}").contains("s3cret"));
    }
}
