//! The statistics behind spikes and trending entities.
//!
//! **Spikes** — a bucket is compared with the `baseline` buckets before it by a robust z-score:
//! `z = (x − median) / scale`, where `scale = max(1.4826 · MAD, noise floor)`. 1.4826 · MAD (median absolute
//! deviation) estimates the standard deviation without letting earlier spikes inflate it; the floor is the
//! sampling noise a count or a share has anyway (√median for a count, as for a Poisson variable;
//! √(p(1−p)/n) for a share of n comments), so a perfectly flat history does not turn every wobble into a
//! spike. A bucket departs when z ≥ `threshold` (3.5, Iglewicz and Hoaglin's cut-off) and it holds at least
//! `min_comments` comments. Two series are watched: volume, and the share of negative comments. Consecutive
//! departing buckets of one kind are one spike (an episode), reported by its peak: a level shift departs for
//! several buckets until the median catches up, and is one event to a reader.
//!
//! **Rhythm** — comment volume has a daily rhythm (quiet mornings, busy evenings) and a weekly one, so for
//! hour buckets the volume is compared with what the bucket's phase usually holds, not with the hours just
//! before it: the expected count is the median of the same hour on the previous days ([`Season`]: up to 7)
//! plus the median residual (actual − seasonal median) of the `baseline` buckets before where positive
//! (recent growth; a recent lull such as a weekend does not lower the bar), and the scale is 1.4826 · the
//! MAD of those residuals (floored by √expected). Day buckets do the same with the same weekday
//! of previous weeks. A busy evening is then judged against earlier evenings: it no longer departs, while a
//! burst on top of it still does. Buckets with fewer than 3 earlier cycles fall back to the plain baseline.
//! The negative share has no strong rhythm and keeps the plain baseline.
//!
//! **Trending** — an entity's mentions in the window (c) against the window of the same length before it
//! (p): `score = (c − p) / √(c + p)`, the z-score of the difference of two Poisson counts, so a jump from 2 to
//! 6 mentions does not outrank one from 200 to 400; only entities with at least `min_mentions` mentions now
//! and more than before are listed. `growth = c / p − 1` is shown beside it (absent when p = 0).

use murmur_store::Counts;
use serde::{Deserialize, Serialize};

/// 1 / Φ⁻¹(3/4): makes the MAD of normal data estimate its standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;
/// Fewest earlier buckets a spike is judged against.
const MIN_BASELINE: usize = 4;
/// Fewest earlier cycles a seasonal expectation is made of.
const MIN_CYCLES: usize = 3;

/// A rhythm of the series: buckets per cycle, and how many earlier cycles a bucket is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Season {
    pub period: usize,
    pub cycles: usize,
}

impl Season {
    /// The median of the buckets at the same phase as bucket `i` in the earlier cycles, when there are enough.
    fn expected(self, series: &[Counts], i: usize) -> Option<f64> {
        let mut same_phase: Vec<f64> = (1..=self.cycles)
            .map_while(|k| i.checked_sub(k * self.period))
            .map(|j| series[j].comments as f64)
            .collect();
        (same_phase.len() >= MIN_CYCLES).then(|| median(&mut same_phase))
    }

