//! PostgreSQL-only behaviour: connection errors and concurrent first opens.

use spire_core::ErrorKind;
use spire_registry::{Backend, Registry, TrackingStore};
use sqlx::Connection;

use crate::{new_run, PgTestDb};

#[tokio::test]
async fn unreachable_server_is_unavailable_and_named() {
    // Port 1 on the loopback interface: nothing listens there.
    let err = Registry::open("postgres://spire:s3cret@127.0.0.1:1/spire")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("postgres://spire:***@127.0.0.1:1/spire"),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[tokio::test]
async fn missing_database_is_named() {
    let mut url = url::Url::parse(&crate::postgres_admin_url()).unwrap();
    url.set_path("spire_no_such_database");
    let err = Registry::open(url.as_str()).await.unwrap_err();
    let msg = format!("{err:#?}");
    assert!(msg.contains("spire_no_such_database"), "{msg}");
}

/// Four handles opened at once on a fresh database all succeed; the schema is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_opens_migrate_once() {
    let db = PgTestDb::create().await;
    let mut opens = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        opens.push(tokio::spawn(async move { Registry::open(&url).await }));
    }
    let mut handles = Vec::new();
    for open in opens {
        handles.push(open.await.unwrap().unwrap());
    }
    assert!(handles.iter().all(|h| h.backend() == Backend::Postgres));
    let id = handles[0].create_run(new_run("sports")).await.unwrap();
    assert_eq!(handles[3].get_run(&id).await.unwrap().segment, "sports");

    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, vec![1, 2, 3, 4, 5]);
    conn.close().await.unwrap();
    for handle in handles {
        handle.close().await;
    }
    db.drop().await;
}
