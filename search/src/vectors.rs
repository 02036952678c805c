//! The vector side of a generation: an append-only file of L2-normalised embeddings (f32, the writer's,
//! synced before each tantivy commit) and, in processes that search, an HNSW graph over it (see `graph`)
//! kept up to date by reading the file's tail, snapshotted so a restart loads instead of rebuilding. The
//! file stays the exact copy: the graph's candidates are rescored from it, and small allowed sets are
//! searched in it directly. A vector's id is its record number in the file; tantivy documents carry it
//! (`vec_id`), so filters, deletes and updates stay tantivy's business: a search only ever allows the
//! vectors of live documents, and the reader takes the others out of the graph ([`VectorStore::prune`]).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::graph::{Graph, Quantization};
use crate::SearchError;

const VECTOR_FILE: &str = "vectors.f32";
const META_FILE: &str = "vectors.json";
/// Allowed sets smaller than this share of the graph are searched exactly: a graph walk would visit most
/// of the graph to find enough of them.
const EXACT_SHARE: f64 = 0.02;

/// How the HNSW graph is built and searched.
#[derive(Debug, Clone, Copy)]
pub struct HnswParams {
    /// Links per node (M).
    pub max_connections: usize,
    pub ef_construction: usize,
    /// Candidate list size of an unfiltered search (a filtered one's shrinks with the share allowed; never
    /// below the candidates rescored).
    pub ef_search: usize,
    /// How the graph holds each vector.
    pub quantization: Quantization,
    /// Graph candidates rescored from the exact vectors per search (at least the page asked for).
    pub rescore: usize,
    /// Allowed sets this small are searched exactly (every allowed vector compared): faster than the graph
    /// there, and exact. `usize::MAX`: always exact, and no graph is kept (a reference for recall).
    pub exact_below: usize,
    /// The serving process snapshots the graph after this many new vectors.
    pub snapshot_every: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            max_connections: 32,
            ef_construction: 256,
            ef_search: 1_024,
            quantization: Quantization::I8,
            rescore: 256,
            exact_below: 120_000,
            snapshot_every: 200_000,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Meta {
    dim: usize,
    /// The encoder whose vectors the generation holds (absent in generations written before it was recorded:
    /// they take any vector of their width).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
}

/// Dot product; eight partial sums so the compiler vectorises the loop.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Vector ids allowed in a search (the documents that pass the filters).
#[derive(Debug, Clone, Default)]
pub(crate) struct Bitset {
    words: Vec<u64>,
    count: usize,
}

impl Bitset {
    pub fn insert(&mut self, id: u64) {
        let (word, bit) = ((id / 64) as usize, id % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        if self.words[word] & (1 << bit) == 0 {
            self.words[word] |= 1 << bit;
            self.count += 1;
        }
    }

    pub fn union(&mut self, other: &Bitset) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
        self.count = self.words.iter().map(|w| w.count_ones() as usize).sum();
    }

    pub fn contains(&self, id: u64) -> bool {
        self.words.get((id / 64) as usize).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Ids below `end` that are in neither `self` nor `other`, in order.
    pub fn neither(&self, other: &Bitset, end: u64) -> Vec<u64> {
        let word = |words: &[u64], i: usize| words.get(i).copied().unwrap_or(0);
        let mut out = Vec::new();
        for i in 0..end.div_ceil(64) as usize {
            let mut w = !(word(&self.words, i) | word(&other.words, i));
            let base = i as u64 * 64;
            if base + 64 > end {
                w &= (1u64 << (end - base)) - 1;
            }
            while w != 0 {
                out.push(base + u64::from(w.trailing_zeros()));
                w &= w - 1;
            }
        }
        out
    }

    /// The highest member.
    pub fn last(&self) -> Option<u64> {
        let (i, w) = self.words.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
        Some(i as u64 * 64 + 63 - u64::from(w.leading_zeros()))
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter_from(0)
    }

    /// Members `>= start`, in order (`start` rounded down to a multiple of 64).
    fn iter_from(&self, start: u64) -> impl Iterator<Item = u64> + '_ {
        let first = (start / 64) as usize;
        self.words.iter().enumerate().skip(first).flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let bit = w.trailing_zeros() as u64;
                    w &= w - 1;
                    i as u64 * 64 + bit
                })
            })
        })
    }
}