    /// Buckets of history the seasonal comparison of the first bucket needs: every cycle, then a baseline.
    pub fn history(self, baseline: usize) -> usize {
        self.period * self.cycles + baseline
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SpikeParams {
    /// Earlier buckets each bucket is compared with.
    pub baseline: usize,
    /// Robust z-score from which a bucket is a spike.
    pub threshold: f64,
    /// Fewest comments in a spike bucket (and in the buckets a negative share is computed from).
    pub min_comments: i64,
}

impl Default for SpikeParams {
    fn default() -> Self {
        Self { baseline: 24, threshold: 3.5, min_comments: 10 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpikeKind {
    /// Many more comments than usual.
    Volume,
    /// A larger share of negative comments than usual.
    NegativeShare,
}

/// A bucket that departs from its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Departure {
    /// Index of the bucket in the series.
    #[serde(skip)]
    pub index: usize,
    pub kind: SpikeKind,
    /// The bucket's comments or negative share.
    pub value: f64,
    /// What the bucket was expected to hold: the median of the baseline, or the seasonal expectation.
    pub baseline: f64,
    pub z: f64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Median and scale (1.4826 · MAD) of a baseline.
fn robust(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    let m = median(&mut v);
    let mut deviations: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    (m, MAD_TO_SIGMA * median(&mut deviations))
}

/// What bucket `i`'s volume is expected to be and the scale of its usual departures: from the same phase of
/// earlier cycles where `season` has enough of them, else from the `baseline` buckets before it.
fn volume_expectation(series: &[Counts], i: usize, baseline: usize, season: Option<Season>) -> Option<(f64, f64)> {
    let window = i.saturating_sub(baseline)..i;
    if let Some((season, seasonal)) = season.and_then(|s| s.expected(series, i).map(|e| (s, e))) {
        let residuals: Vec<f64> =
            window.clone().filter_map(|j| season.expected(series, j).map(|e| series[j].comments as f64 - e)).collect();
        if residuals.len() >= MIN_BASELINE {
            // Recent growth raises the bar; a recent lull (a weekend) never lowers it below the usual level,
            // or the Monday after it would depart.
            let (level, mad) = robust(&residuals);
            return Some((seasonal + level.max(0.0), mad));
        }
    }
    let volumes: Vec<f64> = series[window].iter().map(|c| c.comments as f64).collect();
    (volumes.len() >= MIN_BASELINE).then(|| robust(&volumes))
}

/// Spikes in a series of buckets, in bucket order (volume before negative share within a bucket); `season`
/// is the series' rhythm, where it has one (see the module docs).
pub fn spikes(series: &[Counts], params: SpikeParams, season: Option<Season>) -> Vec<Departure> {
    let mut out = Vec::new();
    let classified = |c: &Counts| c.negative + c.neutral + c.positive;
    for (i, bucket) in series.iter().enumerate() {
        let history = &series[i.saturating_sub(params.baseline)..i];
        if history.len() < MIN_BASELINE || bucket.comments < params.min_comments {
            continue;
        }
        if let Some((m, mad)) = volume_expectation(series, i, params.baseline, season) {
            let x = bucket.comments as f64;
            let z = (x - m) / mad.max(m.sqrt()).max(1.0);
            if z >= params.threshold {
                out.push(Departure { index: i, kind: SpikeKind::Volume, value: x, baseline: m, z });
            }
        }
        let shares: Vec<f64> = history
            .iter()
            .filter(|c| classified(c) >= params.min_comments)
            .filter_map(Counts::negative_share)
            .collect();
        let (Some(share), true) = (bucket.negative_share(), shares.len() >= MIN_BASELINE) else { continue };
        if classified(bucket) < params.min_comments {
            continue;
        }
        let (m, mad) = robust(&shares);
        let noise = (m * (1.0 - m) / classified(bucket) as f64).sqrt();
        let z = (share - m) / mad.max(noise).max(0.01);
        if z >= params.threshold {
            out.push(Departure { index: i, kind: SpikeKind::NegativeShare, value: share, baseline: m, z });
        }
    }
    out
}

/// The departures of buckets `first..` of a series whose earlier buckets are history only. Empty buckets
/// before the series' first comment are no history: a series that starts in the window (a new brand, a new
/// deployment) is judged as it goes, not as a jump from nothing.
pub fn spikes_from(series: &[Counts], first: usize, params: SpikeParams, season: Option<Season>) -> Vec<Departure> {
    let start = series.iter().position(|c| c.comments > 0).unwrap_or(first).min(first);
    spikes(&series[start..], params, season)
        .into_iter()
        .map(|d| Departure { index: d.index + start, ..d })
        .filter(|d| d.index >= first)
        .collect()
}

/// A run of consecutive departing buckets of one kind (a level shift departs for several buckets until the
/// baseline catches up): reported as one spike, by its peak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    pub first: usize,
    pub last: usize,
    /// The bucket of the run with the highest z.
    pub peak: Departure,
}

/// Departing buckets grouped into episodes, in order of their first bucket.
pub fn episodes(departures: &[Departure]) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    for d in departures {
        let open = out.iter_mut().rev().find(|e| e.peak.kind == d.kind && e.last + 1 == d.index);
        match open {
            Some(e) => {
                e.last = d.index;
                if d.z > e.peak.z {
                    e.peak = *d;
                }
            }
            None => out.push(Episode { first: d.index, last: d.index, peak: *d }),
        }
    }
    out.sort_by_key(|e| (e.first, e.peak.kind == SpikeKind::NegativeShare));
    out
}

/// How strongly a count grew from `previous` to `current` (see the module docs).
pub fn trend_score(current: i64, previous: i64) -> f64 {
    let (c, p) = (current as f64, previous as f64);
    if c + p == 0.0 {
        0.0
    } else {
        (c - p) / (c + p).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volumes(v: &[i64]) -> Vec<Counts> {
        v.iter().map(|&n| Counts { comments: n, negative: n / 5, neutral: n / 5, positive: n - 2 * (n / 5) }).collect()
    }

    #[test]
    fn a_planted_spike_is_found_and_a_flat_series_has_none() {
        let mut series = volumes(&[20, 22, 19, 21, 20, 23, 18, 20, 21, 19, 22, 20]);
        assert!(spikes(&series, SpikeParams::default(), None).is_empty());
        series.push(Counts { comments: 80, negative: 16, neutral: 16, positive: 48 });
        let found = spikes(&series, SpikeParams::default(), None);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].index, found[0].kind), (12, SpikeKind::Volume));
        assert!(found[0].z > 10.0, "{found:?}");
        // A perfectly flat history: the Poisson floor keeps an ordinary wobble quiet.
        let mut flat = volumes(&[20; 12]);
        flat.push(Counts { comments: 26, negative: 5, neutral: 5, positive: 16 });
        assert!(spikes(&flat, SpikeParams::default(), None).is_empty());
    }

    #[test]
    fn a_jump_in_negative_share_is_a_spike_of_its_own() {
        let mut series = volumes(&[50; 10]);
        series.push(Counts { comments: 52, negative: 40, neutral: 6, positive: 6 });
        let found = spikes(&series, SpikeParams::default(), None);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, SpikeKind::NegativeShare);
        assert!((found[0].baseline - 0.2).abs() < 1e-9);
    }

