//! Reports as a self-contained HTML page (inline SVG charts, no script, no external asset) and as CSV.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use murmur_core::html::escape;

use crate::chart::{time_formats, LineChart, Scale, Series};
use crate::report::Report;
use crate::service::EntityTrend;
use crate::ThemeSummary;

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{:+.1}%", x * 100.0))
}

fn signed(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:+.2}"))
}

fn entity_rows(entities: &[EntityTrend], growth: bool) -> String {
    let mut rows = String::new();
    for e in entities {
        let label = e.label.map_or("", |l| l.as_str());
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td>",
            escape(&e.name),
            label,
            e.counts.comments,
            signed(e.net_sentiment)
        );
        if growth {
            let _ = write!(
                rows,
                "<td class=n>{}</td><td class=n>{}</td><td class=n>{:.1}</td>",
                e.previous.unwrap_or(0),
                percent(e.growth),
                e.score.unwrap_or(0.0)
            );
        }
        rows.push_str("</tr>");
    }
    rows
}

fn theme_rows(themes: &[ThemeSummary]) -> String {
    let mut rows = String::new();
    for t in themes {
        let example = t.theme.representative_text.as_deref().unwrap_or("");
        let _ = write!(
            rows,
            "<tr><td>{}<div class=example>{}</div></td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            escape(&t.theme.keywords.join(", ")),
            escape(example),
            t.counts.comments,
            t.previous,
            if t.new { "new".to_owned() } else { percent(t.growth) },
            signed(t.net_sentiment)
        );
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=5>None.</td></tr>");
    }
    rows
}

