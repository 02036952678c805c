//! A generation's two vector spaces: the English encoder's vectors (every comment the heads read) and the
//! multilingual encoder's (comments in a language the heads never learned, where the worker runs one), each in
//! its own file and graph. A document's `vec_id` names its space and its record: the multilingual space's ids
//! carry [`MULTILINGUAL_BIT`]. A query embedded by both encoders searches both; the multilingual hits are put
//! on the English space's scale (how far each stands above its own space's similarities to the query, in
//! standard deviations) so that one ranking holds both.

use std::path::{Path, PathBuf};

use crate::vectors::{Bitset, GraphStatus, HnswParams, Neighbour, VectorLog, VectorStore};
use crate::SearchError;

/// Set in the `vec_id` of a multilingual record (record numbers stay far below it).
const MULTILINGUAL_BIT: u64 = 1 << 40;
/// Allowed vectors compared with the query to learn a space's background similarity.
const BACKGROUND_SAMPLE: usize = 512;
/// Below this many allowed vectors a space's background is not estimated, and its similarities are kept as
/// they are.
const BACKGROUND_MIN: usize = 8;

/// Which encoder a vector comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    Encoder,
    Multilingual,
}

impl Space {
    pub const ALL: [Space; 2] = [Space::Encoder, Space::Multilingual];

    fn dir(self, generation: &Path) -> PathBuf {
        generation.join(match self {
            Space::Encoder => "vectors",
            Space::Multilingual => "vectors-multilingual",
        })
    }

    /// The `vec_id` a document carries for record `record` of this space.
    pub fn vec_id(self, record: u64) -> u64 {
        match self {
            Space::Encoder => record,
            Space::Multilingual => record | MULTILINGUAL_BIT,
        }
    }

    /// The space and record a `vec_id` names.
    pub fn of(vec_id: u64) -> (Space, u64) {
        if vec_id & MULTILINGUAL_BIT == 0 {
            (Space::Encoder, vec_id)
        } else {
            (Space::Multilingual, vec_id & !MULTILINGUAL_BIT)
        }
    }
}

/// Records allowed in a search, per space.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpaceIds {
    encoder: Bitset,
    multilingual: Bitset,
}

impl SpaceIds {
    pub fn insert(&mut self, vec_id: u64) {
        let (space, record) = Space::of(vec_id);
        self.get_mut(space).insert(record);
    }

    pub fn union(&mut self, other: &SpaceIds) {
        self.encoder.union(&other.encoder);
        self.multilingual.union(&other.multilingual);
    }

    /// Allowed documents with a vector, in both spaces.
    pub fn len(&self) -> usize {
        self.encoder.len() + self.multilingual.len()
    }

    pub fn get(&self, space: Space) -> &Bitset {
        match space {
            Space::Encoder => &self.encoder,
            Space::Multilingual => &self.multilingual,
        }
    }

    fn get_mut(&mut self, space: Space) -> &mut Bitset {
        match space {
            Space::Encoder => &mut self.encoder,
            Space::Multilingual => &mut self.multilingual,
        }
    }
}

/// The writer's end of both spaces.
pub(crate) struct SpaceLogs {
    encoder: VectorLog,
    multilingual: VectorLog,
}

impl SpaceLogs {
    pub fn open(generation: &Path) -> Result<Self, SearchError> {
        Ok(Self {
            encoder: VectorLog::open(&Space::Encoder.dir(generation))?,
            multilingual: VectorLog::open(&Space::Multilingual.dir(generation))?,
        })
    }

    fn get_mut(&mut self, space: Space) -> &mut VectorLog {
        match space {
            Space::Encoder => &mut self.encoder,
            Space::Multilingual => &mut self.multilingual,
        }
    }

    /// Buffers `vector` of `model` in `space` and returns the `vec_id` its document carries; `None` when the
    /// space holds another encoder's vectors (the document is then found by its words only).
    pub fn append(&mut self, space: Space, vector: &[f32], model: &str) -> Result<Option<u64>, SearchError> {
        let log = self.get_mut(space);
        if !log.accepts(model) {
            return Ok(None);
        }
        Ok(Some(space.vec_id(log.append(vector, model)?)))
    }

    pub fn sync(&mut self) -> Result<(), SearchError> {
        self.encoder.sync()?;
        self.multilingual.sync()
    }

    pub fn rollback(&mut self) -> Result<(), SearchError> {
        self.encoder.rollback()?;
        self.multilingual.rollback()
    }
}

/// The reader's end of both spaces.
pub(crate) struct SpaceStores {
    encoder: VectorStore,
    multilingual: VectorStore,
}

impl SpaceStores {
    pub fn open(generation: &Path, params: HnswParams) -> Result<Self, SearchError> {
        Ok(Self {
            encoder: VectorStore::open(&Space::Encoder.dir(generation), params)?,
            multilingual: VectorStore::open(&Space::Multilingual.dir(generation), params)?,
        })
    }

    pub fn get(&self, space: Space) -> &VectorStore {
        match space {
            Space::Encoder => &self.encoder,
            Space::Multilingual => &self.multilingual,
        }
    }

