//! Charts as SVG, drawn on the server: reports embed them, the API serves them (`format=svg`) and the
//! dashboard inlines them, so there is one chart renderer and no script library to ship. An element that
//! stands for comments carries `data-comments`, the query string of `/v1/trends/examples` that lists them,
//! and a `<title>` the browser shows on hover.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use murmur_core::html::escape;
use murmur_core::SentimentLabel;
use murmur_store::Counts;

use crate::bucket::Unit;
use crate::service::{ShareSeries, Spike, Timeline};
use crate::{Slice, SpikeKind};

const PALETTE: [&str; 8] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
const NEGATIVE: &str = "#dc2626";
const NEUTRAL: &str = "#9ca3af";
const POSITIVE: &str = "#16a34a";
const UNSCORED: &str = "#d1d5db";
const AXIS: &str = "#6b7280";
const GRID: &str = "#e5e7eb";

/// Chart sizes in SVG units (a chart scales to its container's width): line charts sit half a page wide,
/// the volume chart across the page.
const WIDTH: f64 = 720.0;
const WIDE: f64 = 1100.0;
const HEIGHT: f64 = 250.0;
/// Grid lines above the bottom one: at most this many on count axes, four on fixed ranges.
const MAX_TICKS: u32 = 6;
const FIXED_TICKS: u32 = 4;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 28.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// What an element of a chart stands for: a tooltip and, where it stands for comments, the
/// `/v1/trends/examples` query string that lists them.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub title: String,
    pub comments: Option<String>,
}

impl Target {
    /// The comments of `slice` in `[from, to)`, of one sentiment where given.
    pub fn comments(
        title: String,
        slice: &Slice,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        sentiment: Option<SentimentLabel>,
    ) -> Self {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut pairs = slice.query_pairs();
        pairs.push(("from", time(from)));
        pairs.push(("to", time(to)));
        if let Some(sentiment) = sentiment {
            pairs.push(("sentiment", sentiment.as_str().to_owned()));
        }
        Self { title, comments: serde_urlencoded::to_string(&pairs).ok() }
    }

    /// `data-comments="…"` (or nothing), ready to go into an element's attributes.
    fn attributes(&self) -> String {
        self.comments.as_ref().map_or_else(String::new, |q| format!(r#" data-comments="{}""#, escape(q)))
    }

    fn tooltip(&self) -> String {
        format!("<title>{}</title>", escape(&self.title))
    }
}

/// How the y axis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Count,
    /// 0..1 shown as percentages.
    Percent,
    /// -1..1 with a sign.
    Signed,
}

impl Scale {
    fn format(self, v: f64) -> String {
        match self {
            Self::Count if v.abs() >= 10.0 || v.fract() == 0.0 => format!("{v:.0}"),
            Self::Count => format!("{v:.1}"),
            Self::Percent => format!("{:.0}%", v * 100.0),
            Self::Signed => format!("{v:+.2}"),
        }
    }
}

/// A named series of a line chart; `targets`, where not empty, one per value.
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
    pub targets: Vec<Target>,
}

/// Several series over the same x positions, with marked points (spikes) as red rings.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_labels: Vec<String>,
    pub series: Vec<Series>,
    /// (series, point) to ring.
    pub marks: Vec<(usize, usize)>,
    /// Fix the y range (e.g. -1..1 for net sentiment); from 0 to the data's nice maximum otherwise.
    pub y_range: Option<(f64, f64)>,
    pub scale: Scale,
}