    #[test]
    fn a_level_shift_is_one_episode_at_its_peak() {
        let mut series = volumes(&[0; 24]);
        series.extend(volumes(&[12, 14, 20, 13, 12]));
        let found = spikes(&series, SpikeParams::default(), None);
        assert!(found.len() >= 4, "every bucket of the shift departs from a baseline of zeros: {found:?}");
        let merged = episodes(&found);
        assert_eq!(merged.len(), 1, "{merged:?}");
        assert_eq!((merged[0].first, merged[0].peak.index), (24, 26));
        assert_eq!(merged[0].peak.value, 20.0);
    }

    /// Hourly volume with a daily rhythm (busy evenings, quiet mornings, a rush at 21h when a daily show airs,
    /// weekends quieter) and a little deterministic noise.
    fn rhythm(days: usize) -> Vec<i64> {
        let mut noise = murmur_core::hash::Rng::new(7);
        (0..days * 24)
            .map(|h| {
                let hour = (h % 24) as f64;
                let rush = if h % 24 == 21 { 3.0 } else { 1.0 };
                let daily = rush * (0.55 + 0.45 * ((hour - 19.0) / 24.0 * std::f64::consts::TAU).cos());
                let weekly = if (h / 24) % 7 >= 5 { 0.7 } else { 1.0 };
                let base = 60.0 * daily * weekly;
                (base + (noise.below(9) as f64 - 4.0) * base.sqrt() / 3.0).round() as i64
            })
            .collect()
    }

    #[test]
    fn a_daily_rhythm_is_not_a_spike_but_a_burst_on_top_of_it_is() {
        let daily = Some(Season { period: 24, cycles: 7 });
        let series = volumes(&rhythm(14));
        let second_week = |found: Vec<Departure>| -> Vec<usize> {
            found.into_iter().filter(|d| d.kind == SpikeKind::Volume && d.index >= 7 * 24).map(|d| d.index).collect()
        };
        // Against the hours just before, the daily rush departs every day; against earlier days, it does not.
        assert!(second_week(spikes(&series, SpikeParams::default(), None)).len() >= 5, "the plain baseline fires");
        assert_eq!(second_week(spikes(&series, SpikeParams::default(), daily)), Vec::<usize>::new());
        // A burst doubling one evening hour, and one at a quiet morning hour, are found.
        let mut bursts = rhythm(14);
        let (evening, morning) = (9 * 24 + 19, 13 * 24 + 7);
        bursts[evening] *= 2;
        bursts[morning] += 40;
        let found = second_week(spikes(&volumes(&bursts), SpikeParams::default(), daily));
        assert_eq!(found, vec![evening, morning]);
        // Without three earlier days, the plain baseline decides.
        assert_eq!(daily.and_then(|s| s.expected(&series, 47)), None);
        assert!(daily.and_then(|s| s.expected(&series, 72)).is_some());
    }

    #[test]
    fn growth_scores_favour_volume_over_small_ratios() {
        assert!(trend_score(400, 200) > trend_score(6, 2));
        assert_eq!(trend_score(0, 0), 0.0);
        assert!(trend_score(5, 10) < 0.0);
    }
}
