//! The vector side of a generation: an append-only file of L2-normalised embeddings (the writer's, synced before
//! each tantivy commit) and, in processes that search, an HNSW graph over it (`hnsw_rs`) kept up to date by
//! reading the file's tail, with periodic snapshots of the graph so a restart loads instead of rebuilding.
//! A vector's id is its record number in the file; tantivy documents carry it (`vec_id`), so filters, deletes
//! and updates stay tantivy's business: a vector whose document is gone is simply never allowed.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use hnsw_rs::prelude::{AnnT, Distance, FilterT, Hnsw, HnswIo};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::SearchError;

const VECTOR_FILE: &str = "vectors.f32";
const META_FILE: &str = "vectors.json";
const SNAPSHOT_PREFIX: &str = "hnsw-";
const SNAPSHOT_BASENAME: &str = "graph";
/// Filters that keep at least this share of the graph are checked during the graph search; narrower ones
/// (but above the exact-search size) filter an oversampled unfiltered search.
const BROAD_FILTER: f64 = 0.5;

/// How the HNSW graph is built and searched.
#[derive(Debug, Clone, Copy)]
pub struct HnswParams {
    /// Links per node (M).
    pub max_connections: usize,
    pub ef_construction: usize,
    /// Candidate list size at search time (raised for deep pages and selective filters).
    pub ef_search: usize,
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
            ef_search: 256,
            exact_below: 100_000,
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

/// Cosine distance between unit vectors: `1 - a·b`, clamped at 0. Eight partial sums so the compiler
/// vectorises the loop.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

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

impl FilterT for Bitset {
    fn hnsw_filter(&self, id: &usize) -> bool {
        self.contains(*id as u64)
    }
}

fn io_error(path: &Path, source: std::io::Error) -> SearchError {
    SearchError::Directory { path: path.display().to_string(), source }
}

fn read_meta(dir: &Path) -> Result<Option<Meta>, SearchError> {
    let path = dir.join(META_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SearchError::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path, e)),
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
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let path = dir.join(VECTOR_FILE);
        let file =
            OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(|e| io_error(&path, e))?;
        let meta = read_meta(dir)?;
        let (dim, model) = (meta.as_ref().map(|m| m.dim), meta.and_then(|m| m.model));
        let bytes = file.metadata().map_err(|e| io_error(&path, e))?.len();
        let record = dim.map_or(1, |d| 4 * d as u64);
        let durable = bytes / record;
        if bytes % record != 0 {
            // A crash in the middle of an append: the partial record was never committed to any document.
            tracing::warn!(path = %path.display(), bytes, "dropping a partial vector record at the end of the log");
            file.set_len(durable * record).map_err(|e| io_error(&path, e))?;
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
            self.file.write_all(&self.buffer).map_err(|e| io_error(&path, e))?;
            self.durable += (self.buffer.len() / record) as u64;
            self.buffer.clear();
        }
        self.file.sync_data().map_err(|e| io_error(&path, e))
    }

    /// Forgets what was appended since the last `sync` (and any part of it already written).
    pub fn rollback(&mut self) -> Result<(), SearchError> {
        self.buffer.clear();
        let path = self.dir.join(VECTOR_FILE);
        let record = 4 * self.dim.unwrap_or(1) as u64;
        self.file.set_len(self.durable * record).map_err(|e| io_error(&path, e))?;
        self.file.seek(SeekFrom::End(0)).map_err(|e| io_error(&path, e))?;
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
    write().map_err(|e| io_error(path, e))
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
    /// The HNSW graph (approximate).
    Hnsw,
    /// Every allowed vector compared (exact).
    Exact,
}

type Graph = Hnsw<'static, f32, UnitDot>;

/// The reader's end: the vectors (memory-mapped) and the graph over them.
pub(crate) struct VectorStore {
    dir: PathBuf,
    params: HnswParams,
    dim: RwLock<Option<usize>>,
    model: RwLock<Option<String>>,
    map: RwLock<Option<Arc<Mmap>>>,
    graph: RwLock<Arc<Graph>>,
    /// Records inserted in the graph (a prefix of the file).
    in_graph: AtomicUsize,
    snapshot_covers: AtomicUsize,
    /// One thread at a time extends the graph or snapshots it.
    maintenance: Mutex<()>,
}