impl LineChart<'_> {
    pub fn svg(&self) -> String {
        let n = self.series.iter().map(|s| s.values.len()).max().unwrap_or(0);
        let highest = self.series.iter().flat_map(|s| s.values.iter().copied()).filter(|v| v.is_finite());
        let ((lo, hi), ticks) = match self.y_range {
            Some(range) => (range, FIXED_TICKS),
            None => {
                let (top, ticks) = count_axis(highest.fold(0.0, f64::max));
                ((0.0, top), ticks)
            }
        };
        let frame = Frame { n, lo, hi, ticks, centred: false, width: WIDTH };
        let mut svg = frame.open(self.title, "line-chart");
        frame.axes(&mut svg, &self.x_labels, self.scale);
        for (s, series) in self.series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let points: Vec<String> = series
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, v)| format!("{:.1},{:.1}", frame.x(i), frame.y(*v)))
                .collect();
            let _ = write!(
                svg,
                r#"<g class="series" data-series="{name}"><polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{name}</title></polyline>"#,
                points.join(" "),
                name = escape(&series.name)
            );
            for (i, (v, target)) in
                series.values.iter().zip(&series.targets).enumerate().filter(|(_, (v, _))| v.is_finite())
            {
                let _ = write!(
                    svg,
                    r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}" data-value="{v}"{}>{}</circle>"#,
                    frame.x(i),
                    frame.y(*v),
                    target.attributes(),
                    target.tooltip()
                );
            }
            svg.push_str("</g>");
        }
        let legend: Vec<(&str, &str)> = self
            .series
            .iter()
            .enumerate()
            .map(|(s, series)| (series.name.as_str(), PALETTE[s % PALETTE.len()]))
            .collect();
        frame.legend(&mut svg, &legend);
        for &(s, i) in &self.marks {
            if let Some(v) = self.series.get(s).and_then(|s| s.values.get(i)).filter(|v| v.is_finite()) {
                let _ = write!(
                    svg,
                    r#"<circle class="spike" cx="{:.1}" cy="{:.1}" r="6" fill="none" stroke="{NEGATIVE}" stroke-width="2"/>"#,
                    frame.x(i),
                    frame.y(*v)
                );
            }
        }
        svg.push_str("</svg>");
        svg
    }
}

/// A bucket of a [`VolumeChart`]: its counts, a target for the whole bucket and one per sentiment.
pub struct VolumeBucket {
    pub counts: Counts,
    pub all: Target,
    pub negative: Target,
    pub neutral: Target,
    pub positive: Target,
}

/// A spike on a [`VolumeChart`]: buckets `first..=last`, the peak bucket marked.
pub struct SpikeMark {
    pub first: usize,
    pub last: usize,
    pub peak: usize,
    pub target: Target,
}

/// Comments per bucket as bars stacked by sentiment (negative at the bottom), spikes shaded and marked.
pub struct VolumeChart<'a> {
    pub title: &'a str,
    pub x_labels: Vec<String>,
    pub buckets: Vec<VolumeBucket>,
    pub spikes: Vec<SpikeMark>,
}

impl VolumeChart<'_> {
    pub fn svg(&self) -> String {
        let n = self.buckets.len();
        let (hi, ticks) = count_axis(self.buckets.iter().map(|b| b.counts.comments as f64).fold(0.0, f64::max));
        let frame = Frame { n, lo: 0.0, hi, ticks, centred: true, width: WIDE };
        let mut svg = frame.open(self.title, "volume-chart");
        let slot = frame.slot();
        for spike in &self.spikes {
            let _ = write!(
                svg,
                r##"<rect class="spike-span" x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#fee2e2"/>"##,
                frame.x(spike.first) - slot / 2.0,
                slot * (spike.last - spike.first + 1) as f64,
                frame.plot_height()
            );
        }
        frame.axes(&mut svg, &self.x_labels, Scale::Count);
        let bar = (slot * 0.8).max(1.0);
        for (i, bucket) in self.buckets.iter().enumerate() {
            let left = frame.x(i) - bar / 2.0;
            let c = bucket.counts;
            let _ = write!(
                svg,
                r#"<g class="bucket" data-index="{i}" data-comments-count="{}"><rect class="column" x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="transparent"{}>{}</rect>"#,
                c.comments,
                frame.x(i) - slot / 2.0,
                slot,
                frame.plot_height(),
                bucket.all.attributes(),
                bucket.all.tooltip()
            );
            let unscored = c.comments - c.negative - c.neutral - c.positive;
            let mut base = 0.0;
            for (class, count, color, target) in [
                ("negative", c.negative, NEGATIVE, &bucket.negative),
                ("neutral", c.neutral, NEUTRAL, &bucket.neutral),
                ("positive", c.positive, POSITIVE, &bucket.positive),
                ("unscored", unscored, UNSCORED, &bucket.all),
            ] {
                if count <= 0 {
                    continue;
                }
                let top = base + count as f64;
                let _ = write!(
                    svg,
                    r#"<rect class="{class}" x="{left:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="{color}"{}>{}</rect>"#,
                    frame.y(top),
                    frame.y(base) - frame.y(top),
                    target.attributes(),
                    target.tooltip()
                );
                base = top;
            }
            svg.push_str("</g>");
        }
        for spike in &self.spikes {
            let (x, y) = (frame.x(spike.peak), frame.y(self.buckets[spike.peak].counts.comments as f64) - 4.0);
            let _ = write!(
                svg,
                r#"<g class="spike" data-index="{}"{}><path d="M{:.1},{:.1} l-7,-11 h14 z" fill="{NEGATIVE}" stroke="white" stroke-width="1"/><rect x="{:.1}" y="{:.1}" width="20" height="18" fill="transparent"/>{}</g>"#,
                spike.peak,
                spike.target.attributes(),
                x,
                y,
                x - 10.0,
                y - 14.0,
                spike.target.tooltip()
            );
        }
        frame.legend(
            &mut svg,
            &[("negative", NEGATIVE), ("neutral", NEUTRAL), ("positive", POSITIVE), ("spike", "#fee2e2")],
        );
        svg.push_str("</svg>");
        svg
    }
}