fn read_meta(dir: &Path) -> Result<Option<Meta>, SearchError> {
    let path = dir.join(META_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SearchError::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SearchError::io(&path, e)),
    }
}

/// The writer's end: appends vectors and makes them durable on `sync`.
pub(crate) struct VectorLog {
    dir: PathBuf,
    file: File,
    dim: Option<usize>,
    model: Option<String>,
    /// Records durable in the file.
    durable: u64,
    buffer: Vec<u8>,
}

impl VectorLog {
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::io(dir, e))?;
        let path = dir.join(VECTOR_FILE);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| SearchError::io(&path, e))?;
        let meta = read_meta(dir)?;
        let (dim, model) = (meta.as_ref().map(|m| m.dim), meta.and_then(|m| m.model));
        let bytes = file.metadata().map_err(|e| SearchError::io(&path, e))?.len();
        let record = dim.map_or(1, |d| 4 * d as u64);
        let durable = bytes / record;
        if bytes % record != 0 {
            // A crash in the middle of an append: the partial record was never committed to any document.
            tracing::warn!(path = %path.display(), bytes, "dropping a partial vector record at the end of the log");
            file.set_len(durable * record).map_err(|e| SearchError::io(&path, e))?;
        }
        Ok(Self { dir: dir.to_owned(), file, dim, model, durable, buffer: Vec::new() })
    }

    /// Whether vectors of `model` belong here: the first vector's encoder is the generation's (vectors of two
    /// encoders are not comparable).
    pub fn accepts(&self, model: &str) -> bool {
        self.dim.is_none() || self.model.as_deref().is_none_or(|held| held == model)
    }

    /// Buffers `vector` (made by `model`, which [`Self::accepts`]) and returns its id. Every vector of a
    /// generation has the same width.
    pub fn append(&mut self, vector: &[f32], model: &str) -> Result<u64, SearchError> {
        match self.dim {
            Some(dim) if dim != vector.len() => {
                return Err(SearchError::EmbeddingWidth { index: dim, got: vector.len() })
            }
            Some(_) => {}
            None => {
                let meta = Meta { dim: vector.len(), model: Some(model.to_owned()) };
                let meta = serde_json::to_vec(&meta).map_err(|e| SearchError::Corrupt(e.to_string()))?;
                write_atomically(&self.dir.join(META_FILE), &meta)?;
                self.dim = Some(vector.len());
                self.model = Some(model.to_owned());
            }
        }
        let id = self.durable + (self.buffer.len() / (4 * vector.len())) as u64;
        self.buffer.extend(vector.iter().flat_map(|x| x.to_le_bytes()));
        Ok(id)
    }

    /// Writes and fsyncs what was appended.
    pub fn sync(&mut self) -> Result<(), SearchError> {
        let path = self.dir.join(VECTOR_FILE);
        if !self.buffer.is_empty() {
            let record = 4 * self.dim.unwrap_or(1);
            self.file.write_all(&self.buffer).map_err(|e| SearchError::io(&path, e))?;
            self.durable += (self.buffer.len() / record) as u64;
            self.buffer.clear();
        }
        self.file.sync_data().map_err(|e| SearchError::io(&path, e))
    }

    /// Forgets what was appended since the last `sync` (and any part of it already written).
    pub fn rollback(&mut self) -> Result<(), SearchError> {
        self.buffer.clear();
        let path = self.dir.join(VECTOR_FILE);
        let record = 4 * self.dim.unwrap_or(1) as u64;
        self.file.set_len(self.durable * record).map_err(|e| SearchError::io(&path, e))?;
        self.file.seek(SeekFrom::End(0)).map_err(|e| SearchError::io(&path, e))?;
        Ok(())
    }
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SearchError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| SearchError::io(path, e))
}

/// A nearest neighbour: vector id and cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Neighbour {
    pub id: u64,
    pub similarity: f32,
}

/// How a semantic search was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnnMethod {
    /// The HNSW graph (approximate), candidates rescored from the exact vectors.
    Graph,
    /// Every allowed vector compared (exact): small allowed sets, and while the graph loads or builds.
    Exact,
}

