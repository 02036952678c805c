//! How long a sink keeps what it stores (docs/privacy.md).

use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::Args;
use murmur_ingest::retention::Retention;

#[derive(Args, Clone)]
pub struct RetentionArgs {
    /// Days comments are kept (by `created_at`), then deleted from every store this sink writes; 0 keeps them.
    #[arg(long, env = "MURMUR_RETENTION_DAYS", default_value_t = 0)]
    pub retention_days: u32,
    /// Take the counts of the comments retention deletes out of the rollups too (by default the trends keep
    /// them: aggregates hold no personal data).
    #[arg(long, env = "MURMUR_RETENTION_DROP_ROLLUPS", value_parser = BoolishValueParser::new())]
    pub retention_drop_rollups: bool,
    /// Days minute-grain rollups are kept, whatever happens to the comments (hour and day rollups stay); 0
    /// keeps them.
    #[arg(long, env = "MURMUR_MINUTE_ROLLUP_DAYS", default_value_t = 0)]
    pub minute_rollup_days: u32,
    /// Seconds between two retention passes.
    #[arg(long, env = "MURMUR_RETENTION_EVERY_SECONDS", default_value_t = Retention::default().every.as_secs())]
    pub retention_every_seconds: u64,
}

impl RetentionArgs {
    pub fn retention(&self) -> Retention {
        let days = |n: u32| (n > 0).then(|| Duration::from_secs(u64::from(n) * 86_400));
        Retention {
            comments: days(self.retention_days),
            keep_rollups: !self.retention_drop_rollups,
            minute_rollups: days(self.minute_rollup_days),
            every: Duration::from_secs(self.retention_every_seconds.max(1)),
            ..Retention::default()
        }
    }
}