pub fn html(report: &Report) -> String {
    // Times as the reader's clock shows them: in the report's time zone.
    let tz: Tz = report.time_zone.parse().unwrap_or(Tz::UTC);
    let local = |t: DateTime<Utc>, format: &str| t.with_timezone(&tz).format(format).to_string();
    let tf = "%Y-%m-%d %H:%M";
    let (tick, _) = time_formats(report.bucket);
    let labels: Vec<String> =
        report.slices.first().map(|s| s.points.iter().map(|p| local(p.start, tick)).collect()).unwrap_or_default();
    let volume = LineChart {
        title: "Comments per bucket (red rings: spikes)",
        x_labels: labels.clone(),
        series: report
            .slices
            .iter()
            .map(|s| Series {
                name: s.label.clone(),
                values: s.points.iter().map(|p| p.counts.comments as f64).collect(),
                targets: Vec::new(),
            })
            .collect(),
        marks: report
            .slices
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                s.spikes
                    .iter()
                    .filter_map(move |spike| s.points.iter().position(|p| p.start == spike.peak).map(|p| (i, p)))
            })
            .collect(),
        y_range: None,
        scale: Scale::Count,
    };
    let sentiment = LineChart {
        title: "Net sentiment (positive − negative share)",
        x_labels: labels,
        series: report
            .slices
            .iter()
            .map(|s| Series {
                name: s.label.clone(),
                values: s.points.iter().map(|p| p.net_sentiment.unwrap_or(f64::NAN)).collect(),
                targets: Vec::new(),
            })
            .collect(),
        marks: Vec::new(),
        y_range: Some((-1.0, 1.0)),
        scale: Scale::Signed,
    };
    let mut headline = String::new();
    for s in &report.slices {
        let _ = write!(
            headline,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.1}%</td><td class=n>{:+.1} pts</td><td class=n>{}</td></tr>",
            escape(&s.label),
            s.comments,
            s.previous_comments,
            percent(s.volume_change),
            signed(s.net_sentiment),
            signed(s.sentiment_shift),
            s.share * 100.0,
            (s.share - s.previous_share) * 100.0,
            s.spikes.len()
        );
    }
    let mut spikes = String::new();
    for s in &report.slices {
        for spike in &s.spikes {
            let d = &spike.departure;
            let (what, value, baseline) = match d.kind {
                crate::SpikeKind::Volume => {
                    ("volume", format!("{:.0} comments", d.value), format!("{:.0}", d.baseline))
                }
                crate::SpikeKind::NegativeShare => {
                    ("negative share", format!("{:.0}%", d.value * 100.0), format!("{:.0}%", d.baseline * 100.0))
                }
            };
            let span = if spike.buckets > 1 { format!(", {} buckets", spike.buckets) } else { String::new() };
            let _ = write!(
                spikes,
                "<li class=spike-item><b>{}</b> {} – {}{span}: {what} {value} at the peak {} (baseline {baseline}, \
                 z = {:.1})<ul>",
                escape(&s.label),
                local(spike.start, tf),
                local(spike.end, tf),
                local(spike.peak, tf),
                d.z
            );
            for example in &spike.examples {
                let _ = write!(spikes, "<li class=example>{}</li>", escape(&example.text));
            }
            spikes.push_str("</ul></li>");
        }
    }
    if spikes.is_empty() {
        spikes.push_str("<li>No spikes.</li>");
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{name}</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;max-width:980px;margin:24px auto;padding:0 16px;color:#111827}}
h1{{font-size:22px;margin-bottom:0}} h2{{font-size:16px;margin-top:28px}} .meta{{color:#6b7280}}
table{{border-collapse:collapse;width:100%}} td,th{{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left}}
.n{{text-align:right;font-variant-numeric:tabular-nums}} .example{{color:#374151}}
</style></head><body>
<h1>{name}</h1>
<p class="meta">{from} – {to} ({tz}), against {pfrom} – {pto}; buckets of one {bucket}. Generated {generated}.</p>
<h2>Headline</h2>
<table id="headline"><tr><th>Slice</th><th class=n>Comments</th><th class=n>Before</th><th class=n>Volume</th><th class=n>Net sentiment</th><th class=n>Shift</th><th class=n>Share of voice</th><th class=n>Share change</th><th class=n>Spikes</th></tr>{headline}</table>
<h2>Volume</h2>{volume}
<h2>Sentiment</h2>{sentiment}
<h2>Spikes</h2><ul id="spikes">{spikes}</ul>
<h2>Top entities</h2>
<table id="top-entities"><tr><th>Entity</th><th>Type</th><th class=n>Comments</th><th class=n>Net sentiment</th></tr>{top}</table>
<h2>Trending entities</h2>
<table id="trending-entities"><tr><th>Entity</th><th>Type</th><th class=n>Comments</th><th class=n>Net sentiment</th><th class=n>Before</th><th class=n>Growth</th><th class=n>Score</th></tr>{trending}</table>
<h2>New and growing themes</h2>
<table id="emerging-themes"><tr><th>Theme</th><th class=n>Comments</th><th class=n>Before</th><th class=n>Growth</th><th class=n>Net sentiment</th></tr>{emerging}</table>
<h2>Most negative themes</h2>
<table id="negative-themes"><tr><th>Theme</th><th class=n>Comments</th><th class=n>Before</th><th class=n>Growth</th><th class=n>Net sentiment</th></tr>{negative}</table>
</body></html>
"#,
        name = escape(&report.name),
        from = local(report.window.from, tf),
        to = local(report.window.to, tf),
        pfrom = local(report.previous_window.from, tf),
        pto = local(report.previous_window.to, tf),
        tz = escape(&report.time_zone),
        bucket = report.bucket.as_str(),
        generated = report.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        volume = volume.svg(),
        sentiment = sentiment.svg(),
        top = entity_rows(&report.top_entities, false),
        trending = entity_rows(&report.trending_entities, true),
        emerging = theme_rows(&report.emerging_themes),
        negative = theme_rows(&report.negative_themes),
    )
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// One row per slice and bucket of the window.
pub fn csv(report: &Report) -> String {
    let mut out = String::from("slice,bucket_start,comments,negative,neutral,positive,net_sentiment\n");
    for s in &report.slices {
        for p in &s.points {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{}",
                csv_field(&s.label),
                p.start.to_rfc3339(),
                p.counts.comments,
                p.counts.negative,
                p.counts.neutral,
                p.counts.positive,
                p.net_sentiment.map_or_else(String::new, |v| format!("{v:.4}"))
            );
        }
    }
    out
}
