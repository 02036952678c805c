//! Reports as a self-contained HTML page (inline SVG charts, no script, no external asset) and as CSV.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::bucket::Unit;
use crate::report::Report;
use crate::service::EntityTrend;

const PALETTE: [&str; 8] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{:+.1}%", x * 100.0))
}

fn signed(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:+.2}"))
}

/// A line chart of several series over the same x positions, with marked points (spikes) as red rings.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_labels: Vec<String>,
    pub series: Vec<(String, Vec<f64>)>,
    /// (series, point) to ring.
    pub marks: Vec<(usize, usize)>,
    /// Fix the y range (e.g. -1..1 for net sentiment); from the data otherwise.
    pub y_range: Option<(f64, f64)>,
}

impl LineChart<'_> {
    pub fn svg(&self) -> String {
        let (w, h, left, right, top, bottom) = (720.0, 240.0, 48.0, 12.0, 28.0, 36.0);
        let n = self.series.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        let values = self.series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
        let (lo, hi) = self.y_range.unwrap_or_else(|| (0.0, values.fold(1.0_f64, f64::max)));
        let x = |i: usize| left + (w - left - right) * if n > 1 { i as f64 / (n - 1) as f64 } else { 0.5 };
        let y = |v: f64| top + (h - top - bottom) * (1.0 - (v - lo) / (hi - lo).max(f64::EPSILON));
        let mut svg = String::new();
        let _ = write!(
            svg,
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{t}"><text x="{left}" y="16" font-size="13" font-weight="600">{t}</text>"##,
            t = escape(self.title)
        );
        for k in 0..=4 {
            let v = lo + (hi - lo) * k as f64 / 4.0;
            let _ = write!(
                svg,
                r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="#6b7280">{}</text>"##,
                w - right,
                left - 4.0,
                y(v) + 3.0,
                if hi - lo >= 10.0 { format!("{v:.0}") } else { format!("{v:.2}") },
                y = y(v)
            );
        }
        let step = n.div_ceil(6).max(1);
        for (i, label) in self.x_labels.iter().enumerate().step_by(step) {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle" fill="#6b7280">{}</text>"##,
                x(i),
                h - bottom + 14.0,
                escape(label)
            );
        }
        for (s, (name, values)) in self.series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let points: Vec<String> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                .collect();
            let _ = write!(
                svg,
                r##"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{}</title></polyline>"##,
                points.join(" "),
                escape(name)
            );
            let _ = write!(
                svg,
                r##"<rect x="{:.1}" y="{}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{}" font-size="11">{}</text>"##,
                left + 150.0 * s as f64,
                h - 12.0,
                left + 150.0 * s as f64 + 14.0,
                h - 3.0,
                escape(name)
            );
        }
        for &(s, i) in &self.marks {
            if let Some(v) = self.series.get(s).and_then(|(_, v)| v.get(i)).filter(|v| v.is_finite()) {
                let _ = write!(
                    svg,
                    r##"<circle class="spike" cx="{:.1}" cy="{:.1}" r="6" fill="none" stroke="#dc2626" stroke-width="2"/>"##,
                    x(i),
                    y(*v)
                );
            }
        }
        svg.push_str("</svg>");
        svg
    }
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

pub fn html(report: &Report) -> String {
    // Times as the reader's clock shows them: in the report's time zone.
    let tz: Tz = report.time_zone.parse().unwrap_or(Tz::UTC);
    let local = |t: DateTime<Utc>, format: &str| t.with_timezone(&tz).format(format).to_string();
    let tf = "%Y-%m-%d %H:%M";
    let tick = match report.bucket {
        Unit::Minute | Unit::Hour => "%d %H:%M",
        Unit::Day | Unit::Week => "%m-%d",
    };
    let labels: Vec<String> =
        report.slices.first().map(|s| s.points.iter().map(|p| local(p.start, tick)).collect()).unwrap_or_default();
    let volume = LineChart {
        title: "Comments per bucket (red rings: spikes)",
        x_labels: labels.clone(),
        series: report
            .slices
            .iter()
            .map(|s| (s.label.clone(), s.points.iter().map(|p| p.counts.comments as f64).collect()))
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
    };
    let sentiment = LineChart {
        title: "Net sentiment (positive − negative share)",
        x_labels: labels,
        series: report
            .slices
            .iter()
            .map(|s| (s.label.clone(), s.points.iter().map(|p| p.net_sentiment.unwrap_or(f64::NAN)).collect()))
            .collect(),
        marks: Vec::new(),
        y_range: Some((-1.0, 1.0)),
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