/// The geometry shared by the charts: `n` x positions, y from `lo` to `hi`.
struct Frame {
    n: usize,
    lo: f64,
    hi: f64,
    /// Grid steps from `lo` to `hi`.
    ticks: u32,
    /// Positions in the middle of equal slots (bars) rather than from edge to edge (lines).
    centred: bool,
    width: f64,
}

impl Frame {
    fn plot_width(&self) -> f64 {
        self.width - LEFT - RIGHT
    }

    fn plot_height(&self) -> f64 {
        HEIGHT - TOP - BOTTOM
    }

    fn slot(&self) -> f64 {
        self.plot_width() / self.n.max(1) as f64
    }

    fn x(&self, i: usize) -> f64 {
        if self.centred {
            LEFT + self.slot() * (i as f64 + 0.5)
        } else if self.n > 1 {
            LEFT + self.plot_width() * i as f64 / (self.n - 1) as f64
        } else {
            LEFT + self.plot_width() / 2.0
        }
    }

    fn y(&self, v: f64) -> f64 {
        TOP + self.plot_height() * (1.0 - (v - self.lo) / (self.hi - self.lo).max(f64::EPSILON))
    }

    fn open(&self, title: &str, class: &str) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="{class}" viewBox="0 0 {w} {HEIGHT}" width="100%" role="img" aria-label="{t}" font-family="system-ui, sans-serif"><text class="chart-title" x="{LEFT}" y="17" font-size="13" font-weight="600">{t}</text>"#,
            w = self.width,
            t = escape(title)
        )
    }

    /// Grid lines with y labels, and up to eight x labels.
    fn axes(&self, svg: &mut String, x_labels: &[String], scale: Scale) {
        for k in 0..=self.ticks {
            let v = self.lo + (self.hi - self.lo) * f64::from(k) / f64::from(self.ticks.max(1));
            let y = self.y(v);
            let _ = write!(
                svg,
                r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{GRID}"/><text class="y-label" x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="{AXIS}">{}</text>"#,
                self.width - RIGHT,
                LEFT - 4.0,
                y + 3.0,
                scale.format(v)
            );
        }
        let step = x_labels.len().div_ceil(8).max(1);
        for (i, label) in x_labels.iter().enumerate().step_by(step) {
            let _ = write!(
                svg,
                r#"<text class="x-label" x="{:.1}" y="{}" font-size="10" text-anchor="middle" fill="{AXIS}">{}</text>"#,
                self.x(i),
                HEIGHT - BOTTOM + 14.0,
                escape(label)
            );
        }
    }

    /// Colour keys along the bottom edge.
    fn legend(&self, svg: &mut String, entries: &[(&str, &str)]) {
        let mut x = LEFT;
        for (name, color) in entries {
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{}" font-size="11">{}</text>"#,
                HEIGHT - 13.0,
                x + 14.0,
                HEIGHT - 4.0,
                escape(name)
            );
            x += 24.0 + 6.5 * name.chars().count().min(24) as f64;
        }
    }
}

/// A count axis up to at least `max`: (top, grid steps), in at most [`MAX_TICKS`] steps of 1, 2 or 5 × 10^k,
/// the finest such, so grid lines fall on whole, round numbers.
fn count_axis(max: f64) -> (f64, u32) {
    let max = max.max(1.0);
    let mut magnitude = 1.0;
    loop {
        for step in [magnitude, 2.0 * magnitude, 5.0 * magnitude] {
            let steps = (max / step).ceil();
            if steps <= f64::from(MAX_TICKS) {
                return (steps * step, steps as u32);
            }
        }
        magnitude *= 10.0;
    }
}

/// How bucket starts read on a chart axis, and in full in a tooltip.
pub(crate) fn time_formats(unit: Unit) -> (&'static str, &'static str) {
    match unit {
        Unit::Minute | Unit::Hour => ("%d %H:%M", "%a %d %b %H:%M"),
        Unit::Day => ("%b %d", "%a %d %b %Y"),
        Unit::Week => ("%b %d", "week of %d %b %Y"),
    }
}

