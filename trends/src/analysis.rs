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
    /// The median of the baseline.
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

/// Spikes in a series of buckets, in bucket order (volume before negative share within a bucket).
pub fn spikes(series: &[Counts], params: SpikeParams) -> Vec<Departure> {
    let mut out = Vec::new();
    let classified = |c: &Counts| c.negative + c.neutral + c.positive;
    for (i, bucket) in series.iter().enumerate() {
        let history = &series[i.saturating_sub(params.baseline)..i];
        if history.len() < MIN_BASELINE || bucket.comments < params.min_comments {
            continue;
        }
        let volumes: Vec<f64> = history.iter().map(|c| c.comments as f64).collect();
        let (m, mad) = robust(&volumes);
        let x = bucket.comments as f64;
        let z = (x - m) / mad.max(m.sqrt()).max(1.0);
        if z >= params.threshold {
            out.push(Departure { index: i, kind: SpikeKind::Volume, value: x, baseline: m, z });
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
        assert!(spikes(&series, SpikeParams::default()).is_empty());
        series.push(Counts { comments: 80, negative: 16, neutral: 16, positive: 48 });
        let found = spikes(&series, SpikeParams::default());
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].index, found[0].kind), (12, SpikeKind::Volume));
        assert!(found[0].z > 10.0, "{found:?}");
        // A perfectly flat history: the Poisson floor keeps an ordinary wobble quiet.
        let mut flat = volumes(&[20; 12]);
        flat.push(Counts { comments: 26, negative: 5, neutral: 5, positive: 16 });
        assert!(spikes(&flat, SpikeParams::default()).is_empty());
    }

    #[test]
    fn a_jump_in_negative_share_is_a_spike_of_its_own() {
        let mut series = volumes(&[50; 10]);
        series.push(Counts { comments: 52, negative: 40, neutral: 6, positive: 6 });
        let found = spikes(&series, SpikeParams::default());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, SpikeKind::NegativeShare);
        assert!((found[0].baseline - 0.2).abs() < 1e-9);
    }

    #[test]
    fn a_level_shift_is_one_episode_at_its_peak() {
        let mut series = volumes(&[0; 24]);
        series.extend(volumes(&[12, 14, 20, 13, 12]));
        let found = spikes(&series, SpikeParams::default());
        assert!(found.len() >= 4, "every bucket of the shift departs from a baseline of zeros: {found:?}");
        let merged = episodes(&found);
        assert_eq!(merged.len(), 1, "{merged:?}");
        assert_eq!((merged[0].first, merged[0].peak.index), (24, 26));
        assert_eq!(merged[0].peak.value, 20.0);
    }

    #[test]
    fn growth_scores_favour_volume_over_small_ratios() {
        assert!(trend_score(400, 200) > trend_score(6, 2));
        assert_eq!(trend_score(0, 0), 0.0);
        assert!(trend_score(5, 10) < 0.0);
    }
}
