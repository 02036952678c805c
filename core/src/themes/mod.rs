//! Themes: what comments talk about, found from their embeddings as they arrive (docs/themes.md).
//!
//! A [`Themer`] holds a window of the newest comments (key, embedding, words, theme). Each new comment joins
//! the nearest theme when it is close enough ([`Themer::observe`], a few microseconds); every so often
//! ([`Themer::due`]) the whole window is clustered again ([`Themer::recluster`], seeded from the themes'
//! centroids) and the new clusters are matched to the old themes by membership, so a theme keeps its id while
//! its topic lasts. A cluster that takes most of two themes' comments merges them (the larger keeps its id); a
//! theme whose comments go to two clusters splits (the larger part keeps the id, the other is born from it); a
//! theme with no comments left fades, and a new cluster whose centroid matches a faded theme revives it.
//! The themer is storage-free: the store runs it in one process at a time and records what it returns.

mod cluster;
mod keywords;

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use cluster::{cluster, dot, nearest, normalise, ClusterParams, Clustering};
pub use keywords::{distinctive_words, theme_words};

/// A theme's id: stable over re-clusterings (see the module's documentation).
pub type ThemeId = i64;

/// How themes are found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThemeOptions {
    /// Newest comments clustered together (memory: about 1.6 kB each at 384 dimensions).
    pub window: usize,
    /// New comments that make a re-clustering due; until the window first fills, a re-clustering is also due
    /// whenever the window has doubled since the last one.
    pub recluster_every: usize,
    /// A re-clustering is also due this long after the last one when any comment arrived since.
    pub recluster_interval: Duration,
    /// Comments the window needs before the first clustering.
    pub first_clustering: usize,
    /// A new cluster whose centroid is this similar to a faded theme's takes that theme's id again.
    pub revive: f32,
    /// Keywords kept per theme.
    pub keywords: usize,
    pub cluster: ClusterParams,
}

impl Default for ThemeOptions {
    fn default() -> Self {
        Self {
            window: 100_000,
            recluster_every: 20_000,
            recluster_interval: Duration::from_secs(600),
            first_clustering: 500,
            revive: 0.85,
            keywords: 8,
            cluster: ClusterParams::default(),
        }
    }
}

/// Whether a theme is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThemeStatus {
    /// Found in the last clustering; new comments join it.
    Active,
    /// Its comments went to another theme (`merged_into`).
    Merged,
    /// No comment of the window belongs to it any more.
    Faded,
}

impl ThemeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Merged => "merged",
            Self::Faded => "faded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Merged, Self::Faded].into_iter().find(|x| x.as_str() == s)
    }
}

/// A theme as the themer knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme<K> {
    pub id: ThemeId,
    /// Unit mean of its comments' embeddings at the last clustering.
    pub centroid: Vec<f32>,
    pub status: ThemeStatus,
    pub merged_into: Option<ThemeId>,
    /// Comments of the window in it at the last clustering.
    pub size: usize,
    /// Its most distinctive words, best first.
    pub keywords: Vec<String>,
    /// The comment nearest its centroid.
    pub representative: Option<K>,
}

impl<K> Theme<K> {
    /// A short label: its first three keywords.
    pub fn label(&self) -> String {
        self.keywords.iter().take(3).cloned().collect::<Vec<_>>().join(" · ")
    }
}

/// What happened to a theme in a re-clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum ThemeEvent {
    /// A cluster that matched no theme.
    Born { theme: ThemeId },
    /// Part of `from`'s comments became a theme of their own.
    Split { theme: ThemeId, from: ThemeId },
    /// `theme`'s comments went to `into`.
    Merged { theme: ThemeId, into: ThemeId },
    /// No comment of the window is in `theme` any more.
    Faded { theme: ThemeId },
    /// A cluster close to the faded `theme` took its id again.
    Revived { theme: ThemeId },
}

/// A comment of the window.
#[derive(Debug, Clone)]
struct Member<K> {
    key: K,
    embedding: Box<[f32]>,
    words: Box<str>,
    theme: Option<ThemeId>,
}

/// What a re-clustering changed: the comments whose theme changed (to record) and the themes' history.
#[derive(Debug, Clone, PartialEq)]
pub struct Reclustering<K> {
    pub changed: Vec<(K, Option<ThemeId>)>,
    pub events: Vec<ThemeEvent>,
}

/// The incremental theme finder (see the module's documentation).
#[derive(Debug)]
pub struct Themer<K> {
    options: ThemeOptions,
    window: VecDeque<Member<K>>,
    themes: Vec<Theme<K>>,
    next_id: ThemeId,
    arrived: usize,
    clustered_at: Option<(Instant, usize)>,
}

