//! Rollup maintenance off the write path (migration 0011): the comment triggers append each comment's
//! deltas to `rollup_log` in the writer's transaction, and folding sums the log into the rollups in large
//! sorted batches, one folder at a time (a Postgres advisory lock), deleting what it folded in the same
//! transaction. Every rollup read folds what is pending first, so answers equal the raw rows at every moment;
//! a [`RollupFolder`] beside the writers keeps the log short so that reads rarely have to.

use std::time::Duration;

use crate::{Postgres, StoreError};

/// Deltas folded per transaction: large enough that rows many comments share (every comment's `all` rows,
/// a popular tag's) are written once per fold, small enough that a read waiting for a fold in flight (it
/// must, to count every committed comment) waits briefly.
const FOLD_BATCH: i32 = 5_000;

impl Postgres {
    /// Folds every delta logged (and committed) before the call into the rollups; returns how many.
    pub async fn fold_rollups(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let folded: i32 =
                sqlx::query_scalar("SELECT fold_rollups($1)").bind(FOLD_BATCH).fetch_one(self.pool()).await?;
            total += u64::try_from(folded).unwrap_or(0);
            if folded < FOLD_BATCH {
                return Ok(total);
            }
        }
    }

    /// Deltas logged and not folded yet.
    pub async fn rollups_pending(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM rollup_log").fetch_one(self.pool()).await?)
    }
}

/// How often a [`RollupFolder`] folds: a read rarely finds more than this much of the writers' output to
/// fold first.
const FOLD_TICK: Duration = Duration::from_millis(250);

/// Folds the rollup log in the background; abort the handle to stop it (a fold cut short is rolled back and
/// its deltas stay logged). Several processes may run one: they fold one at a time.
pub struct RollupFolder;

impl RollupFolder {
    pub fn spawn(postgres: Postgres) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match postgres.fold_rollups().await {
                    Ok(0) => {}
                    Ok(folded) => tracing::debug!(folded, "rollup deltas folded"),
                    Err(error) => tracing::warn!(%error, "folding the rollup log failed; retrying"),
                }
                tokio::time::sleep(FOLD_TICK).await;
            }
        })
    }
}
