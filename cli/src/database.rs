//! Postgres: where it is, and connecting to it with the schema brought up to date.

use anyhow::Context;
use clap::Args;
use murmur_store::{
    CopyFinder, CopyFinderOptions, CopyProgress, Postgres, ThemeFinder, ThemeFinderOptions, ThemeProgress,
    DEFAULT_DATABASE_URL,
};

#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// Postgres connection URL.
    #[arg(long, env = "MURMUR_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Postgres connection pool size.
    #[arg(long, env = "MURMUR_DATABASE_POOL", default_value_t = 8)]
    pub database_pool: u32,
}

/// Connects and applies pending migrations (idempotent, serialised by Postgres advisory locks), then
/// re-derives stored entities if their rules changed since.
pub async fn connect(args: &DatabaseArgs) -> anyhow::Result<Postgres> {
    let postgres = Postgres::connect(&args.database_url, args.database_pool).await.with_context(|| {
        format!("connecting to Postgres at {} (infra/postgres.sh starts one)", redact(&args.database_url))
    })?;
    postgres.migrate().await.context("applying migrations")?;
    if let Some(changed) = postgres
        .rederive_entities(ENTITY_RULES, murmur_enrich::social::with_mentions)
        .await
        .context("re-deriving stored entities by today's rules")?
    {
        tracing::info!(changed, "stored entities re-derived by today's rules");
    }
    Ok(postgres)
}

/// Where near-duplicates are found (docs/duplicates.md): one `serve` process at a time compares the comments
/// the sinks stored with the originals it keeps in memory.
#[derive(Args, Clone)]
pub struct CopyArgs {
    /// Originals kept in memory to compare new comments with (about 600 bytes each); a copy of one older than
    /// these starts a cluster of its own. 0: this process never finds copies (another one must, or comments
    /// count as originals and their queue grows).
    #[arg(long, env = "MURMUR_COPY_WINDOW", default_value_t = CopyFinderOptions::default().capacity)]
    pub copy_window: usize,
}

impl CopyArgs {
    /// Starts the copy finder in the background (it finds copies while this process holds its lock), unless
    /// the window is 0; abort the handle to stop it.
    pub fn spawn(&self, postgres: &Postgres) -> Option<(std::sync::Arc<CopyProgress>, tokio::task::JoinHandle<()>)> {
        (self.copy_window > 0).then(|| {
            let options = CopyFinderOptions { capacity: self.copy_window, ..CopyFinderOptions::default() };
            CopyFinder::spawn(postgres.clone(), options)
        })
    }
}

/// How themes are found (docs/themes.md): one `serve` process at a time gives each comment the sinks stored its
/// nearest theme and re-clusters the newest comments every so often.
#[derive(Args, Clone)]
pub struct ThemeArgs {
    /// Newest comments clustered together (about 1.7 kB each in memory). 0: this process never finds themes
    /// (another one must, or comments get none and their queue grows).
    #[arg(long, env = "MURMUR_THEME_WINDOW", default_value_t = ThemeFinderOptions::default().themes.window)]
    pub theme_window: usize,
    /// New comments after which the window is clustered again (also every 10 minutes when any arrived).
    #[arg(long, env = "MURMUR_THEME_RECLUSTER_EVERY",
          default_value_t = ThemeFinderOptions::default().themes.recluster_every)]
    pub theme_recluster_every: usize,
    /// Comments needed before the first clustering (a theme needs 15 comments or more).
    #[arg(long, env = "MURMUR_THEME_FIRST_CLUSTERING",
          default_value_t = ThemeFinderOptions::default().themes.first_clustering)]
    pub theme_first_clustering: usize,
}

impl ThemeArgs {
    /// Starts the themer in the background (it finds themes while this process holds its lock), unless the
    /// window is 0; abort the handle to stop it.
    pub fn spawn(&self, postgres: &Postgres) -> Option<(std::sync::Arc<ThemeProgress>, tokio::task::JoinHandle<()>)> {
        (self.theme_window > 0).then(|| {
            let mut options = ThemeFinderOptions::default();
            options.themes.window = self.theme_window;
            options.themes.recluster_every = self.theme_recluster_every.max(1);
            options.themes.first_clustering = self.theme_first_clustering.max(1);
            ThemeFinder::spawn(postgres.clone(), options)
        })
    }
}

/// The entity rules stored comments were last re-derived by (see `Postgres::rederive_entities`): mentions
/// (`@handle`, `#hashtag`) read by rule, names one per entity however written, and a comment counting each
/// name under one type (migration 0012). A new rule gets a new name. Search facets come from the index:
/// `murmur reindex` rebuilds them.
const ENTITY_RULES: &str = "entities-2026-12-one-type-per-name";

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres:///db?host=/run/postgresql"), "postgres:///db?host=/run/postgresql");
    }
}