impl<K: Clone + Eq + Hash> Themer<K> {
    /// A themer that knows `themes` (as stored) and gives new themes ids from `next_id` on.
    pub fn new(options: ThemeOptions, themes: Vec<Theme<K>>, next_id: ThemeId) -> Self {
        let next_id = themes.iter().map(|t| t.id + 1).max().unwrap_or(1).max(next_id);
        Self { options, window: VecDeque::new(), themes, next_id, arrived: 0, clustered_at: None }
    }

    pub fn options(&self) -> &ThemeOptions {
        &self.options
    }

    /// Every theme known, active or not.
    pub fn themes(&self) -> &[Theme<K>] {
        &self.themes
    }

    /// Comments in the window.
    pub fn window_len(&self) -> usize {
        self.window.len()
    }

    /// Comments observed since the last clustering (given the nearest theme, not yet clustered with the rest).
    pub fn unclustered(&self) -> usize {
        self.arrived
    }

    /// Each comment of the window with its theme, oldest first.
    pub fn assignments(&self) -> impl Iterator<Item = (&K, Option<ThemeId>)> {
        self.window.iter().map(|m| (&m.key, m.theme))
    }

    /// The id the next new theme gets.
    pub fn next_id(&self) -> ThemeId {
        self.next_id
    }

    /// The active theme `embedding` (unit length) is close enough to join, if any.
    pub fn nearest_theme(&self, embedding: &[f32]) -> Option<ThemeId> {
        self.themes
            .iter()
            .filter(|t| t.status == ThemeStatus::Active)
            .map(|t| (t.id, dot(embedding, &t.centroid)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, s)| *s >= self.options.cluster.join)
            .map(|(id, _)| id)
    }

    /// Adds a comment already stored with `theme` (a restart reloading its window); the oldest leaves a full
    /// window.
    pub fn remember(&mut self, key: K, embedding: &[f32], text_words: String, theme: Option<ThemeId>) {
        if self.window.len() >= self.options.window.max(1) {
            self.window.pop_front();
        }
        self.window.push_back(Member { key, embedding: embedding.into(), words: text_words.into(), theme });
    }

    /// A new comment: its theme (the nearest active one, if close enough), remembered in the window.
    pub fn observe(&mut self, key: K, embedding: &[f32], text: &str) -> Option<ThemeId> {
        let theme = self.nearest_theme(embedding);
        self.remember(key, embedding, theme_words(text), theme);
        self.arrived += 1;
        theme
    }

    /// Whether the window should be clustered again now (see [`ThemeOptions`]).
    pub fn due(&self, now: Instant) -> bool {
        let o = &self.options;
        match self.clustered_at {
            None => self.window.len() >= o.first_clustering.max(1),
            Some((at, size)) => {
                self.arrived >= o.recluster_every
                    || (self.window.len() < o.window && self.window.len() >= 2 * size.max(1))
                    || (self.arrived > 0 && now.duration_since(at) >= o.recluster_interval)
            }
        }
    }

    /// Clusters the window again and matches the clusters to the themes (see the module's documentation).
    pub fn recluster(&mut self, now: Instant) -> Reclustering<K> {
        let points: Vec<&[f32]> = self.window.iter().map(|m| &*m.embedding).collect();
        let seeds: Vec<Vec<f32>> =
            self.themes.iter().filter(|t| t.status == ThemeStatus::Active).map(|t| t.centroid.clone()).collect();
        let found = cluster(&points, seeds, &self.options.cluster);
        let ids = self.match_clusters(&found);
        let mut events = ids.1;
        let ids = ids.0;

        // Keywords and representatives of the clusters.
        let mut docs: Vec<Vec<&str>> = vec![Vec::new(); found.centroids.len()];
        let mut best: Vec<Option<(usize, f32)>> = vec![None; found.centroids.len()];
        let mut sizes = vec![0usize; found.centroids.len()];
        for (i, (m, label)) in self.window.iter().zip(&found.labels).enumerate() {
            if let Some(c) = *label {
                docs[c].push(&m.words);
                sizes[c] += 1;
                let s = dot(&m.embedding, &found.centroids[c]);
                if best[c].is_none_or(|(_, b)| s > b) {
                    best[c] = Some((i, s));
                }
            }
        }
        let keywords = distinctive_words(&docs, self.options.keywords);
        let active: HashMap<ThemeId, usize> = ids.iter().enumerate().map(|(c, id)| (*id, c)).collect();
        for theme in &mut self.themes {
            if !active.contains_key(&theme.id) && theme.status == ThemeStatus::Active {
                theme.status = ThemeStatus::Faded;
            }
        }
        for (c, id) in ids.iter().enumerate() {
            let representative = best[c].map(|(i, _)| self.window[i].key.clone());
            let theme = Theme {
                id: *id,
                centroid: found.centroids[c].clone(),
                status: ThemeStatus::Active,
                merged_into: None,
                size: sizes[c],
                keywords: keywords[c].clone(),
                representative,
            };
            match self.themes.iter_mut().find(|t| t.id == *id) {
                Some(old) => *old = theme,
                None => self.themes.push(theme),
            }
        }
        for event in &events {
            if let ThemeEvent::Merged { theme, into } = event {
                if let Some(t) = self.themes.iter_mut().find(|t| t.id == *theme) {
                    t.status = ThemeStatus::Merged;
                    t.merged_into = Some(*into);
                    t.size = 0;
                }
            }
        }
        for t in &mut self.themes {
            if t.status == ThemeStatus::Faded && t.size > 0 && !active.contains_key(&t.id) {
                t.size = 0;
                events.push(ThemeEvent::Faded { theme: t.id });
            }
        }

        let mut changed = Vec::new();
        for (m, label) in self.window.iter_mut().zip(&found.labels) {
            let theme = label.map(|c| ids[c]);
            if m.theme != theme {
                m.theme = theme;
                changed.push((m.key.clone(), theme));
            }
        }
        self.arrived = 0;
        self.clustered_at = Some((now, self.window.len()));
        Reclustering { changed, events }
    }