    /// Inserts new vectors into the graphs (`parallel`: on every core).
    pub fn refresh(&self, parallel: bool) -> Result<(), SearchError> {
        for space in Space::ALL {
            self.get(space).refresh(parallel)?;
        }
        Ok(())
    }

    pub fn snapshot(&self) -> Result<(), SearchError> {
        for space in Space::ALL {
            self.get(space).snapshot()?;
        }
        Ok(())
    }

    /// Takes the vectors of gone documents out of the graphs (`alive`: the vectors of live documents).
    pub fn prune(&self, alive: &SpaceIds) -> Result<usize, SearchError> {
        let mut pruned = 0;
        for space in Space::ALL {
            pruned += self.get(space).prune(alive.get(space))?;
        }
        Ok(pruned)
    }

    /// Both spaces' graphs together: ready when both are.
    pub fn status(&self) -> GraphStatus {
        Space::ALL.iter().map(|&s| self.get(s).status()).fold(
            GraphStatus { ready: true, ..GraphStatus::default() },
            |a, b| GraphStatus {
                stored: a.stored + b.stored,
                in_graph: a.in_graph + b.in_graph,
                removed: a.removed + b.removed,
                ready: a.ready && b.ready,
                memory: a.memory + b.memory,
            },
        )
    }
}

/// A space's similarities to a query, as mean and standard deviation over (a sample of) its allowed vectors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Background {
    mean: f32,
    deviation: f32,
}

impl Background {
    /// `None` when too few vectors are allowed to tell, or they are all alike.
    pub fn of(store: &VectorStore, query: &[f32], allowed: &Bitset) -> Option<Self> {
        if allowed.len() < BACKGROUND_MIN {
            return None;
        }
        let similarities = store.sample_similarities(query, allowed, BACKGROUND_SAMPLE);
        if similarities.len() < BACKGROUND_MIN {
            return None;
        }
        let n = similarities.len() as f32;
        let mean = similarities.iter().sum::<f32>() / n;
        let variance = similarities.iter().map(|s| (s - mean) * (s - mean)).sum::<f32>() / n;
        let deviation = variance.sqrt();
        (deviation > 1e-6).then_some(Self { mean, deviation })
    }

    /// `similarity`, from the space `from` describes, on this space's scale: as many deviations above this
    /// space's mean as it stands above `from`'s (within a cosine's bounds).
    pub fn rescale(&self, from: &Background, similarity: f32) -> f32 {
        (self.mean + (similarity - from.mean) / from.deviation * self.deviation).clamp(-1.0, 1.0)
    }
}

/// One ranking of neighbours from both spaces, most similar first: the multilingual space's similarities put
/// on the encoder space's scale where both backgrounds are known.
pub(crate) fn merge(
    encoder: Vec<Neighbour>,
    multilingual: Vec<Neighbour>,
    backgrounds: Option<(Background, Background)>,
) -> Vec<(Space, Neighbour)> {
    let rescaled = multilingual.into_iter().map(|n| match &backgrounds {
        Some((encoder, multilingual)) => Neighbour { similarity: encoder.rescale(multilingual, n.similarity), ..n },
        None => n,
    });
    let mut all: Vec<(Space, Neighbour)> =
        encoder.into_iter().map(|n| (Space::Encoder, n)).chain(rescaled.map(|n| (Space::Multilingual, n))).collect();
    all.sort_by(|a, b| b.1.similarity.total_cmp(&a.1.similarity));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_ids_name_their_space() {
        assert_eq!(Space::of(Space::Encoder.vec_id(7)), (Space::Encoder, 7));
        assert_eq!(Space::of(Space::Multilingual.vec_id(7)), (Space::Multilingual, 7));
        assert_ne!(Space::Encoder.vec_id(7), Space::Multilingual.vec_id(7));
        let mut ids = SpaceIds::default();
        ids.insert(Space::Encoder.vec_id(3));
        ids.insert(Space::Multilingual.vec_id(3));
        ids.insert(Space::Multilingual.vec_id(5));
        assert_eq!((ids.get(Space::Encoder).len(), ids.get(Space::Multilingual).len(), ids.len()), (1, 2, 3));
    }

    #[test]
    fn a_hit_that_stands_out_as_far_in_its_space_ranks_as_high() {
        let english = Background { mean: 0.1, deviation: 0.1 };
        let multilingual = Background { mean: 0.8, deviation: 0.02 };
        // 0.86 is 3 deviations above e5's mean: 0.4 on MiniLM's scale.
        assert!((english.rescale(&multilingual, 0.86) - 0.4).abs() < 1e-5);
        let n = |id, similarity| Neighbour { id, similarity };
        let merged = merge(vec![n(1, 0.5), n(2, 0.3)], vec![n(9, 0.86)], Some((english, multilingual)));
        let order: Vec<(Space, u64)> = merged.iter().map(|(s, n)| (*s, n.id)).collect();
        assert_eq!(order, [(Space::Encoder, 1), (Space::Multilingual, 9), (Space::Encoder, 2)]);
        // Without backgrounds, similarities are compared as they are.
        let raw = merge(vec![n(1, 0.5)], vec![n(9, 0.86)], None);
        assert_eq!(raw[0].0, Space::Multilingual);
    }
}
