//! `db::serializable` against real Postgres: a real serialization failure (SQLSTATE 40001)
//! is run again, not handed to the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use platform_common::CommonError;
use platform_common::db::{self, DbError, Pool};
use platform_testing::infra;
use tokio::sync::Barrier;
use tokio_postgres::IsolationLevel;

/// A fresh database with one counter at 0.
async fn counter() -> (Pool, infra::Guard) {
    let (cfg, guard) = infra::postgres().await;
    let pool = db::pool(&cfg, 4);
    pool.get()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE counter (id INT8 PRIMARY KEY, n INT8 NOT NULL);
             INSERT INTO counter VALUES (1, 0);",
        )
        .await
        .unwrap();
    (pool, guard)
}

async fn count(pool: &Pool) -> i64 {
    let c = pool.get().await.unwrap();
    c.query_one("SELECT n FROM counter WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0)
}

/// Reads the counter and writes it back plus one: a lost update unless serialized. On its
/// first run the body waits at `barrier` between its read and its write, so the two bodies
/// racing here both read before either writes, and the second writer's update conflicts with
/// the committed first (Postgres: "could not serialize access due to concurrent update").
async fn increment(
    pool: Pool,
    barrier: Arc<Barrier>,
    runs: Arc<AtomicU32>,
) -> Result<(), CommonError> {
    let mut first = true;
    db::serializable(&pool, |tx| {
        let (barrier, wait) = (barrier.clone(), std::mem::take(&mut first));
        runs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let n: i64 = tx
                .query_one("SELECT n FROM counter WHERE id = 1", &[])
                .await
                .map_err(DbError::from)?
                .get(0);
            if wait {
                barrier.wait().await;
            }
            tx.execute("UPDATE counter SET n = $1 WHERE id = 1", &[&(n + 1)])
                .await
                .map_err(DbError::from)?;
            Ok(())
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialization_failure_is_run_again_and_both_writes_count() {
    let (pool, _g) = counter().await;
    let barrier = Arc::new(Barrier::new(2));
    let runs = Arc::new(AtomicU32::new(0));
    let (a, b) = tokio::join!(
        tokio::spawn(increment(pool.clone(), barrier.clone(), runs.clone())),
        tokio::spawn(increment(pool.clone(), barrier.clone(), runs.clone())),
    );
    a.unwrap().expect("first increment");
    b.unwrap().expect("second increment");
    assert_eq!(count(&pool).await, 2, "both increments are applied");
    assert!(
        runs.load(Ordering::SeqCst) > 2,
        "a body ran again after the conflict (runs: {})",
        runs.load(Ordering::SeqCst)
    );
}

/// The race above, in hand-written SERIALIZABLE transactions without a retry: one of them
/// fails with 40001, classified as retryable. (So the test above retries a real conflict.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_race_without_a_retry_fails_with_40001() {
    let (pool, _g) = counter().await;
    let barrier = Arc::new(Barrier::new(2));
    let once = |pool: Pool, barrier: Arc<Barrier>| async move {
        let mut c = pool.get().await.unwrap();
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::Serializable)
            .start()
            .await
            .unwrap();
        let n: i64 = tx
            .query_one("SELECT n FROM counter WHERE id = 1", &[])
            .await
            .unwrap()
            .get(0);
        barrier.wait().await;
        tx.execute("UPDATE counter SET n = $1 WHERE id = 1", &[&(n + 1)])
            .await?;
        tx.commit().await
    };
    let (a, b) = tokio::join!(
        tokio::spawn(once(pool.clone(), barrier.clone())),
        tokio::spawn(once(pool.clone(), barrier.clone())),
    );
    let mut results = [a.unwrap(), b.unwrap()];
    results.sort_by_key(Result::is_err);
    let [ok, failed] = results;
    ok.expect("the first writer commits");
    let e = DbError::from(failed.expect_err("the second writer conflicts"));
    assert!(
        matches!(&e, DbError::Retry(inner) if inner.code() == Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE)),
        "{e}"
    );
    assert_eq!(count(&pool).await, 1, "one increment was lost");
}