    /// Each new cluster's theme id, and the births, merges, splits and revivals that gave them.
    fn match_clusters(&mut self, found: &Clustering) -> (Vec<ThemeId>, Vec<ThemeEvent>) {
        // Overlap of each cluster with each old theme, over the window's comments.
        let mut overlap: HashMap<(usize, ThemeId), usize> = HashMap::new();
        let mut old_size: HashMap<ThemeId, usize> = HashMap::new();
        let mut new_size = vec![0usize; found.centroids.len()];
        for (m, label) in self.window.iter().zip(&found.labels) {
            if let Some(t) = m.theme {
                *old_size.entry(t).or_default() += 1;
            }
            if let Some(c) = *label {
                new_size[c] += 1;
                if let Some(t) = m.theme {
                    *overlap.entry((c, t)).or_default() += 1;
                }
            }
        }
        let mut pairs: Vec<((usize, ThemeId), usize)> = overlap.iter().map(|(k, v)| (*k, *v)).collect();
        pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let significant = |c: usize, t: ThemeId, n: usize| {
            10 * n >= 3 * new_size[c] || 10 * n >= 3 * old_size.get(&t).copied().unwrap_or(0)
        };
        let mut ids: Vec<Option<ThemeId>> = vec![None; found.centroids.len()];
        let mut taken: HashMap<ThemeId, usize> = HashMap::new();
        for ((c, t), n) in &pairs {
            if ids[*c].is_none() && !taken.contains_key(t) && significant(*c, *t, *n) {
                ids[*c] = Some(*t);
                taken.insert(*t, *c);
            }
        }
        let mut events = Vec::new();
        // An old theme that lost its id-match but whose comments mostly went to a matched cluster merged.
        let mut merged: Vec<ThemeId> = old_size.keys().filter(|t| !taken.contains_key(t)).copied().collect();
        merged.sort_unstable();
        for t in merged {
            let share = pairs.iter().find(|((_, old), _)| *old == t);
            if let Some(((c, _), n)) = share {
                if let Some(into) = ids[*c] {
                    if 10 * n >= 3 * old_size[&t] {
                        events.push(ThemeEvent::Merged { theme: t, into });
                    }
                }
            }
        }
        // Unmatched clusters: split from an old theme, a faded theme back, or born.
        let unmatched: Vec<usize> = (0..ids.len()).filter(|c| ids[*c].is_none()).collect();
        for c in unmatched {
            let parent = pairs.iter().find(|((cc, t), n)| *cc == c && taken.contains_key(t) && significant(c, *t, *n));
            let revived = self
                .themes
                .iter()
                .filter(|t| t.status != ThemeStatus::Active && !taken.contains_key(&t.id))
                .map(|t| (t.id, dot(&t.centroid, &found.centroids[c])))
                .filter(|(_, s)| *s >= self.options.revive)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let id = match (parent, revived) {
                (None, Some((id, _))) => {
                    events.push(ThemeEvent::Revived { theme: id });
                    id
                }
                (Some(((_, from), _)), _) => {
                    let id = self.fresh_id();
                    events.push(ThemeEvent::Split { theme: id, from: *from });
                    id
                }
                (None, None) => {
                    let id = self.fresh_id();
                    events.push(ThemeEvent::Born { theme: id });
                    id
                }
            };
            taken.insert(id, c);
            ids[c] = Some(id);
        }
        (ids.into_iter().map(|id| id.unwrap_or_default()).collect(), events)
    }

