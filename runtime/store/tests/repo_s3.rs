//! The execution repository's read-modify-write race on a real S3 server (moto started here, or
//! `WEFT_TEST_S3_ENDPOINT`): 8 tasks x 50 concurrent `update` increments end with the exact total.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weft_store::DynStore;
use weft_store::repo::{ExecutionRepo, RetryPolicy};
use weft_store::testing::TestS3;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Doc {
    n: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_execution_update_race_8x50() {
    let s3 = tokio::task::spawn_blocking(TestS3::start)
        .await
        .unwrap()
        .unwrap();
    let bucket = Arc::new(s3.bucket("repo-race").await.unwrap());
    let store: DynStore = bucket.clone();
    let repo: ExecutionRepo<Doc> = ExecutionRepo::new(store.clone()).with_retry(RetryPolicy {
        max_attempts: 10_000,
        ..RetryPolicy::default()
    });
    repo.create("race", &mut Doc { n: 0 }).await.unwrap();

    // one update without a race: exactly one GET and one conditional PUT
    let before = store.stats().snapshot();
    repo.update("race", |d| {
        d.n += 1;
        Ok::<_, String>(())
    })
    .await
    .unwrap();
    let cost = store.stats().snapshot().since(&before);
    assert_eq!((cost.get, cost.put, cost.total()), (1, 1, 2), "{cost:?}");

    let mut handles = Vec::new();
    for _ in 0..8 {
        let repo = repo.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..50 {
                repo.update("race", |d| {
                    d.n += 1;
                    Ok::<_, String>(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(repo.get("race").await.unwrap().value.n, 401);
    if !s3.is_moto() {
        s3.remove_bucket(&bucket).await.unwrap();
    }
    tokio::task::spawn_blocking(move || drop(s3)).await.unwrap();
}