/// Where a space's graph stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphStatus {
    /// Vectors in the file.
    pub stored: usize,
    /// Records inserted in the graph (a prefix of the file; the rest are compared exactly).
    pub in_graph: usize,
    /// Records taken out of the graph again (their comments deleted or replaced).
    pub removed: usize,
    /// Whether the graph is loaded or built: until then every semantic search is exact.
    pub ready: bool,
    /// Bytes the graph holds in memory (quantised vectors and links).
    pub memory: usize,
}

/// The reader's end: the vectors (memory-mapped) and the graph over them.
pub(crate) struct VectorStore {
    dir: PathBuf,
    params: HnswParams,
    dim: RwLock<Option<usize>>,
    model: RwLock<Option<String>>,
    map: RwLock<Option<Arc<Mmap>>>,
    /// `None` until the first refresh loads or builds it (or while the space is small enough to search
    /// exactly).
    graph: RwLock<Option<Arc<Graph>>>,
    /// Records inserted in the graph (a prefix of the file).
    in_graph: AtomicUsize,
    snapshot_covers: AtomicUsize,
    /// Records taken out of the graph.
    removed: Mutex<Bitset>,
    /// Set once the first refresh has run (the graph loaded, built, or not needed yet).
    ready: AtomicBool,
    /// One thread at a time extends the graph or snapshots it.
    maintenance: Mutex<()>,
}

impl VectorStore {
    /// Opens the vectors in `dir`. The graph is loaded (or built) by the first [`Self::refresh`]; searches
    /// are exact until then.
    pub fn open(dir: &Path, params: HnswParams) -> Result<Self, SearchError> {
        let meta = read_meta(dir)?;
        let store = Self {
            dir: dir.to_owned(),
            params,
            dim: RwLock::new(meta.as_ref().map(|m| m.dim)),
            model: RwLock::new(meta.and_then(|m| m.model)),
            map: RwLock::new(None),
            graph: RwLock::new(None),
            in_graph: AtomicUsize::new(0),
            snapshot_covers: AtomicUsize::new(0),
            removed: Mutex::new(Bitset::default()),
            ready: AtomicBool::new(false),
            maintenance: Mutex::new(()),
        };
        store.remap()?;
        Ok(store)
    }

