//! One clustering of a window of unit-length embeddings: spherical k-means with more clusters than topics
//! (seeded from the themes already known, so a re-clustering starts where the last one ended), then
//! agglomerative merging of clusters whose centroids are close, then pruning (a comment far from every centroid,
//! or in a cluster too small to be a theme, belongs to none). Over-cluster-then-merge finds topics of very
//! different sizes without being told how many there are, which plain k-means cannot; see docs/themes.md for
//! the measurements that chose it.

use crate::hash::Rng;

/// How a window is clustered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterParams {
    /// Comments per k-means cluster before merging (the window's size over this is k).
    pub comments_per_seed: usize,
    /// The most k-means clusters, whatever the window's size.
    pub max_seeds: usize,
    /// Lloyd iterations at most (fewer once under 1% of comments move).
    pub iterations: usize,
    /// Clusters whose centroids' cosine similarity is at least this are merged.
    pub merge: f32,
    /// A comment whose cosine similarity to its theme's centroid is below this belongs to no theme.
    pub join: f32,
    /// Fewer members than this is no theme.
    pub min_size: usize,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self { comments_per_seed: 150, max_seeds: 256, iterations: 10, merge: 0.65, join: 0.3, min_size: 15 }
    }
}

/// The clusters found: unit centroids, each point's cluster (`None`: no theme) and each cluster's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    pub centroids: Vec<Vec<f32>>,
    pub labels: Vec<Option<usize>>,
}

/// Dot product of two equal-length vectors, in independent lanes so the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 1e-12 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The nearest centroid to `point` and its cosine similarity (`None` when there are no centroids).
pub fn nearest(point: &[f32], centroids: &[Vec<f32>]) -> Option<(usize, f32)> {
    centroids.iter().map(|c| dot(point, c)).enumerate().max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Each point's nearest centroid and similarity, on every core.
fn assign(points: &[&[f32]], centroids: &[Vec<f32>]) -> Vec<(usize, f32)> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(points.len().div_ceil(2_000)).max(1);
    let chunk = points.len().div_ceil(threads).max(1);
    let mut out = vec![(0, f32::MIN); points.len()];
    std::thread::scope(|scope| {
        for (points, out) in points.chunks(chunk).zip(out.chunks_mut(chunk)) {
            scope.spawn(move || {
                for (p, o) in points.iter().zip(out) {
                    *o = nearest(p, centroids).unwrap_or((0, f32::MIN));
                }
            });
        }
    });
    out
}

/// Unit means of the points of each cluster; a cluster without points keeps `previous`.
fn means(points: &[&[f32]], labels: &[Option<usize>], previous: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<usize>) {
    let dim = previous.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0.0f32; dim]; previous.len()];
    let mut sizes = vec![0usize; previous.len()];
    for (p, label) in points.iter().zip(labels) {
        if let Some(c) = *label {
            sums[c].iter_mut().zip(p.iter()).for_each(|(s, x)| *s += x);
            sizes[c] += 1;
        }
    }
    for ((sum, size), prev) in sums.iter_mut().zip(&sizes).zip(previous) {
        if *size == 0 {
            sum.clone_from(prev);
        } else {
            normalise(sum);
        }
    }
    (sums, sizes)
}

/// k-means++ seeding on top of `seeds`: each new seed drawn with probability proportional to its distance
/// from the nearest seed so far (`1 - cos`), from a fixed-seed generator so a clustering repeats.
fn seed(points: &[&[f32]], mut seeds: Vec<Vec<f32>>, k: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    if points.is_empty() {
        return seeds;
    }
    let mut distance: Vec<f32> = if seeds.is_empty() {
        seeds.push(points[rng.below(points.len())].to_vec());
        points.iter().map(|p| 1.0 - dot(p, &seeds[0])).collect()
    } else {
        assign(points, &seeds).iter().map(|(_, s)| 1.0 - s).collect()
    };
    while seeds.len() < k {
        let total: f64 = distance.iter().map(|d| f64::from(d.max(0.0))).sum();
        if total <= 1e-9 {
            break;
        }
        let mut target = rng.unit() * total;
        let mut chosen = points.len() - 1;
        for (i, d) in distance.iter().enumerate() {
            target -= f64::from(d.max(0.0));
            if target <= 0.0 {
                chosen = i;
                break;
            }
        }
        let new = points[chosen].to_vec();
        for (d, p) in distance.iter_mut().zip(points) {
            *d = d.min(1.0 - dot(p, &new));
        }
        seeds.push(new);
    }
    seeds
}

/// Merges the closest pair of clusters (centroid linkage, size-weighted) while their similarity is at least
/// `threshold`; returns the merged centroids and, for each input cluster, its merged cluster.
fn merge(centroids: &[Vec<f32>], sizes: &[usize], threshold: f32) -> (Vec<Vec<f32>>, Vec<usize>) {
    let mut alive: Vec<Option<(Vec<f32>, usize)>> =
        centroids.iter().zip(sizes).map(|(c, s)| (*s > 0).then(|| (c.clone(), *s))).collect();
    let mut parent: Vec<usize> = (0..centroids.len()).collect();
    loop {
        let mut best: Option<(usize, usize, f32)> = None;
        for i in 0..alive.len() {
            let Some((ci, _)) = &alive[i] else { continue };
            for (j, other) in alive.iter().enumerate().skip(i + 1) {
                let Some((cj, _)) = other else { continue };
                let s = dot(ci, cj);
                if s >= threshold && best.is_none_or(|b| s > b.2) {
                    best = Some((i, j, s));
                }
            }
        }
        let Some((i, j, _)) = best else { break };
        let (cj, sj) = alive[j].take().unwrap_or_default();
        if let Some((ci, si)) = alive[i].as_mut() {
            let (wi, wj) = (*si as f32, sj as f32);
            ci.iter_mut().zip(&cj).for_each(|(a, b)| *a = *a * wi + b * wj);
            normalise(ci);
            *si += sj;
        }
        parent.iter_mut().filter(|p| **p == j).for_each(|p| *p = i);
    }
    let mut index = vec![usize::MAX; alive.len()];
    let mut out = Vec::new();
    for (i, a) in alive.into_iter().enumerate() {
        if let Some((c, _)) = a {
            index[i] = out.len();
            out.push(c);
        }
    }
    (out, parent.iter().map(|p| index[*p]).collect())
}

