//! Deletions and erasures (migration 0018, docs/privacy.md): deleting comments from Postgres, remembering
//! every deleted key (the [`DeletionLedger`] the sink reads, so nothing deleted comes back), and erasure
//! requests, swept page by page by the eraser (`murmur_api::Eraser`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use murmur_core::html::escape;
use murmur_core::{BoxError, CommentId, DeletionLedger, EnrichedComment, Expired, Expiry};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

use crate::{Postgres, StoreError};

/// An erasure request and how far it got. It never holds the author's handle, only the keyed pseudonym the
/// comments hold.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Erasure {
    pub id: i64,
    pub source: String,
    /// The author's keyed pseudonym (as `author` on the author's comments).
    pub author: String,
    pub requested_at: DateTime<Utc>,
    /// The author's comments arriving until then are erased on arrival.
    pub arrivals_until: DateTime<Utc>,
    /// `sweeping` (deleting the stored comments), `settling` (waiting to sweep once more for comments whose
    /// write was under way), `done`.
    pub status: String,
    /// Comments deleted so far (when `done`: in all).
    pub comments: i64,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub sweeps: i32,
    #[serde(skip)]
    pub cursor_id: Option<String>,
    #[serde(skip)]
    pub sweep_after: Option<DateTime<Utc>>,
}

const ERASURE_COLUMNS: &str =
    "id, source, author, requested_at, arrivals_until, status, comments, finished_at, sweeps, cursor_id, sweep_after";

/// Sweeps an erasure makes before it is done: the first, and one after it settled.
const ERASURE_SWEEPS: i32 = 2;

/// What replaces a deleted comment's text where a stored report or alert quotes it.
pub const REMOVED_QUOTE: &str = "removed";
/// The same, for a comment an erasure deleted.
pub const ERASED_QUOTE: &str = "removed at the author's request";

/// The columns of a list of comment keys, as `UNNEST` takes them.
fn columns(comments: &[CommentId]) -> (Vec<&str>, Vec<&str>) {
    comments.iter().map(|c| (c.source.as_str(), c.id.as_str())).unzip()
}

