//! API tokens for `spire serve`: who may read and who may write.
//!
//! A token is a random secret (`spire_` and 40 hex digits, 160 random bits) shown once at
//! creation; the registry keeps only its SHA-256, so a leaked database leaks no usable
//! token. A plain hash suffices (no salt, no slow hash) because the secrets are random,
//! not chosen by people.

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::RegistryError;

/// What a token allows. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read endpoints only (segments, runs, models, artifacts).
    Read,
    /// Reads and writes (log runs, register versions, upload artifacts, move aliases other
    /// than `champion`).
    Write,
    /// Everything, including moving the protected `champion` alias.
    Admin,
}

impl Role {
    /// The role's name as stored and typed: `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Role, RegistryError> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(RegistryError::InvalidInput(format!(
                "unknown token role {other:?}: expected read, write or admin"
            ))),
        }
    }
}

/// A token as stored: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The token's id (32 hex digits).
    pub token_id: String,
    /// The name given at creation (unique among live tokens), e.g. `ad-server`.
    pub name: String,
    /// What it allows.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked (`None` while it works).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A freshly made token and its secret, which is not stored anywhere and cannot be shown
/// again.
#[derive(Clone)]
pub struct NewToken {
    /// The stored part.
    pub token: ApiToken,
    /// The secret to send as `Authorization: Bearer SECRET`.
    pub secret: String,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("token", &self.token)
            .field("secret", &"***")
            .finish()
    }
}

/// A new random secret: `spire_` and 40 lowercase hex digits.
pub(crate) fn new_secret() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let mut hex = a.simple().to_string();
    hex.push_str(&b.simple().to_string()[..8]);
    format!("spire_{hex}")
}

/// The stored form of a secret: its SHA-256 as 64 lowercase hex digits.
pub fn secret_digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// API tokens: made, checked, listed and revoked.
///
/// # Contract
///
/// - `create_token` stores the new token's SHA-256, never its secret, and returns the
///   secret once. A name already used by a live token is [`RegistryError::AlreadyExists`];
///   an empty, padded or over-long name is [`RegistryError::InvalidInput`].
/// - `verify_token` finds the live token whose secret was given; an unknown or revoked
///   secret is `Ok(None)` (no error says which of the two it was).
/// - `revoke_token` takes a token's name or id; it is immediate for every later
///   `verify_token` on any handle. An unknown or already revoked name is
///   [`RegistryError::NotFound`].
/// - `list_tokens` lists every token, live and revoked, oldest first.
/// - `has_live_tokens` says whether any token works (the server uses it to decide whether
///   it may listen beyond loopback).
pub trait TokenStore: Send + Sync {
    /// Makes a token named `name` with `role`.
    fn create_token(
        &self,
        name: &str,
        role: Role,
    ) -> impl Future<Output = Result<NewToken, RegistryError>> + Send;

    /// The live token whose secret is `secret`, if any.
    fn verify_token(
        &self,
        secret: &str,
    ) -> impl Future<Output = Result<Option<ApiToken>, RegistryError>> + Send;

    /// Every token, oldest first.
    fn list_tokens(&self) -> impl Future<Output = Result<Vec<ApiToken>, RegistryError>> + Send;

    /// Revokes the live token named (or with id) `name_or_id`; returns it as revoked.
    fn revoke_token(
        &self,
        name_or_id: &str,
    ) -> impl Future<Output = Result<ApiToken, RegistryError>> + Send;

    /// Whether any live token exists.
    fn has_live_tokens(&self) -> impl Future<Output = Result<bool, RegistryError>> + Send;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_are_random_and_digests_stable() {
        let a = new_secret();
        assert!(a.starts_with("spire_") && a.len() == 46, "{a}");
        assert_ne!(a, new_secret());
        assert_eq!(secret_digest("x"), secret_digest("x"));
        assert_eq!(secret_digest("x").len(), 64);
        assert_ne!(secret_digest("x"), secret_digest("y"));
    }

    #[test]
    fn roles_nest() {
        assert!(Role::Admin.allows(Role::Write) && Role::Write.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Write) && !Role::Write.allows(Role::Admin));
        for r in [Role::Read, Role::Write, Role::Admin] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("owner".parse::<Role>().is_err());
    }
}