fn local(t: DateTime<Utc>, time_zone: &str, format: &str) -> String {
    let tz: Tz = time_zone.parse().unwrap_or(Tz::UTC);
    t.with_timezone(&tz).format(format).to_string()
}

fn plural(n: i64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// A slice's volume by sentiment over its timeline, with its spikes: what `/v1/trends/spikes?format=svg` draws.
pub fn volume_svg(timeline: &Timeline, spikes: &[Spike]) -> String {
    let (tick, full) = time_formats(timeline.bucket);
    let tz = &timeline.time_zone;
    let ends: Vec<DateTime<Utc>> =
        timeline.points.iter().skip(1).map(|p| p.start).chain(std::iter::once(timeline.to)).collect();
    let buckets = timeline
        .points
        .iter()
        .zip(&ends)
        .map(|(p, &end)| {
            let when = local(p.start, tz, full);
            let c = p.counts;
            let target = |title: String, sentiment| Target::comments(title, &timeline.slice, p.start, end, sentiment);
            VolumeBucket {
                counts: c,
                all: target(
                    format!(
                        "{when}: {}, {} negative, {} neutral, {} positive",
                        plural(c.comments, "comment"),
                        c.negative,
                        c.neutral,
                        c.positive
                    ),
                    None,
                ),
                negative: target(
                    format!("{when}: {} negative of {}", c.negative, c.comments),
                    Some(SentimentLabel::Negative),
                ),
                neutral: target(
                    format!("{when}: {} neutral of {}", c.neutral, c.comments),
                    Some(SentimentLabel::Neutral),
                ),
                positive: target(
                    format!("{when}: {} positive of {}", c.positive, c.comments),
                    Some(SentimentLabel::Positive),
                ),
            }
        })
        .collect();
    let index = |t: DateTime<Utc>| timeline.points.iter().position(|p| p.start == t);
    // One mark per peak: a burst of complaints departs in volume and in negative share at once, and is one
    // event; its mark lists both and leads to all the peak's comments.
    let mut marks: Vec<SpikeMark> = Vec::new();
    for spike in spikes {
        let (Some(first), Some(peak)) = (index(spike.start), index(spike.peak)) else { continue };
        let last = first + spike.buckets.saturating_sub(1);
        let d = &spike.departure;
        let (what, sentiment) = match d.kind {
            SpikeKind::Volume => (format!("{:.0} comments against {:.0} usually", d.value, d.baseline), None),
            SpikeKind::NegativeShare => (
                format!("{:.0}% negative against {:.0}% usually", d.value * 100.0, d.baseline * 100.0),
                Some(SentimentLabel::Negative),
            ),
        };
        let what = format!("{what} (z = {:.1})", d.z);
        match marks.iter_mut().find(|m| m.peak == peak) {
            Some(mark) => {
                mark.first = mark.first.min(first);
                mark.last = mark.last.max(last);
                mark.target.title.push_str(&format!("; {what}"));
                if sentiment.is_none() {
                    let end = ends.get(peak).copied().unwrap_or(timeline.to);
                    mark.target = Target::comments(mark.target.title.clone(), &timeline.slice, spike.peak, end, None);
                }
            }
            None => {
                let end = ends.get(peak).copied().unwrap_or(timeline.to);
                let title = format!("Spike {}: {what}", local(spike.peak, tz, full));
                let target = Target::comments(title, &timeline.slice, spike.peak, end, sentiment);
                marks.push(SpikeMark { first, last, peak, target });
            }
        }
    }
    let title = format!("Comments per {} about {}, by sentiment", timeline.bucket.as_str(), timeline.label);
    VolumeChart {
        title: &title,
        x_labels: timeline.points.iter().map(|p| local(p.start, tz, tick)).collect(),
        buckets,
        spikes: marks,
    }
    .svg()
}

/// What a share-of-voice chart plots per slice and bucket (`share`, `net_sentiment`, `comments`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShareMeasure {
    /// The slice's share of the slices' comments.
    #[default]
    Share,
    /// Its net sentiment (positive − negative share).
    NetSentiment,
    Comments,
}