    fn dim(&self) -> Option<usize> {
        *self.dim.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The encoder whose vectors these are (`None` before the first, or in a generation that did not record it).
    pub fn model(&self) -> Option<String> {
        self.model.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn mapped(&self) -> Option<Arc<Mmap>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn graph(&self) -> Option<Arc<Graph>> {
        self.graph.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records in the file as last mapped.
    pub fn len(&self) -> usize {
        match (self.dim(), self.mapped()) {
            (Some(dim), Some(map)) => map.len() / (4 * dim),
            _ => 0,
        }
    }

    pub fn in_graph(&self) -> usize {
        self.in_graph.load(Ordering::Acquire)
    }

    pub fn status(&self) -> GraphStatus {
        GraphStatus {
            stored: self.len(),
            in_graph: self.in_graph(),
            removed: self.removed.lock().unwrap_or_else(PoisonError::into_inner).len(),
            ready: self.ready.load(Ordering::Acquire),
            memory: self.graph().map_or(0, |g| g.memory()),
        }
    }

    /// Maps the file again if it grew. Returns the number of records.
    fn remap(&self) -> Result<usize, SearchError> {
        if self.dim().is_none() {
            let Some(meta) = read_meta(&self.dir)? else { return Ok(0) };
            *self.model.write().unwrap_or_else(PoisonError::into_inner) = meta.model;
            *self.dim.write().unwrap_or_else(PoisonError::into_inner) = Some(meta.dim);
        }
        let path = self.dir.join(VECTOR_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(SearchError::io(&path, e)),
        };
        let bytes = file.metadata().map_err(|e| SearchError::io(&path, e))?.len() as usize;
        let current = self.mapped().map_or(0, |m| m.len());
        if bytes > current {
            // SAFETY: the file is only ever appended to (and truncated only past what was synced, which no
            // reader maps: readers map what tantivy's commits reference, written and synced before them).
            #[allow(unsafe_code)]
            let map = unsafe { Mmap::map(&file) }.map_err(|e| SearchError::io(&path, e))?;
            *self.map.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(map));
        }
        Ok(self.len())
    }

    /// Picks up vectors appended since the last call and inserts them in the graph; the first call loads
    /// the newest snapshot (or builds the graph, on every core, once the space is large enough for the graph
    /// to be used). Snapshots the graph when enough is new. Called by the index's refresh thread, and by
    /// rebuilds with `parallel`.
    pub fn refresh(&self, parallel: bool) -> Result<usize, SearchError> {
        let _turn = self.maintenance.lock().unwrap_or_else(PoisonError::into_inner);
        let total = self.remap()?;
        let (Some(dim), Some(map), false) = (self.dim(), self.mapped(), self.params.exact_below == usize::MAX) else {
            self.ready.store(true, Ordering::Release);
            return Ok(0);
        };
        let graph = match self.graph() {
            Some(graph) => graph,
            None => {
                let graph = match Graph::load_newest(&self.dir, dim, total) {
                    Some((graph, covers)) => {
                        self.in_graph.store(covers, Ordering::Release);
                        self.snapshot_covers.store(covers, Ordering::Release);
                        graph
                    }
                    // Below the exact-search size every search compares every vector anyway: the graph waits
                    // until it would be used.
                    None if total < self.params.exact_below => {
                        self.ready.store(true, Ordering::Release);
                        return Ok(0);
                    }
                    None => Graph::new(dim, &self.params, total + total / 4)?,
                };
                let graph = Arc::new(graph);
                *self.graph.write().unwrap_or_else(PoisonError::into_inner) = Some(graph.clone());
                graph
            }
        };
        let start = self.in_graph();
        let threads = if parallel || total.saturating_sub(start) > 10_000 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        const CHUNK: usize = 50_000;
        let mut done = start;
        let mut scratch = Vec::new();
        while done < total {
            let end = (done + CHUNK).min(total);
            let records = record_range(&map, dim, done..end, &mut scratch);
            graph.insert(done as u64..end as u64, records, dim, threads)?;
            done = end;
            self.in_graph.store(done, Ordering::Release);
            if total - start > CHUNK {
                tracing::info!(inserted = done, of = total, "building the vector graph");
            }
        }
        self.ready.store(true, Ordering::Release);
        if done - self.snapshot_covers.load(Ordering::Acquire) >= self.params.snapshot_every {
            self.snapshot_locked(&graph, done)?;
        }
        Ok(done - start)
    }

    /// Takes out of the graph every record below the highest live one that is not live (`alive`: the
    /// records of live documents): comments deleted, replaced or expired. Records past the highest live one
    /// wait (their documents may not be visible to this reader yet). Returns how many were taken out.
    pub fn prune(&self, alive: &Bitset) -> Result<usize, SearchError> {
        let Some(graph) = self.graph() else { return Ok(0) };
        let covered = alive.last().map_or(0, |last| last + 1).min(self.in_graph() as u64);
        let mut removed = self.removed.lock().unwrap_or_else(PoisonError::into_inner);
        let dead = alive.neither(&removed, covered);
        if dead.is_empty() {
            return Ok(0);
        }
        let taken = graph.remove(dead.iter().copied())?;
        dead.iter().for_each(|&id| removed.insert(id));
        tracing::debug!(records = dead.len(), in_graph = taken, "vectors of gone comments taken out of the graph");
        Ok(dead.len())
    }

    /// Writes a snapshot of the graph now, unless the last one covers it (a rebuild does, before it publishes
    /// its generation).
    pub fn snapshot(&self) -> Result<(), SearchError> {
        let _turn = self.maintenance.lock().unwrap_or_else(PoisonError::into_inner);
        let covers = self.in_graph();
        let Some(graph) = self.graph() else { return Ok(()) };
        if covers == self.snapshot_covers.load(Ordering::Acquire) {
            return Ok(());
        }
        self.snapshot_locked(&graph, covers)
    }

    fn snapshot_locked(&self, graph: &Graph, covers: usize) -> Result<(), SearchError> {
        if covers == 0 {
            return Ok(());
        }
        graph.snapshot(&self.dir, covers, self.params.quantization)?;
        self.snapshot_covers.store(covers, Ordering::Release);
        Ok(())
    }

    /// The `k` nearest allowed vectors to `query` (unit length), most similar first, by exact similarity:
    /// the graph's candidates (at least [`HnswParams::rescore`]) are rescored from the vector file.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        allowed: &Bitset,
    ) -> Result<(Vec<Neighbour>, AnnMethod), SearchError> {
        let Some(dim) = self.dim() else { return Ok((Vec::new(), AnnMethod::Exact)) };
        if query.len() != dim {
            return Err(SearchError::EmbeddingWidth { index: dim, got: query.len() });
        }
        let in_graph = self.in_graph();
        let graph = self.graph().filter(|_| self.ready.load(Ordering::Acquire));
        let narrow = allowed.len() <= self.params.exact_below
            || (allowed.len() as f64) < EXACT_SHARE * in_graph as f64
            || in_graph < self.params.exact_below;
        let (Some(graph), false, Some(map)) = (graph, narrow, self.mapped()) else {
            return Ok((self.exact(query, k, allowed), AnnMethod::Exact));
        };
        // A filtered walk visits about ef / share nodes to collect ef allowed ones: the list shrinks with the
        // share allowed, so a filter costs about what an unfiltered search does.
        let share = (allowed.len() as f64 / in_graph.max(1) as f64).min(1.0);
        let rescored = k.max(self.params.rescore);
        let ef = ((self.params.ef_search as f64 * share).ceil() as usize).max(rescored);
        let candidates = match graph.search(query, ef, allowed) {
            Ok(candidates) => candidates,
            Err(e) => {
                tracing::warn!(error = %e, "graph search failed; answering exactly");
                return Ok((self.exact(query, k, allowed), AnnMethod::Exact));
            }
        };
        let records = (map.len() / (4 * dim)) as u64;
        let mut scratch = vec![0f32; dim];
        let mut similar = |id: u64| Neighbour { id, similarity: dot(query, record_slice(&map, dim, id, &mut scratch)) };
        // Vectors not in the graph yet (appended in the last moment) are compared exactly.
        let tail = allowed.iter_from(in_graph as u64).filter(|&id| id as usize >= in_graph);
        let mut hits: Vec<Neighbour> =
            candidates.into_iter().take(rescored).chain(tail).filter(|&id| id < records).map(&mut similar).collect();
        sort_and_cut(&mut hits, k);
        Ok((hits, AnnMethod::Graph))
    }
    /// The normalised mean of the allowed vectors (of at most `sample` of them, evenly spread); `None` when
    /// none is allowed.
    pub fn centroid(&self, allowed: &Bitset, sample: usize) -> Option<Vec<f32>> {
        let (Some(dim), Some(map)) = (self.dim(), self.mapped()) else { return None };
        let records = (map.len() / (4 * dim)) as u64;
        let step = allowed.len().div_ceil(sample.max(1)).max(1);
        let mut scratch = vec![0f32; dim];
        let mut sum = vec![0f32; dim];
        let mut n = 0usize;
        for id in allowed.iter().take_while(|&id| id < records).step_by(step) {
            for (s, x) in sum.iter_mut().zip(record_slice(&map, dim, id, &mut scratch)) {
                *s += x;
            }
            n += 1;
        }
        let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
        (n > 0 && norm > 0.0).then(|| sum.into_iter().map(|x| x / norm).collect())
    }

    /// `query`'s similarity to at most `sample` allowed vectors, evenly spread.
    pub fn sample_similarities(&self, query: &[f32], allowed: &Bitset, sample: usize) -> Vec<f32> {
        let (Some(dim), Some(map)) = (self.dim(), self.mapped()) else { return Vec::new() };
        if query.len() != dim {
            return Vec::new();
        }
        let records = (map.len() / (4 * dim)) as u64;
        let step = allowed.len().div_ceil(sample.max(1)).max(1);
        let mut scratch = vec![0f32; dim];
        allowed
            .iter()
            .take_while(|&id| id < records)
            .step_by(step)
            .map(|id| dot(query, record_slice(&map, dim, id, &mut scratch)))
            .collect()
    }

    /// Compares `query` with every allowed vector.
    pub fn exact(&self, query: &[f32], k: usize, allowed: &Bitset) -> Vec<Neighbour> {
        let (Some(dim), Some(map)) = (self.dim(), self.mapped()) else { return Vec::new() };
        let records = (map.len() / (4 * dim)) as u64;
        let mut scratch = vec![0f32; dim];
        let mut best: Vec<Neighbour> = Vec::with_capacity(k + 1);
        for id in allowed.iter().take_while(|&id| id < records) {
            let similarity = dot(query, record_slice(&map, dim, id, &mut scratch));
            if best.len() < k || similarity > best[best.len() - 1].similarity {
                let at = best.partition_point(|n| n.similarity >= similarity);
                best.insert(at, Neighbour { id, similarity });
                best.truncate(k);
            }
        }
        best
    }
}

fn sort_and_cut(hits: &mut Vec<Neighbour>, k: usize) {
    hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.id.cmp(&b.id)));
    hits.dedup_by_key(|n| n.id);
    hits.truncate(k);
}

