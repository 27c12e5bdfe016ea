//! Shared SQL: [`TokenStore`] for this backend's `Store` (compiled once per backend; see
//! `backend/mod.rs`). The contract is documented on the trait.

use super::Store;
use crate::backend::new_id;
use crate::check::{check_name, now_ms, to_time, to_time_opt};
use crate::error::{DbContext, RegistryError};
use crate::tokens::{new_secret, secret_digest, ApiToken, NewToken, Role, TokenStore};

/// An `api_tokens` row: id, name, role, created, revoked.
type TokenRow = (String, String, String, i64, Option<i64>);

const TOKEN_SELECT: &str = "SELECT token_id, name, role, created_at, revoked_at FROM api_tokens";

fn into_token(
    (token_id, name, role, created_at, revoked_at): TokenRow,
) -> Result<ApiToken, RegistryError> {
    let role: Role = role
        .parse()
        .map_err(|_| RegistryError::corrupt(format!("token {token_id}: unknown role {role:?}")))?;
    Ok(ApiToken {
        created_at: to_time(created_at, || format!("token {token_id} created_at"))?,
        revoked_at: to_time_opt(revoked_at, || format!("token {token_id} revoked_at"))?,
        token_id,
        name,
        role,
    })
}

impl TokenStore for Store {
    async fn create_token(&self, name: &str, role: Role) -> Result<NewToken, RegistryError> {
        check_name("token name", name)?;
        let ctx = || format!("creating token {name:?}");
        let secret = new_secret();
        let token_id = new_id();
        let mut tx = self.begin_write().await.db(ctx)?;
        let taken: Option<(String,)> = sqlx::query_as(
            "SELECT token_id FROM api_tokens WHERE name = $1 AND revoked_at IS NULL",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .db(ctx)?;
        if taken.is_some() {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::AlreadyExists {
                what: format!("token {name:?} (revoke it first, or pick another name)"),
            });
        }
        // Creation times strictly increase, so the list is in creation order also for
        // tokens made within one millisecond.
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(created_at) FROM api_tokens")
            .fetch_one(&mut *tx)
            .await
            .db(ctx)?;
        let now = last.map_or(now_ms(), |last| now_ms().max(last.saturating_add(1)));
        sqlx::query(
            "INSERT INTO api_tokens (token_id, name, role, secret_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token_id)
        .bind(name)
        .bind(role.as_str())
        .bind(secret_digest(&secret))
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)?;
        tracing::info!(token = name, role = %role, "created API token");
        Ok(NewToken {
            token: ApiToken {
                token_id,
                name: name.to_string(),
                role,
                created_at: to_time(now, || "now".into())?,
                revoked_at: None,
            },
            secret,
        })
    }

    async fn verify_token(&self, secret: &str) -> Result<Option<ApiToken>, RegistryError> {
        let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TOKEN_SELECT} WHERE secret_sha256 = $1 AND revoked_at IS NULL"
        )))
        .bind(secret_digest(secret))
        .fetch_optional(&self.pool)
        .await
        .db(|| "checking an API token".into())?;
        row.map(into_token).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, RegistryError> {
        let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TOKEN_SELECT} ORDER BY created_at, token_id"
        )))
        .fetch_all(&self.pool)
        .await
        .db(|| "listing API tokens".into())?;
        rows.into_iter().map(into_token).collect()
    }

    async fn revoke_token(&self, name_or_id: &str) -> Result<ApiToken, RegistryError> {
        let ctx = || format!("revoking token {name_or_id:?}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let row: Option<TokenRow> = sqlx::query_as(
            "UPDATE api_tokens SET revoked_at = $2 \
             WHERE (name = $1 OR token_id = $1) AND revoked_at IS NULL \
             RETURNING token_id, name, role, created_at, revoked_at",
        )
        .bind(name_or_id)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await
        .db(ctx)?;
        let Some(row) = row else {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::not_found(format!(
                "live token {name_or_id:?} (see `spire tokens list`)"
            )));
        };
        tx.commit().await.db(ctx)?;
        tracing::info!(token = name_or_id, "revoked API token");
        into_token(row)
    }

    async fn has_live_tokens(&self) -> Result<bool, RegistryError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL")
                .fetch_one(&self.pool)
                .await
                .db(|| "counting API tokens".into())?;
        Ok(n > 0)
    }
}