/// Clusters `points` (unit vectors), starting from `seeds` (the known themes' centroids).
pub fn cluster(points: &[&[f32]], seeds: Vec<Vec<f32>>, params: &ClusterParams) -> Clustering {
    if points.is_empty() {
        return Clustering { centroids: Vec::new(), labels: Vec::new() };
    }
    // A window too small for two seeds by size (a new deployment's first comments) still gets as many as it
    // could hold themes (up to 8), so that merging, not k, decides how many there are.
    let by_seed = points.len() / params.comments_per_seed.max(1);
    let by_size = if by_seed < 2 { (points.len() / params.min_size.max(1)).clamp(1, 8) } else { by_seed };
    let k = by_size.clamp(1, params.max_seeds.max(1)).max(seeds.len().min(params.max_seeds));
    let mut rng = Rng::new(points.len() as u64);
    let mut seeds = seeds;
    seeds.truncate(k);
    let mut centroids = seed(points, seeds, k, &mut rng);
    let mut labels: Vec<Option<usize>> = vec![None; points.len()];
    for _ in 0..params.iterations {
        let nearest = assign(points, &centroids);
        let moved = nearest.iter().zip(&labels).filter(|((c, _), l)| **l != Some(*c)).count();
        labels = nearest.iter().map(|(c, _)| Some(*c)).collect();
        centroids = means(points, &labels, &centroids).0;
        if moved * 100 < points.len() {
            break;
        }
    }
    let sizes = means(points, &labels, &centroids).1;
    let (merged, into) = merge(&centroids, &sizes, params.merge);
    labels.iter_mut().for_each(|l| *l = l.map(|c| into[c]));
    let mut centroids = means(points, &labels, &merged).0;
    // Prune: too far from every centroid, or in a cluster too small; then the survivors' centroids again.
    for _ in 0..2 {
        let nearest = assign(points, &centroids);
        let mut sizes = vec![0usize; centroids.len()];
        labels = nearest.iter().map(|(c, s)| (*s >= params.join).then_some(*c)).collect();
        labels.iter().flatten().for_each(|c| sizes[*c] += 1);
        let keep: Vec<usize> = (0..centroids.len()).filter(|c| sizes[*c] >= params.min_size).collect();
        let (recomputed, _) = means(points, &labels, &centroids);
        centroids = keep.iter().map(|c| recomputed[*c].clone()).collect();
    }
    let labels = assign(points, &centroids).iter().map(|(c, s)| (*s >= params.join).then_some(*c)).collect();
    Clustering { centroids, labels }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `groups` topics of `each` points around random unit directions, with noise `spread`.
    pub(crate) fn planted(
        groups: usize,
        each: usize,
        dim: usize,
        spread: f32,
        seed: u64,
    ) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let centres: Vec<Vec<f32>> = (0..groups)
            .map(|_| {
                let mut v: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
                normalise(&mut v);
                v
            })
            .collect();
        let mut points = Vec::new();
        let mut truth = Vec::new();
        for i in 0..groups * each {
            let g = i % groups;
            let mut v: Vec<f32> = centres[g].iter().map(|x| x + spread * rng.normal()).collect();
            normalise(&mut v);
            points.push(v);
            truth.push(g);
        }
        (points, truth)
    }

    #[test]
    fn planted_topics_come_back_as_one_cluster_each_and_noise_as_none() {
        let (mut points, truth) = planted(5, 300, 64, 0.08, 3);
        let mut rng = Rng::new(9);
        // 100 points in random directions: near no topic.
        for _ in 0..100 {
            let mut v: Vec<f32> = (0..64).map(|_| rng.normal()).collect();
            normalise(&mut v);
            points.push(v);
        }
        let refs: Vec<&[f32]> = points.iter().map(Vec::as_slice).collect();
        let found = cluster(&refs, Vec::new(), &ClusterParams::default());
        let sizes: Vec<usize> =
            (0..found.centroids.len()).map(|c| found.labels.iter().filter(|l| **l == Some(c)).count()).collect();
        assert_eq!(found.centroids.len(), 5, "one cluster per planted topic: {sizes:?}");
        for g in 0..5 {
            let labels: std::collections::HashSet<_> =
                truth.iter().zip(&found.labels).filter(|(t, _)| **t == g).map(|(_, l)| *l).collect();
            assert_eq!(labels.len(), 1, "topic {g} is one cluster: {labels:?}");
            assert!(labels.iter().all(Option::is_some));
        }
        assert!(found.labels[1500..].iter().filter(|l| l.is_none()).count() >= 95, "random points join no topic");
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