impl Postgres {
    /// Deletes these comments (the rollups lose their counts through the delete trigger) and remembers their
    /// keys, in one transaction; returns how many were stored.
    pub async fn delete_comments(&self, comments: &[CommentId]) -> Result<u64, StoreError> {
        if comments.is_empty() {
            return Ok(0);
        }
        let (sources, ids) = columns(comments);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO deletions (source, id) SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&sources)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(
            "DELETE FROM comments c USING UNNEST($1::text[], $2::text[]) AS u(source, id) \
             WHERE c.source = u.source AND c.id = u.id",
        )
        .bind(&sources)
        .bind(&ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        replace_quotes(&mut tx, &sources, &ids).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// One step of retention: deletes up to `expiry.batch` comments created before `expiry.comments_before`
    /// (oldest first; their rollup counts kept if asked), and once none is left, up to as many minute-grain
    /// rollup rows of buckets before `expiry.minute_rollups_before`. Deleted keys are not remembered: a
    /// replayed comment past the window is deleted again by the next step.
    pub async fn expire(&self, expiry: &Expiry) -> Result<Expired, StoreError> {
        let batch = i64::try_from(expiry.batch).unwrap_or(i64::MAX);
        if let Some(before) = expiry.comments_before {
            let mut tx = self.pool().begin().await?;
            if expiry.keep_rollups {
                sqlx::query("SET LOCAL murmur.keep_rollups = 'on'").execute(&mut *tx).await?;
            }
            let gone: Vec<(String, String)> = sqlx::query_as(
                "DELETE FROM comments c USING ( \
                     SELECT source, id FROM comments WHERE created_at < $1 ORDER BY created_at LIMIT $2 \
                     FOR UPDATE SKIP LOCKED) old \
                 WHERE c.source = old.source AND c.id = old.id RETURNING c.source, c.id",
            )
            .bind(before)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
            let (sources, ids): (Vec<&str>, Vec<&str>) = gone.iter().map(|(s, i)| (s.as_str(), i.as_str())).unzip();
            replace_quotes(&mut tx, &sources, &ids).await?;
            tx.commit().await?;
            if !gone.is_empty() {
                return Ok(Expired { comments: gone.len() as u64, minute_rollups: 0 });
            }
        }
        let Some(before) = expiry.minute_rollups_before else { return Ok(Expired::default()) };
        self.fold_rollups().await?;
        let minute_rollups = sqlx::query(
            "DELETE FROM rollups WHERE ctid IN ( \
                 SELECT ctid FROM rollups WHERE grain = 'minute' AND bucket < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(batch)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(Expired { comments: 0, minute_rollups })
    }

    /// Remembers these keys as deleted before their tombstones are applied (so a sink stores none of them
    /// again from then on); `erasure` marks them as that erasure's. Returns how many were not remembered yet.
    pub async fn remember_deleted(&self, comments: &[CommentId], erasure: Option<i64>) -> Result<u64, StoreError> {
        let (sources, ids) = columns(comments);
        let added = sqlx::query(
            "INSERT INTO deletions AS d (source, id, erasure) SELECT u.source, u.id, $3 \
             FROM UNNEST($1::text[], $2::text[]) AS u(source, id) \
             ON CONFLICT (source, id) DO UPDATE SET erasure = coalesce(d.erasure, EXCLUDED.erasure) \
             WHERE d.erasure IS NULL AND EXCLUDED.erasure IS NOT NULL",
        )
        .bind(&sources)
        .bind(&ids)
        .bind(erasure)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(added)
    }

    /// Whether each comment must not be stored: its key was deleted, or its author is under an erasure still
    /// taking arrivals.
    pub async fn forgotten_comments(&self, comments: &[EnrichedComment]) -> Result<Vec<bool>, StoreError> {
        let sources: Vec<&str> = comments.iter().map(|e| e.comment.source.as_str()).collect();
        let ids: Vec<&str> = comments.iter().map(|e| e.comment.id.as_str()).collect();
        let authors: Vec<Option<&str>> = comments.iter().map(|e| e.comment.author.as_deref()).collect();
        let forgotten: Vec<i64> = sqlx::query_scalar(
            "SELECT u.n FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(source, id, author, n) \
             WHERE EXISTS (SELECT 1 FROM deletions d WHERE d.source = u.source AND d.id = u.id) \
                OR (u.author IS NOT NULL AND EXISTS ( \
                    SELECT 1 FROM erasures e \
                    WHERE e.source = u.source AND e.author = u.author AND e.arrivals_until > now()))",
        )
        .bind(&sources)
        .bind(&ids)
        .bind(&authors)
        .fetch_all(self.pool())
        .await?;
        let mut out = vec![false; comments.len()];
        for n in forgotten {
            if let Some(slot) = usize::try_from(n).ok().and_then(|n| n.checked_sub(1)).and_then(|i| out.get_mut(i)) {
                *slot = true;
            }
        }
        Ok(out)
    }

    /// Records an erasure request for `author` (the pseudonym) of `source`, erasing arrivals for `arrivals`.
    pub async fn start_erasure(&self, source: &str, author: &str, arrivals: Duration) -> Result<Erasure, StoreError> {
        let seconds = arrivals.as_secs_f64();
        Ok(sqlx::query_as(&format!(
            "INSERT INTO erasures (source, author, arrivals_until) \
             VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING {ERASURE_COLUMNS}"
        ))
        .bind(source)
        .bind(author)
        .bind(seconds)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn erasure(&self, id: i64) -> Result<Option<Erasure>, StoreError> {
        Ok(sqlx::query_as(&format!("SELECT {ERASURE_COLUMNS} FROM erasures WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Erasures, newest first, at most `limit`.
    pub async fn erasures(&self, limit: i64) -> Result<Vec<Erasure>, StoreError> {
        Ok(sqlx::query_as(&format!("SELECT {ERASURE_COLUMNS} FROM erasures ORDER BY id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// The oldest erasure with work to do now: sweeping, or settled long enough for its next sweep.
    pub async fn next_erasure(&self) -> Result<Option<Erasure>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ERASURE_COLUMNS} FROM erasures \
             WHERE status = 'sweeping' OR (status = 'settling' AND sweep_after <= now()) ORDER BY id LIMIT 1"
        ))
        .fetch_optional(self.pool())
        .await?)
    }

    /// The next page of the erasure's sweep: ids of the author's stored comments after its cursor, in order.
    /// A full scan of the source's comments (no index on authors: it would cost every write).
    pub async fn erasure_page(&self, erasure: &Erasure, limit: i64) -> Result<Vec<CommentId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM comments WHERE source = $1 AND author = $2 AND id > coalesce($3, '') \
             ORDER BY id LIMIT $4",
        )
        .bind(&erasure.source)
        .bind(&erasure.author)
        .bind(&erasure.cursor_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().map(|id| CommentId { source: erasure.source.clone(), id }).collect())
    }

    /// Moves the erasure's sweep past `last` (the page ending there was tombstoned) and updates its count.
    /// False when another eraser moved it first (this one's page was sent twice: harmless).
    pub async fn advance_erasure(&self, erasure: &Erasure, last: &str) -> Result<bool, StoreError> {
        let moved = sqlx::query(
            "UPDATE erasures SET cursor_id = $3, \
                 comments = (SELECT count(*) FROM deletions WHERE erasure = $1) \
             WHERE id = $1 AND status = 'sweeping' AND cursor_id IS NOT DISTINCT FROM $2",
        )
        .bind(erasure.id)
        .bind(&erasure.cursor_id)
        .bind(last)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(moved == 1)
    }

    /// Ends the erasure's sweep: it settles for `settle` before the next, or is done after the last.
    pub async fn end_sweep(&self, erasure: &Erasure, settle: Duration) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE erasures SET sweeps = sweeps + 1, cursor_id = NULL, \
                 comments = (SELECT count(*) FROM deletions WHERE erasure = $1), \
                 status = CASE WHEN sweeps + 1 >= $2 THEN 'done' ELSE 'settling' END, \
                 sweep_after = now() + make_interval(secs => $3), \
                 finished_at = CASE WHEN sweeps + 1 >= $2 THEN now() END \
             WHERE id = $1 AND status = 'sweeping' AND sweeps = $4",
        )
        .bind(erasure.id)
        .bind(ERASURE_SWEEPS)
        .bind(settle.as_secs_f64())
        .bind(erasure.sweeps)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Starts the next sweep of a settling erasure whose wait is over; false while it waits.
    pub async fn resume_sweep(&self, erasure: &Erasure) -> Result<bool, StoreError> {
        let resumed = sqlx::query(
            "UPDATE erasures SET status = 'sweeping' WHERE id = $1 AND status = 'settling' AND sweep_after <= now()",
        )
        .bind(erasure.id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(resumed == 1)
    }
}

/// A quoted comment's key and the text that replaces its quote.
type Replacements = HashMap<(String, String), &'static str>;

/// A quote of a deleted comment: the report or alert quoting it, the comment's source and id, and whether an
/// erasure deleted it.
type DeletedQuote = (Option<i64>, Option<i64>, String, String, bool);

/// Replaces, in every stored report and alert that quotes one of these (deleted) comments, its text by
/// [`REMOVED_QUOTE`] or [`ERASED_QUOTE`]: in the JSON body, the HTML page and an alert's chat line.
async fn replace_quotes(conn: &mut PgConnection, sources: &[&str], ids: &[&str]) -> Result<(), StoreError> {
    let quoted: Vec<DeletedQuote> = sqlx::query_as(
        "DELETE FROM quotes q USING UNNEST($1::text[], $2::text[]) AS u(source, id) \
         WHERE q.source = u.source AND q.id = u.id \
         RETURNING q.report_id, q.alert_id, q.source, q.id, EXISTS ( \
             SELECT 1 FROM deletions d WHERE d.source = q.source AND d.id = q.id AND d.erasure IS NOT NULL)",
    )
    .bind(sources)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let (mut reports, mut alerts): (BTreeMap<i64, Replacements>, BTreeMap<i64, Replacements>) = Default::default();
    for (report, alert, source, id, erased) in quoted {
        let text = if erased { ERASED_QUOTE } else { REMOVED_QUOTE };
        if let Some(report) = report {
            reports.entry(report).or_default().insert((source.clone(), id.clone()), text);
        }
        if let Some(alert) = alert {
            alerts.entry(alert).or_default().insert((source, id), text);
        }
    }
    for (id, replacements) in reports {
        let row: Option<(Value, Option<String>)> =
            sqlx::query_as("SELECT body_json, body_html FROM reports WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((mut body, html)) = row else { continue };
        let replaced = replace_in_json(&mut body, &replacements);
        let html = html.map(|html| replace_in_html(html, &replaced));
        sqlx::query("UPDATE reports SET body_json = $2, body_html = $3 WHERE id = $1")
            .bind(id)
            .bind(&body)
            .bind(&html)
            .execute(&mut *conn)
            .await?;
    }
    for (id, replacements) in alerts {
        let row: Option<(Value, String)> =
            sqlx::query_as("SELECT body, text FROM alert_firings WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((mut body, text)) = row else { continue };
        let replaced = replace_in_json(&mut body, &replacements);
        sqlx::query("UPDATE alert_firings SET body = $2, text = $3 WHERE id = $1")
            .bind(id)
            .bind(&body)
            .bind(replace_in_chat_line(&text, &replaced))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Replaces the text of every quote (an object with `source`, `id` and `text`) of the comments in
/// `replacements`; returns each replaced text with its replacement.
fn replace_in_json(body: &mut Value, replacements: &Replacements) -> Vec<(String, &'static str)> {
    let mut replaced = Vec::new();
    let mut stack = vec![body];
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(fields) => {
                let key = match (fields.get("source"), fields.get("id"), fields.get("text")) {
                    (Some(Value::String(source)), Some(Value::String(id)), Some(Value::String(_))) => {
                        Some((source.clone(), id.clone()))
                    }
                    _ => None,
                };
                match key.and_then(|key| replacements.get(&key)) {
                    Some(&with) => {
                        if let Some(Value::String(text)) = fields.get_mut("text") {
                            replaced.push((std::mem::replace(text, with.to_owned()), with));
                        }
                    }
                    None => stack.extend(fields.values_mut()),
                }
            }
            _ => {}
        }
    }
    replaced
}

/// A rendered page with each replaced text (as the page escaped it) replaced.
fn replace_in_html(mut html: String, replaced: &[(String, &str)]) -> String {
    for (text, with) in replaced {
        html = html.replace(&escape(text), &escape(with));
    }
    html
}

/// An alert's chat line with each quote line (`> ` and the start of a comment, cut with `…`) of a replaced
/// text replaced.
fn replace_in_chat_line(text: &str, replaced: &[(String, &str)]) -> String {
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let Some(quote) = line.strip_prefix("> ") else { return line.to_owned() };
            let start = quote.trim_end_matches('…');
            match replaced.iter().find(|(text, _)| text.replace('\n', " ").starts_with(start)) {
                Some((_, with)) => format!("> {with}"),
                None => line.to_owned(),
            }
        })
        .collect();
    lines.join("\n")
}

#[async_trait]
impl DeletionLedger for Postgres {
    async fn forgotten(&self, comments: &[EnrichedComment]) -> Result<Vec<bool>, BoxError> {
        Ok(self.forgotten_comments(comments).await?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_quote_is_replaced_in_the_json_the_page_and_the_chat_line_and_nothing_else() {
        let mut body = json!({
            "slices": [{"spikes": [{"examples": [
                {"source": "twitter", "id": "1", "text": "I <3 \"Acme\"\nso much", "score": 1.0},
                {"source": "twitter", "id": "2", "text": "kept"},
            ]}]}],
            "label": {"source": "twitter", "id": "1"},
        });
        let replacements: Replacements = [(("twitter".to_owned(), "1".to_owned()), ERASED_QUOTE)].into();
        let replaced = replace_in_json(&mut body, &replacements);
        assert_eq!(replaced, [("I <3 \"Acme\"\nso much".to_owned(), ERASED_QUOTE)]);
        let examples = &body["slices"][0]["spikes"][0]["examples"];
        assert_eq!((&examples[0]["text"], &examples[1]["text"]), (&json!(ERASED_QUOTE), &json!("kept")));
        assert_eq!(body["label"], json!({"source": "twitter", "id": "1"}), "not a quote: no text");

        let page = format!("<li>{}</li><li>kept</li>", escape("I <3 \"Acme\"\nso much"));
        assert_eq!(replace_in_html(page, &replaced), "<li>removed at the author&#39;s request</li><li>kept</li>");
        let line = "Acme volume 40 (expected 3)\n> I <3 \"Acme\" so…";
        assert_eq!(
            replace_in_chat_line(line, &replaced),
            "Acme volume 40 (expected 3)\n> removed at the author's request"
        );
        let other = "Acme volume 40 (expected 3)\n> kept";
        assert_eq!(replace_in_chat_line(other, &replaced), other);
    }
}