impl VectorStore {
    /// Opens the vectors in `dir`, loading the newest graph snapshot; the tail past it is inserted by
    /// [`Self::refresh`].
    pub fn open(dir: &Path, params: HnswParams) -> Result<Self, SearchError> {
        let snapshot = if params.exact_below == usize::MAX { None } else { load_snapshot(dir) };
        let (graph, covers) = snapshot.unwrap_or_else(|| (Arc::new(new_graph(&params, 0)), 0));
        let meta = read_meta(dir)?;
        let store = Self {
            dir: dir.to_owned(),
            params,
            dim: RwLock::new(meta.as_ref().map(|m| m.dim)),
            model: RwLock::new(meta.and_then(|m| m.model)),
            map: RwLock::new(None),
            graph: RwLock::new(graph),
            in_graph: AtomicUsize::new(covers),
            snapshot_covers: AtomicUsize::new(covers),
            maintenance: Mutex::new(()),
        };
        store.remap()?;
        Ok(store)
    }

    fn dim(&self) -> Option<usize> {
        *self.dim.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The encoder whose vectors these are (`None` before the first, or in a generation that did not record it).
    pub fn model(&self) -> Option<String> {
        self.model.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn mapped(&self) -> Option<Arc<Mmap>> {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
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

    /// Maps the file again if it grew. Returns the number of records.
    fn remap(&self) -> Result<usize, SearchError> {
        if self.dim().is_none() {
            let Some(meta) = read_meta(&self.dir)? else { return Ok(0) };
            *self.model.write().unwrap_or_else(std::sync::PoisonError::into_inner) = meta.model;
            *self.dim.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(meta.dim);
        }
        let path = self.dir.join(VECTOR_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error(&path, e)),
        };
        let bytes = file.metadata().map_err(|e| io_error(&path, e))?.len() as usize;
        let current = self.mapped().map_or(0, |m| m.len());
        if bytes > current {
            // SAFETY: the file is only ever appended to (and truncated only past what was synced, which no
            // reader maps: readers map what tantivy's commits reference, written and synced before them).
            #[allow(unsafe_code)]
            let map = unsafe { Mmap::map(&file) }.map_err(|e| io_error(&path, e))?;
            *self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(map));
        }
        Ok(self.len())
    }

    /// Picks up vectors appended since the last call and inserts them in the graph (once there are enough
    /// for the graph to be used); snapshots the graph when enough is new. Called by the index's refresh
    /// thread, and by rebuilds with `parallel`.
    pub fn refresh(&self, parallel: bool) -> Result<usize, SearchError> {
        let _turn = self.maintenance.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let total = self.remap()?;
        if self.params.exact_below == usize::MAX {
            return Ok(0);
        }
        let (Some(dim), Some(map)) = (self.dim(), self.mapped()) else { return Ok(0) };
        let start = self.in_graph();
        // Below the exact-search size every search compares every vector anyway: the graph waits until it
        // would be used, then takes the backlog on all cores.
        if total <= start || total < self.params.exact_below {
            return Ok(0);
        }
        let parallel = parallel || total - start > 10_000;
        let graph = self.graph.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        const CHUNK: usize = 10_000;
        let mut done = start;
        while done < total {
            let end = (done + CHUNK).min(total);
            let vectors: Vec<Vec<f32>> = (done..end).map(|id| record(&map, dim, id as u64)).collect();
            if parallel {
                let items: Vec<(&Vec<f32>, usize)> = vectors.iter().zip(done..end).collect();
                graph.parallel_insert(&items);
            } else {
                for (vector, id) in vectors.iter().zip(done..end) {
                    graph.insert((vector.as_slice(), id));
                }
            }
            done = end;
            self.in_graph.store(done, Ordering::Release);
            if total - start > CHUNK {
                tracing::info!(inserted = done, of = total, "building the vector graph");
            }
        }
        if done - self.snapshot_covers.load(Ordering::Acquire) >= self.params.snapshot_every {
            self.snapshot_locked(&graph, done)?;
        }
        Ok(done - start)
    }

    /// Writes a snapshot of the graph now, unless the last one covers it (a rebuild does, before it publishes
    /// its generation).
    pub fn snapshot(&self) -> Result<(), SearchError> {
        let _turn = self.maintenance.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let covers = self.in_graph();
        if covers == self.snapshot_covers.load(Ordering::Acquire) {
            return Ok(());
        }
        let graph = self.graph.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        self.snapshot_locked(&graph, covers)
    }

    fn snapshot_locked(&self, graph: &Graph, covers: usize) -> Result<(), SearchError> {
        if covers == 0 {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let tmp = self.dir.join(format!("{SNAPSHOT_PREFIX}tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
        graph
            .file_dump(&tmp, SNAPSHOT_BASENAME)
            .map_err(|e| SearchError::Corrupt(format!("writing the vector graph snapshot: {e}")))?;
        let done = self.dir.join(format!("{SNAPSHOT_PREFIX}{covers:012}"));
        match std::fs::rename(&tmp, &done) {
            Ok(()) => {}
            // Another process wrote the same snapshot first.
            Err(_) if done.exists() => {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => return Err(io_error(&done, e)),
        }
        self.snapshot_covers.store(covers, Ordering::Release);
        for old in snapshots(&self.dir).into_iter().filter(|(n, _)| *n < covers) {
            let _ = std::fs::remove_dir_all(old.1);
        }
        tracing::info!(vectors = covers, seconds = started.elapsed().as_secs_f32(), "vector graph snapshot written");
        Ok(())
    }

    /// The `k` nearest allowed vectors to `query` (unit length), most similar first.
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
        if allowed.len() <= self.params.exact_below || in_graph < self.params.exact_below {
            return Ok((self.exact(query, k, allowed), AnnMethod::Exact));
        }
        let graph = self.graph.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let share = allowed.len() as f64 / in_graph.max(1) as f64;
        let mut hits: Vec<Neighbour> = if share >= BROAD_FILTER {
            // (Almost) everything allowed: the graph search checks the filter as it goes.
            let found = graph.search_filter(query, k, self.params.ef_search.max(k), Some(allowed));
            found.into_iter().map(|n| Neighbour { id: n.d_id as u64, similarity: 1.0 - n.distance }).collect()
        } else {
            // A narrower filter (still too many vectors to compare them all): hnsw_rs's filtered search keeps
            // exploring until its candidates run out, seconds at a million vectors with a 10% filter. Ask the
            // graph for enough neighbours that k of them pass, and keep those that do.
            let wanted = ((k as f64 / share) * 2.0).ceil() as usize;
            let found = graph.search(query, wanted, self.params.ef_search.max(wanted));
            let kept: Vec<Neighbour> = found
                .into_iter()
                .filter(|n| allowed.contains(n.d_id as u64))
                .map(|n| Neighbour { id: n.d_id as u64, similarity: 1.0 - n.distance })
                .take(k)
                .collect();
            if kept.len() < k.min(allowed.len()) {
                return Ok((self.exact(query, k, allowed), AnnMethod::Exact));
            }
            kept
        };
        // Vectors not in the graph yet (appended in the last moment) are compared exactly.
        let tail: Vec<u64> = allowed.iter_from(in_graph as u64).filter(|&id| id as usize >= in_graph).collect();
        if !tail.is_empty() {
            if let Some(map) = self.mapped() {
                let records = map.len() / (4 * dim);
                hits.extend(
                    tail.into_iter()
                        .filter(|&id| (id as usize) < records)
                        .map(|id| Neighbour { id, similarity: dot(query, &record(&map, dim, id)) }),
                );
                sort_and_cut(&mut hits, k);
            }
        }
        Ok((hits, AnnMethod::Hnsw))
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

fn record(map: &Mmap, dim: usize, id: u64) -> Vec<f32> {
    let mut out = vec![0f32; dim];
    read_record(map, dim, id, &mut out);
    out
}

fn new_graph(params: &HnswParams, expected: usize) -> Graph {
    Hnsw::new(params.max_connections, expected.max(100_000), 16, params.ef_construction, UnitDot)
}

/// Snapshot folders, `(vectors covered, path)`.
fn snapshots(dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let covers = name.strip_prefix(SNAPSHOT_PREFIX)?.parse().ok()?;
            Some((covers, e.path()))
        })
        .collect()
}

/// The newest readable snapshot. `hnsw_rs` panics on a damaged dump, so a failed load is caught and the graph
/// rebuilt from the vectors instead.
fn load_snapshot(dir: &Path) -> Option<(Arc<Graph>, usize)> {
    let (covers, path) = snapshots(dir).into_iter().max_by_key(|(n, _)| *n)?;
    let started = std::time::Instant::now();
    let loaded = std::panic::catch_unwind(|| {
        // The graph borrows its loader for its whole life; one loader per generation opened is leaked
        // (a few hundred bytes) so the graph can be `'static`.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&path, SNAPSHOT_BASENAME)));
        io.load_hnsw::<f32, UnitDot>()
    });
    match loaded {
        Ok(Ok(graph)) if graph.get_nb_point() == covers => {
            tracing::info!(vectors = covers, seconds = started.elapsed().as_secs_f32(), "vector graph snapshot loaded");
            Some((Arc::new(graph), covers))
        }
        Ok(Ok(graph)) => {
            tracing::warn!(path = %path.display(), expected = covers, got = graph.get_nb_point(), "snapshot is incomplete; rebuilding the graph");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(path = %path.display(), error = %e, "snapshot unreadable; rebuilding the graph");
            None
        }
        Err(_) => {
            tracing::warn!(path = %path.display(), "snapshot damaged; rebuilding the graph");
            None
        }
    }
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
    fn dot_matches_the_plain_sum() {
        let v = vectors(2, 37, 1);
        let plain: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
        assert!((dot(&v[0], &v[1]) - plain).abs() < 1e-6);
    }

    #[test]
    fn graph_agrees_with_exact_search_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let data = vectors(3_000, 32, 7);
        let mut log = VectorLog::open(dir.path()).unwrap();
        for (i, v) in data.iter().enumerate() {
            assert_eq!(log.append(v, "m").unwrap(), i as u64);
        }
        log.sync().unwrap();
        let params = HnswParams { exact_below: 10, snapshot_every: 1_000, ..HnswParams::default() };
        let store = VectorStore::open(dir.path(), params).unwrap();
        assert_eq!(store.refresh(false).unwrap(), 3_000);
        let mut all = Bitset::default();
        (0..3_000).for_each(|id| all.insert(id));
        let queries = vectors(50, 32, 99);
        let mut found = 0;
        for q in &queries {
            let (hits, method) = store.search(q, 10, &all).unwrap();
            assert_eq!(method, AnnMethod::Hnsw);
            let exact: Vec<u64> = store.exact(q, 10, &all).iter().map(|n| n.id).collect();
            found += hits.iter().filter(|n| exact.contains(&n.id)).count();
        }
        assert!(found as f64 / 500.0 >= 0.95, "recall@10 {found}/500");

        // A restart loads the snapshot (3,000 vectors) and answers the same.
        let reopened = VectorStore::open(dir.path(), params).unwrap();
        assert_eq!(reopened.in_graph(), 3_000);
        for q in queries.iter().take(5) {
            assert_eq!(reopened.search(q, 10, &all).unwrap().0, store.search(q, 10, &all).unwrap().0);
        }
    }

    #[test]
    fn filters_and_the_tail_not_yet_in_the_graph_are_honoured() {
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
    fn a_narrow_filter_over_a_large_set_finds_the_allowed_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        logged(dir.path(), &vectors(4_000, 32, 11));
        let store = VectorStore::open(dir.path(), HnswParams { exact_below: 100, ..HnswParams::default() }).unwrap();
        store.refresh(true).unwrap();
        // Every tenth vector: 400 allowed, above the exact size, well below the broad-filter share.
        let mut tenth = Bitset::default();
        (0..4_000).filter(|id| id % 10 == 3).for_each(|id| tenth.insert(id));
        let mut found = 0;
        for q in &vectors(30, 32, 5) {
            let (hits, _) = store.search(q, 10, &tenth).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|n| tenth.contains(n.id)), "only allowed vectors");
            let exact: Vec<u64> = store.exact(q, 10, &tenth).iter().map(|n| n.id).collect();
            found += hits.iter().filter(|n| exact.contains(&n.id)).count();
        }
        assert!(found as f64 / 300.0 >= 0.9, "recall@10 {found}/300");
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