/// Slices compared bucket by bucket: what `/v1/trends/share?format=svg` draws.
pub fn share_svg(
    series: &[ShareSeries],
    unit: Unit,
    time_zone: &str,
    to: DateTime<Utc>,
    measure: ShareMeasure,
) -> String {
    let (tick, full) = time_formats(unit);
    let starts: Vec<DateTime<Utc>> =
        series.first().map(|s| s.points.iter().map(|p| p.start).collect()).unwrap_or_default();
    let ends: Vec<DateTime<Utc>> = starts.iter().skip(1).copied().chain(std::iter::once(to)).collect();
    let (title, scale, y_range) = match measure {
        ShareMeasure::Share => ("Share of voice", Scale::Percent, Some((0.0, 1.0))),
        ShareMeasure::NetSentiment => ("Net sentiment (positive − negative share)", Scale::Signed, Some((-1.0, 1.0))),
        ShareMeasure::Comments => ("Comments", Scale::Count, None),
    };
    let lines = series
        .iter()
        .map(|s| {
            let values: Vec<f64> = s
                .points
                .iter()
                .map(|p| match measure {
                    ShareMeasure::Share => p.share,
                    ShareMeasure::NetSentiment => p.net_sentiment.unwrap_or(f64::NAN),
                    ShareMeasure::Comments => p.comments as f64,
                })
                .collect();
            let targets = s
                .points
                .iter()
                .zip(&ends)
                .zip(&values)
                .map(|((p, &end), &v)| {
                    let title = format!(
                        "{} · {}: {} ({})",
                        s.label,
                        local(p.start, time_zone, full),
                        scale.format(v),
                        plural(p.comments, "comment")
                    );
                    Target::comments(title, &s.slice, p.start, end, None)
                })
                .collect();
            Series { name: s.label.clone(), values, targets }
        })
        .collect();
    LineChart {
        title,
        x_labels: starts.iter().map(|&t| local(t, time_zone, tick)).collect(),
        series: lines,
        marks: Vec::new(),
        y_range,
        scale,
    }
    .svg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_axes_step_by_round_numbers() {
        assert_eq!(count_axis(0.0), (1.0, 1));
        assert_eq!(count_axis(4.0), (4.0, 4));
        assert_eq!(count_axis(7.0), (8.0, 4));
        assert_eq!(count_axis(30.0), (30.0, 6));
        assert_eq!(count_axis(41.0), (50.0, 5));
        assert_eq!(count_axis(230.0), (250.0, 5));
        assert_eq!(count_axis(4100.0), (5000.0, 5));
    }

    #[test]
    fn targets_carry_an_escaped_examples_query() {
        let slice = Slice { tag: Some("a&b".into()), ..Slice::default() };
        let from = DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
        let target = Target::comments(
            "x <y>".into(),
            &slice,
            from,
            from + chrono::Duration::days(1),
            Some(SentimentLabel::Negative),
        );
        assert_eq!(
            target.comments.as_deref(),
            Some("tag=a%26b&from=2026-11-02T00%3A00%3A00Z&to=2026-11-03T00%3A00%3A00Z&sentiment=negative")
        );
        assert_eq!(
            target.attributes(),
            r#" data-comments="tag=a%26b&amp;from=2026-11-02T00%3A00%3A00Z&amp;to=2026-11-03T00%3A00%3A00Z&amp;sentiment=negative""#
        );
        assert_eq!(target.tooltip(), "<title>x &lt;y&gt;</title>");
    }

    #[test]
    fn volume_bars_stack_to_the_bucket_total() {
        let counts = Counts { comments: 10, negative: 2, neutral: 3, positive: 4 };
        let target = |t: &str| Target { title: t.into(), comments: Some(format!("q={t}")) };
        let chart = VolumeChart {
            title: "t",
            x_labels: vec!["a".into(), "b".into()],
            buckets: (0..2)
                .map(|_| VolumeBucket {
                    counts,
                    all: target("all"),
                    negative: target("neg"),
                    neutral: target("neu"),
                    positive: target("pos"),
                })
                .collect(),
            spikes: vec![SpikeMark { first: 1, last: 1, peak: 1, target: target("spike") }],
        };
        let svg = chart.svg();
        // 10 comments: the axis tops at 10 (steps of 2), and each bar's four segments (one unscored) fill it.
        assert!(svg.contains(r#">10</text>"#) && svg.contains(r#">2</text>"#), "{svg}");
        assert_eq!(svg.matches(r#"class="negative""#).count(), 2);
        assert_eq!(svg.matches(r#"class="unscored""#).count(), 2);
        assert_eq!(svg.matches(r#"<g class="spike""#).count(), 1);
        assert!(svg.contains(r#"data-comments="q=spike""#));
    }
}
