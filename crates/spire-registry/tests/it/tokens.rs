//! Conformance: API tokens are stored hashed, checked, listed and revoked.

use spire_core::ErrorKind;
use spire_registry::tokens::secret_digest;
use spire_registry::{Registry, Role, TokenStore};
use sqlx::Connection;

use crate::TestDb;

crate::conformance!(
    tokens_verify_by_secret_and_revoke,
    token_names_and_roles_are_checked
);

pub async fn tokens_verify_by_secret_and_revoke(t: TestDb) {
    let reg = t.reg;
    assert!(!reg.has_live_tokens().await.unwrap());
    let writer = reg.create_token("ci", Role::Write).await.unwrap();
    let reader = reg.create_token("ad-server", Role::Read).await.unwrap();
    assert!(reg.has_live_tokens().await.unwrap());
    assert_ne!(writer.secret, reader.secret);

    let found = reg.verify_token(&writer.secret).await.unwrap().unwrap();
    assert_eq!((found.name.as_str(), found.role), ("ci", Role::Write));
    assert_eq!(found.token_id, writer.token.token_id);
    assert_eq!(
        reg.verify_token(&reader.secret)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Read
    );
    assert_eq!(reg.verify_token("spire_not-a-token").await.unwrap(), None);
    assert_eq!(reg.verify_token("").await.unwrap(), None);

    // Only the digest is stored: the secret appears nowhere in the database.
    let stored = stored_secrets(&t.url).await;
    assert_eq!(stored.len(), 2);
    assert!(stored.contains(&secret_digest(&writer.secret)));
    assert!(!stored.iter().any(|s| s.contains(&writer.secret[6..])));

    // Revocation is immediate, for another handle on the same database too.
    let other = Registry::open(&t.url).await.unwrap();
    let revoked = reg.revoke_token("ci").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(other.verify_token(&writer.secret).await.unwrap(), None);
    let err = reg.revoke_token("ci").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // By id as well as by name.
    reg.revoke_token(&reader.token.token_id).await.unwrap();
    assert!(!reg.has_live_tokens().await.unwrap());

    // A revoked name may be reused; the list keeps every token, oldest first.
    let again = reg.create_token("ci", Role::Admin).await.unwrap();
    let list = reg.list_tokens().await.unwrap();
    let names: Vec<(&str, Role, bool)> = list
        .iter()
        .map(|t| (t.name.as_str(), t.role, t.revoked_at.is_some()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("ci", Role::Write, true),
            ("ad-server", Role::Read, true),
            ("ci", Role::Admin, false)
        ]
    );
    assert_eq!(
        other
            .verify_token(&again.secret)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Admin
    );
    other.close().await;
}

pub async fn token_names_and_roles_are_checked(t: TestDb) {
    let reg = t.reg;
    reg.create_token("ci", Role::Write).await.unwrap();
    let err = reg.create_token("ci", Role::Read).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("\"ci\""), "{err}");
    for bad in ["", " padded", "line\nbreak"] {
        let err = reg.create_token(bad, Role::Read).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    assert_eq!(reg.list_tokens().await.unwrap().len(), 1);
}

async fn stored_secrets(url: &str) -> Vec<String> {
    let q = "SELECT secret_sha256 FROM api_tokens";
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(q).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(q).fetch_all(&mut c).await.unwrap()
    }
}
