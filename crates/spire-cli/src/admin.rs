//! Server administration: `spire serve`, `spire tokens ...` and `spire gc`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde_json::json;
use spire_pipeline::{PipelineError, Result, Workspace};
use spire_registry::{gc, Role, TokenStore};
use spire_server::{Access, AppState, MlflowState};

use crate::cli::{Cli, TokensCommand};
use crate::output::{self, table};

/// Where the server may listen: `asked` when tokens are enforced or it is loopback already,
/// else the loopback address of the same family and port.
pub fn listen_addr(asked: SocketAddr, tokens_enforced: bool) -> SocketAddr {
    if tokens_enforced || asked.ip().is_loopback() {
        return asked;
    }
    let loopback = match asked.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(loopback, asked.port())
}

/// `spire serve`: the segment API and the MLflow API, with token checks.
pub async fn serve(ws: Workspace, asked: SocketAddr, admin_token: Option<&str>) -> Result<()> {
    let state = AppState::load(ws.lake.clone()).await?;
    let access = Access::from_registry(ws.registry.clone(), admin_token).await?;
    let addr = listen_addr(asked, access.enforced());
    if addr != asked {
        eprintln!(
            "no API token exists, so Spire listens on {addr} only (asked for {asked}): \
             create one with `spire tokens create NAME --role write` to serve other hosts; \
             every request will then need a token"
        );
    }
    let mlflow =
        MlflowState::new(ws.registry.clone(), ws.artifacts.clone()).with_access(access.clone());
    eprintln!("serving segments on http://{addr} (GET /v1/users/{{user_id}}/segments, /v1/segments, /healthz)");
    eprintln!(
        "serving the MLflow tracking API on http://{addr} (MLFLOW_TRACKING_URI=http://{addr}); artifacts in {}",
        ws.artifacts.root_url()
    );
    eprintln!(
        "tokens: {}; champion alias: {}",
        if access.enforced() {
            "required for every request but /healthz (read tokens read, write tokens write)"
        } else {
            "not required (loopback only)"
        },
        if access.has_admin_token() {
            "movable with an admin token (including --admin-token)"
        } else {
            "movable with an admin token (`spire tokens create NAME --role admin`)"
        }
    );
    spire_server::serve(addr, state, access, Some(mlflow))
        .await
        .map_err(|e| PipelineError::io(addr.to_string(), e))
}

/// `spire tokens create|list|revoke`.
pub async fn tokens(cli: &Cli, ws: &Workspace, command: &TokensCommand) -> Result<()> {
    match command {
        TokensCommand::Create { name, role } => {
            let role: Role = role.parse()?;
            let made = ws.registry.create_token(name, role).await?;
            if cli.json {
                output::json(&json!({
                    "token_id": made.token.token_id,
                    "name": made.token.name,
                    "role": made.token.role.as_str(),
                    "secret": made.secret,
                }));
            } else {
                println!("{}", made.secret);
                eprintln!(
                    "created {role} token {name:?} ({}). The secret above is shown only now: \
                     send it as `Authorization: Bearer <secret>` (MLflow clients: \
                     MLFLOW_TRACKING_TOKEN).",
                    made.token.token_id
                );
            }
        }
        TokensCommand::List => {
            let list = ws.registry.list_tokens().await?;
            if cli.json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|t| {
                        json!({
                            "token_id": t.token_id, "name": t.name, "role": t.role.as_str(),
                            "created_at": t.created_at, "revoked_at": t.revoked_at,
                        })
                    })
                    .collect();
                output::json(&rows);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.role.to_string(),
                            t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                            t.revoked_at.map_or("live".into(), |r| {
                                format!("revoked {}", r.format("%Y-%m-%d %H:%M"))
                            }),
                            t.token_id.clone(),
                        ]
                    })
                    .collect();
                table(&["name", "role", "created", "state", "id"], &rows);
            }
        }
        TokensCommand::Revoke { token } => {
            let revoked = ws.registry.revoke_token(token).await?;
            if cli.json {
                output::json(&json!({"revoked": revoked.name, "token_id": revoked.token_id}));
            } else {
                println!("revoked token {:?} ({})", revoked.name, revoked.token_id);
            }
        }
    }
    Ok(())
}

/// The value of an `--older-than` flag (`30d`, `12h`, `0s`).
pub fn parse_older_than(older_than: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(older_than).map_err(|e| {
        PipelineError::InvalidInput(format!(
            "--older-than {older_than:?} is not a duration ({e}); write e.g. 30d, 12h or 0s"
        ))
    })
}

/// `spire gc`: removes runs deleted at least `older_than` ago, artifacts first.
pub async fn gc(cli: &Cli, ws: &Workspace, older_than: &str, dry_run: bool) -> Result<()> {
    let age = chrono::Duration::from_std(parse_older_than(older_than)?).map_err(|_| {
        PipelineError::InvalidInput(format!("--older-than {older_than:?} is too long"))
    })?;
    let before = chrono::Utc::now() - age;
    let report = gc::collect(&ws.registry, &ws.artifacts, before, dry_run).await?;
    if cli.json {
        output::json(&report);
        return Ok(());
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for p in &report.purged {
        println!(
            "{verb} run {} ({} artifact files in {})",
            p.run_id, p.files_deleted, p.artifacts
        );
    }
    for k in &report.kept {
        println!("kept run {}: {}", k.run_id, k.reason);
    }
    println!(
        "{} {} deleted runs, kept {}",
        verb,
        report.purged.len(),
        report.kept.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn without_tokens_the_server_stays_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(listen_addr(any, false), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(listen_addr(any, true), any);
        let v6: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(listen_addr(v6, false), "[::1]:9000".parse().unwrap());
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(listen_addr(lo, false), lo);
    }
}