/// Record `id` as floats: read in place where the file's bytes are the machine's floats (little-endian, and
/// the map is page-aligned), else decoded into `scratch`.
fn record_slice<'a>(map: &'a Mmap, dim: usize, id: u64, scratch: &'a mut [f32]) -> &'a [f32] {
    let start = id as usize * 4 * dim;
    let bytes = &map[start..start + 4 * dim];
    if cfg!(target_endian = "little") {
        // SAFETY: every bit pattern is a valid f32; `align_to` only yields the aligned middle part.
        #[allow(unsafe_code)]
        let (head, floats, tail) = unsafe { bytes.align_to::<f32>() };
        if head.is_empty() && tail.is_empty() {
            return floats;
        }
    }
    read_record(map, dim, id, scratch);
    scratch
}

fn read_record(map: &Mmap, dim: usize, id: u64, out: &mut [f32]) {
    let start = id as usize * 4 * dim;
    for (x, bytes) in out.iter_mut().zip(map[start..start + 4 * dim].chunks_exact(4)) {
        *x = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
}

/// Records `ids` as one run of floats: in place where the file's bytes are the machine's floats, else
/// decoded into `scratch`.
fn record_range<'a>(map: &'a Mmap, dim: usize, ids: std::ops::Range<usize>, scratch: &'a mut Vec<f32>) -> &'a [f32] {
    let bytes = &map[ids.start * 4 * dim..ids.end * 4 * dim];
    if cfg!(target_endian = "little") {
        // SAFETY: every bit pattern is a valid f32; `align_to` only yields the aligned middle part.
        #[allow(unsafe_code)]
        let (head, floats, tail) = unsafe { bytes.align_to::<f32>() };
        if head.is_empty() && tail.is_empty() {
            return floats;
        }
    }
    scratch.clear();
    scratch.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    scratch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = dot(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    /// Deterministic pseudo-random unit vectors.
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                unit(
                    (0..dim)
                        .map(|_| {
                            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// A vector file in `dir` holding `data`, synced.
    fn logged(dir: &Path, data: &[Vec<f32>]) -> VectorLog {
        let mut log = VectorLog::open(dir).unwrap();
        for v in data {
            log.append(v, "m").unwrap();
        }
        log.sync().unwrap();
        log
    }

    #[test]
    fn bitsets_name_what_neither_holds() {
        let (mut a, mut b) = (Bitset::default(), Bitset::default());
        [0, 2, 64, 130].into_iter().for_each(|id| a.insert(id));
        [1, 65].into_iter().for_each(|id| b.insert(id));
        assert_eq!(a.neither(&b, 6), [3, 4, 5]);
        assert_eq!(a.neither(&b, 67).len(), 67 - 5);
        assert_eq!(a.neither(&b, 200).last(), Some(&199));
        assert_eq!((a.last(), b.last(), Bitset::default().last()), (Some(130), Some(65), None));
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let v = vectors(2, 37, 1);
        let plain: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
        assert!((dot(&v[0], &v[1]) - plain).abs() < 1e-6);
    }

    fn everything(n: u64) -> Bitset {
        let mut all = Bitset::default();
        (0..n).for_each(|id| all.insert(id));
        all
    }

    fn ids(hits: &[Neighbour]) -> Vec<u64> {
        hits.iter().map(|n| n.id).collect()
    }

    #[test]
    fn graph_agrees_with_exact_search_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        logged(dir.path(), &vectors(3_000, 32, 7));
        let params = HnswParams { exact_below: 10, snapshot_every: 1_000, ..HnswParams::default() };
        let store = VectorStore::open(dir.path(), params).unwrap();
        assert!(!store.status().ready, "not ready before the first refresh");
        assert_eq!(store.refresh(false).unwrap(), 3_000);
        assert!(store.status().ready);
        let all = everything(3_000);
        let queries = vectors(50, 32, 99);
        let mut found = 0;
        for q in &queries {
            let (hits, method) = store.search(q, 10, &all).unwrap();
            assert_eq!(method, AnnMethod::Graph);
            found += hits.iter().filter(|n| ids(&store.exact(q, 10, &all)).contains(&n.id)).count();
        }
        assert!(found as f64 / 500.0 >= 0.97, "recall@10 {found}/500");

        // A restart loads the snapshot (3,000 vectors, nothing to insert) and answers the same.
        let reopened = VectorStore::open(dir.path(), params).unwrap();
        assert_eq!(reopened.refresh(false).unwrap(), 0, "loaded, not rebuilt");
        assert_eq!(reopened.in_graph(), 3_000);
        for q in queries.iter().take(5) {
            assert_eq!(reopened.search(q, 10, &all).unwrap().0, store.search(q, 10, &all).unwrap().0);
        }
    }

    #[test]
    fn filtered_graph_search_equals_exact_search_on_small_sets() {
        let dir = tempfile::tempdir().unwrap();
        logged(dir.path(), &vectors(2_000, 32, 11));
        let store = VectorStore::open(dir.path(), HnswParams { exact_below: 0, ..HnswParams::default() }).unwrap();
        store.refresh(true).unwrap();
        // Half, a tenth and a thirtieth of the vectors allowed: every one searched in the graph.
        for every in [2, 10, 30] {
            let mut allowed = Bitset::default();
            (0..2_000).filter(|id| id % every == 1).for_each(|id| allowed.insert(id));
            for q in &vectors(20, 32, 5) {
                let (hits, method) = store.search(q, 10, &allowed).unwrap();
                assert_eq!(method, AnnMethod::Graph);
                assert_eq!(ids(&hits), ids(&store.exact(q, 10, &allowed)), "one in {every} allowed");
            }
        }
    }

    #[test]
    fn vectors_of_gone_documents_leave_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        let data = vectors(1_000, 16, 3);
        logged(dir.path(), &data);
        let store = VectorStore::open(dir.path(), HnswParams { exact_below: 0, ..HnswParams::default() }).unwrap();
        store.refresh(false).unwrap();
        // Records 0..100 deleted; 999 is the last live one.
        let mut alive = Bitset::default();
        (100..1_000).for_each(|id| alive.insert(id));
        assert_eq!(store.prune(&alive).unwrap(), 100);
        assert_eq!(store.prune(&alive).unwrap(), 0, "taken out once");
        assert_eq!(store.status().removed, 100);
        // Even a search that allowed them (it never does) no longer finds them in the graph.
        let (hits, _) = store.search(&data[7], 5, &everything(1_000)).unwrap();
        assert!(hits.iter().all(|n| n.id >= 100), "{hits:?}");
        // A restart from a snapshot taken after the removal does not bring them back.
        store.snapshot().unwrap();
        let reopened = VectorStore::open(dir.path(), HnswParams { exact_below: 0, ..HnswParams::default() }).unwrap();
        reopened.refresh(false).unwrap();
        let (hits, _) = reopened.search(&data[7], 5, &everything(1_000)).unwrap();
        assert!(hits.iter().all(|n| n.id >= 100), "{hits:?}");
    }

    #[test]
    fn a_damaged_snapshot_is_detected_and_the_graph_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        logged(dir.path(), &vectors(2_000, 16, 5));
        let params = HnswParams { exact_below: 0, snapshot_every: 1_000, ..HnswParams::default() };
        VectorStore::open(dir.path(), params).unwrap().refresh(true).unwrap();
        let snapshot = dir.path().join("usearch-000000002000");
        let file = snapshot.join("graph.usearch");
        let whole = std::fs::metadata(&file).unwrap().len();
        // A crash mid-write that left half the file (and a temporary folder of a write that never finished).
        OpenOptions::new().write(true).open(&file).unwrap().set_len(whole / 2).unwrap();
        std::fs::create_dir(dir.path().join("usearch-tmp-1")).unwrap();
        let store = VectorStore::open(dir.path(), params).unwrap();
        assert_eq!(store.refresh(false).unwrap(), 2_000, "rebuilt from the vectors, not loaded");
        assert_eq!(store.status().in_graph, 2_000);
        let q = vectors(1, 16, 9).remove(0);
        assert_eq!(store.search(&q, 3, &everything(2_000)).unwrap().1, AnnMethod::Graph);
        // A whole snapshot was written again (its size depends on the random levels drawn): the next open
        // loads it.
        let reopened = VectorStore::open(dir.path(), params).unwrap();
        assert_eq!(reopened.refresh(false).unwrap(), 0, "loaded, not rebuilt");
        assert_eq!(
            reopened.search(&q, 3, &everything(2_000)).unwrap().0,
            store.search(&q, 3, &everything(2_000)).unwrap().0
        );
    }

    #[test]
    fn the_tail_not_yet_in_the_graph_is_searched_too() {
        let dir = tempfile::tempdir().unwrap();
        let data = vectors(500, 16, 3);
        let mut log = logged(dir.path(), &data);
        let store = VectorStore::open(dir.path(), HnswParams { exact_below: 0, ..HnswParams::default() }).unwrap();
        store.refresh(false).unwrap();
        // Appended after the graph was built, not yet refreshed: still found.
        log.append(&data[0], "m").unwrap();
        log.sync().unwrap();
        store.remap().unwrap();
        let mut odd = Bitset::default();
        (0..=500).filter(|id| id % 2 == 1 || *id == 500).for_each(|id| odd.insert(id));
        let (hits, _) = store.search(&data[0], 5, &odd).unwrap();
        assert_eq!(hits[0].id, 500, "the copy of vector 0 appended last is the best allowed match");
        assert!(hits.iter().all(|n| odd.contains(n.id)));
        assert!((hits[0].similarity - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_partial_record_is_dropped_and_widths_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = VectorLog::open(dir.path()).unwrap();
        log.append(&[1.0, 0.0], "m").unwrap();
        log.sync().unwrap();
        assert!(matches!(log.append(&[1.0], "m"), Err(SearchError::EmbeddingWidth { index: 2, got: 1 })));
        drop(log);
        let path = dir.path().join(VECTOR_FILE);
        OpenOptions::new().append(true).open(&path).unwrap().write_all(&[0, 0, 0]).unwrap();
        let mut log = VectorLog::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
        assert_eq!(log.append(&[0.0, 1.0], "m").unwrap(), 1);
    }

    #[test]
    fn a_generation_holds_one_encoders_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = VectorLog::open(dir.path()).unwrap();
        assert!(log.accepts("e5") && log.accepts("minilm"), "the first vector decides");
        log.append(&[1.0, 0.0], "e5").unwrap();
        log.sync().unwrap();
        assert!(log.accepts("e5") && !log.accepts("minilm"));
        drop(log);
        let log = VectorLog::open(dir.path()).unwrap();
        assert!(!log.accepts("minilm"), "the encoder is kept across a reopen");
        let store = VectorStore::open(dir.path(), HnswParams::default()).unwrap();
        assert_eq!(store.model().as_deref(), Some("e5"));
        // A generation written before the encoder was recorded takes any vector of its width.
        std::fs::write(dir.path().join(META_FILE), br#"{"dim":2}"#).unwrap();
        assert!(VectorLog::open(dir.path()).unwrap().accepts("minilm"));
    }
}