    fn fresh_id(&mut self) -> ThemeId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Rng;

    const DIM: usize = 48;

    fn direction(rng: &mut Rng) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIM).map(|_| rng.normal()).collect();
        normalise(&mut v);
        v
    }

    fn near(centre: &[f32], spread: f32, rng: &mut Rng) -> Vec<f32> {
        let mut v: Vec<f32> = centre.iter().map(|x| x + spread * rng.normal()).collect();
        normalise(&mut v);
        v
    }

    fn options() -> ThemeOptions {
        ThemeOptions { window: 3_000, first_clustering: 100, ..ThemeOptions::default() }
    }

    /// Feeds `n` comments drawn from `topics` (centre, words) round robin; returns the ids given.
    fn feed(themer: &mut Themer<u64>, topics: &[(Vec<f32>, &str)], n: usize, key: &mut u64, rng: &mut Rng) {
        for i in 0..n {
            let (centre, words) = &topics[i % topics.len()];
            *key += 1;
            themer.observe(*key, &near(centre, 0.1, rng), &format!("{words} filler{}", rng.below(50)));
        }
    }

    fn theme_of(themer: &Themer<u64>, words: &str) -> Option<ThemeId> {
        themer.themes().iter().find(|t| t.status == ThemeStatus::Active && t.keywords[0] == words).map(|t| t.id)
    }

    #[test]
    fn a_stable_topic_keeps_its_id_over_three_reclusterings_and_a_new_one_is_born() {
        let mut rng = Rng::new(5);
        let topics: Vec<(Vec<f32>, &str)> =
            ["battery", "delivery", "refund"].iter().map(|w| (direction(&mut rng), *w)).collect();
        let mut themer = Themer::new(options(), Vec::new(), 1);
        let mut key = 0;
        feed(&mut themer, &topics, 600, &mut key, &mut rng);
        assert!(themer.due(Instant::now()));
        let first = themer.recluster(Instant::now());
        assert_eq!(first.events.iter().filter(|e| matches!(e, ThemeEvent::Born { .. })).count(), 3, "{first:?}");
        let battery = theme_of(&themer, "battery").expect("a battery theme");
        // Comments that arrive now join the themes at once.
        let joined = themer.observe(10_000, &near(&topics[0].0, 0.1, &mut rng), "battery dies");
        assert_eq!(joined, Some(battery));

        let wifi = (direction(&mut rng), "wifi");
        for round in 0..3 {
            let mut mix = topics.clone();
            if round == 1 {
                mix.push(wifi.clone());
            }
            feed(&mut themer, &mix, 1_200, &mut key, &mut rng);
            let again = themer.recluster(Instant::now());
            assert_eq!(theme_of(&themer, "battery"), Some(battery), "round {round}: {:?}", again.events);
            if round == 1 {
                let born: Vec<_> = again.events.iter().filter(|e| matches!(e, ThemeEvent::Born { .. })).collect();
                assert_eq!(born.len(), 1, "the new topic is one new theme: {:?}", again.events);
                assert!(theme_of(&themer, "wifi").is_some());
            } else if round == 2 {
                assert!(again.events.is_empty(), "nothing new happens to stable topics: {:?}", again.events);
            }
        }
        assert!(themer.window_len() <= 3_000, "the window is bounded");
    }

    #[test]
    fn two_topics_that_become_one_merge_and_the_larger_keeps_its_id() {
        let mut rng = Rng::new(11);
        let a = direction(&mut rng);
        let b = direction(&mut rng);
        let mut themer = Themer::new(options(), Vec::new(), 1);
        let mut key = 0;
        feed(&mut themer, &[(a.clone(), "alpha"), (a.clone(), "alpha"), (b.clone(), "beta")], 900, &mut key, &mut rng);
        themer.recluster(Instant::now());
        let (alpha, beta) = (theme_of(&themer, "alpha").expect("alpha"), theme_of(&themer, "beta").expect("beta"));
        // The window's comments are moved onto one direction: as if both topics were one from the start.
        let mut middle: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        normalise(&mut middle);
        for m in &mut themer.window {
            m.embedding = near(&middle, 0.1, &mut rng).into();
        }
        let merged = themer.recluster(Instant::now());
        assert!(merged.events.contains(&ThemeEvent::Merged { theme: beta, into: alpha }), "{:?}", merged.events);
        let beta_now = themer.themes().iter().find(|t| t.id == beta).expect("beta is kept");
        assert_eq!((beta_now.status, beta_now.merged_into), (ThemeStatus::Merged, Some(alpha)));
        assert!(themer.nearest_theme(&middle) == Some(alpha));
    }
}
