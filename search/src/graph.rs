//! The HNSW graph over one vector space (usearch): vectors held quantised (i8 by default) beside their
//! links, inserted on every core, searched with the allowed ids as a predicate inside the graph walk, entries
//! removed when their documents go. Snapshots are written to a temporary folder, checksummed, synced and
//! renamed into place, so a reader finds either a whole snapshot or none, and a damaged one is detected
//! (length and CRC-32 against its manifest) and the graph rebuilt from the vector file.

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::vectors::{write_atomically, Bitset, HnswParams};
use crate::SearchError;

/// Searches and inserts that use a graph at once; more wait for a turn (usearch keeps a search context per
/// concurrent caller and must be told how many).
const TURNS: usize = 32;
/// The graph's own candidate list floor: each search passes its own (see `VectorStore::search`).
const MIN_EXPANSION: usize = 16;
const SNAPSHOT_PREFIX: &str = "usearch-";
/// Snapshots of the graph library murmur used before (hnsw_rs): removed when a new snapshot is written.
const LEGACY_SNAPSHOT_PREFIX: &str = "hnsw-";
const GRAPH_FILE: &str = "graph.usearch";
const MANIFEST_FILE: &str = "graph.json";

/// How the graph holds each vector. Candidates are always rescored from the exact f32 file, so a coarse
/// quantisation costs recall only where the true neighbours fall out of the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    F32,
    F16,
    Bf16,
    /// One byte per dimension: a quarter of f32's memory.
    #[default]
    I8,
}

impl Quantization {
    fn scalar(self) -> ScalarKind {
        match self {
            Self::F32 => ScalarKind::F32,
            Self::F16 => ScalarKind::F16,
            Self::Bf16 => ScalarKind::BF16,
            Self::I8 => ScalarKind::I8,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "f32" => Some(Self::F32),
            "f16" => Some(Self::F16),
            "bf16" => Some(Self::Bf16),
            "i8" => Some(Self::I8),
            _ => None,
        }
    }
}

fn graph_error(what: &str, e: impl std::fmt::Display) -> SearchError {
    SearchError::Graph(format!("{what}: {e}"))
}

fn utf8(path: &Path) -> Result<&str, SearchError> {
    path.to_str().ok_or_else(|| SearchError::Graph(format!("{}: the graph library needs a UTF-8 path", path.display())))
}

/// A bounded number of concurrent users of the graph.
struct Turns {
    free: Mutex<usize>,
    returned: Condvar,
}

struct Turn<'a>(&'a Turns);

impl Turns {
    fn take(&self) -> Turn<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self.returned.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.returned.notify_one();
    }
}

pub(crate) struct Graph {
    index: Index,
    /// Whether the graph holds i8 vectors: murmur quantises them itself (see [`to_i8`]).
    own_i8: bool,
    /// Held shared by searches, inserts and removals; exclusively while the capacity grows (usearch moves
    /// its storage then).
    storage: RwLock<()>,
    turns: Turns,
}

/// A snapshot's manifest: what it covers and how to tell it is whole.
#[derive(Serialize, Deserialize)]
struct Manifest {
    /// Records of the vector file inserted (a prefix of it).
    covers: usize,
    bytes: u64,
    crc32: u32,
    quantization: Quantization,
}

impl Graph {
    /// An empty graph for vectors of `dim` dimensions, with room for `capacity`.
    pub fn new(dim: usize, params: &HnswParams, capacity: usize) -> Result<Self, SearchError> {
        let options = IndexOptions {
            dimensions: dim,
            metric: MetricKind::Cos,
            quantization: params.quantization.scalar(),
            connectivity: params.max_connections,
            expansion_add: params.ef_construction,
            expansion_search: MIN_EXPANSION,
            multi: false,
        };
        let index = Index::new(&options).map_err(|e| graph_error("creating the vector graph", e))?;
        let graph = Self::wrap(index);
        graph.reserve(capacity)?;
        Ok(graph)
    }

    fn wrap(index: Index) -> Self {
        let own_i8 = index.scalar_kind() == ScalarKind::I8;
        Self {
            index,
            own_i8,
            storage: RwLock::new(()),
            turns: Turns { free: Mutex::new(TURNS), returned: Condvar::new() },
        }
    }

    fn reserve(&self, capacity: usize) -> Result<(), SearchError> {
        let _exclusive = self.storage.write().unwrap_or_else(PoisonError::into_inner);
        self.index
            .reserve_capacity_and_threads(capacity.max(1_024), TURNS)
            .map_err(|e| graph_error("reserving room in the vector graph", e))
    }

    /// Bytes the graph holds in memory (vectors and links).
    pub fn memory(&self) -> usize {
        self.index.memory_usage()
    }

    /// Inserts records `ids` (ids are record numbers; `records` holds their floats, `dim` each, in order),
    /// on `threads` threads.
    pub fn insert(&self, ids: Range<u64>, records: &[f32], dim: usize, threads: usize) -> Result<(), SearchError> {
        let count = (ids.end - ids.start) as usize;
        if self.index.size() + count > self.index.capacity() {
            self.reserve((self.index.capacity() * 2).max(self.index.size() + count))?;
        }
        let next = AtomicUsize::new(0);
        let failed: Mutex<Option<SearchError>> = Mutex::new(None);
        let work = || {
            let mut quantised = Vec::with_capacity(dim);
            let _turn = self.turns.take();
            let _shared = self.storage.read().unwrap_or_else(PoisonError::into_inner);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return;
                }
                let id = ids.start + i as u64;
                // A record already present (a snapshot and the file overlapping) is kept as it is.
                if self.index.contains(id) {
                    continue;
                }
                let vector = &records[i * dim..(i + 1) * dim];
                let added = if self.own_i8 {
                    to_i8(vector, &mut quantised);
                    self.index.add(id, &quantised)
                } else {
                    self.index.add(id, vector)
                };
                if let Err(e) = added {
                    *failed.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(graph_error(&format!("inserting vector {id}"), e));
                    next.store(count, Ordering::Relaxed);
                    return;
                }
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..threads.clamp(1, TURNS) {
                scope.spawn(work);
            }
            work();
        });
        match failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Takes these records out of the graph (absent ones are skipped). Returns how many were in it.
    pub fn remove(&self, ids: impl Iterator<Item = u64>) -> Result<usize, SearchError> {
        let _shared = self.storage.read().unwrap_or_else(PoisonError::into_inner);
        let mut removed = 0;
        for id in ids {
            removed += self.index.remove(id).map_err(|e| graph_error(&format!("removing vector {id}"), e))?;
        }
        Ok(removed)
    }

    /// The ids of up to `count` allowed records nearest to `query`, nearest first by the graph's (quantised)
    /// distance; `count` is also the walk's candidate list (ef). The predicate is checked during the walk, so
    /// the graph keeps exploring until it has found `count` allowed ones (or run out).
    pub fn search(&self, query: &[f32], count: usize, allowed: &Bitset) -> Result<Vec<u64>, SearchError> {
        let _turn = self.turns.take();
        let _shared = self.storage.read().unwrap_or_else(PoisonError::into_inner);
        let found = if self.own_i8 {
            let mut quantised = Vec::with_capacity(query.len());
            to_i8(query, &mut quantised);
            self.index.filtered_search(&quantised, count, |id| allowed.contains(id))
        } else {
            self.index.filtered_search(query, count, |id| allowed.contains(id))
        }
        .map_err(|e| graph_error("searching the vector graph", e))?;
        Ok(found.keys)
    }

    /// Writes a snapshot covering the first `covers` records into `dir`, replacing older ones.
    pub fn snapshot(&self, dir: &Path, covers: usize, quantization: Quantization) -> Result<(), SearchError> {
        let started = std::time::Instant::now();
        let tmp = dir.join(format!("{SNAPSHOT_PREFIX}tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| SearchError::io(&tmp, e))?;
        let file = tmp.join(GRAPH_FILE);
        {
            let _shared = self.storage.read().unwrap_or_else(PoisonError::into_inner);
            self.index.save(utf8(&file)?).map_err(|e| graph_error("writing the vector graph snapshot", e))?;
        }
        let (bytes, crc32) = checksum(&file)?;
        std::fs::File::open(&file).and_then(|f| f.sync_all()).map_err(|e| SearchError::io(&file, e))?;
        let manifest = Manifest { covers, bytes, crc32, quantization };
        let manifest = serde_json::to_vec(&manifest).map_err(|e| SearchError::Corrupt(e.to_string()))?;
        write_atomically(&tmp.join(MANIFEST_FILE), &manifest)?;
        let done = dir.join(format!("{SNAPSHOT_PREFIX}{covers:012}"));
        match std::fs::rename(&tmp, &done) {
            Ok(()) => std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| SearchError::io(dir, e))?,
            // Another process (a second API) wrote the same snapshot first: keep theirs.
            Err(_) if done.exists() => {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => return Err(SearchError::io(&done, e)),
        }
        for (_, old) in snapshots(dir).into_iter().filter(|(n, _)| *n != covers) {
            let _ = std::fs::remove_dir_all(old);
        }
        remove_legacy_snapshots(dir);
        tracing::info!(
            vectors = covers,
            bytes,
            seconds = started.elapsed().as_secs_f32(),
            "vector graph snapshot written"
        );
        Ok(())
    }

    /// The newest snapshot in `dir` whose vectors are `dim` wide and that covers at most `records`, checked
    /// whole; with the records it covers. A damaged snapshot is said, removed, and `None` returned (the
    /// graph is then rebuilt from the vectors).
    pub fn load_newest(dir: &Path, dim: usize, records: usize) -> Option<(Self, usize)> {
        let (covers, path) = snapshots(dir).into_iter().max_by_key(|(n, _)| *n)?;
        let started = std::time::Instant::now();
        match Self::load(&path, dim, records) {
            Ok(graph) => {
                tracing::info!(
                    vectors = covers,
                    seconds = started.elapsed().as_secs_f32(),
                    "vector graph snapshot loaded"
                );
                Some((graph, covers))
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "vector graph snapshot unusable; removing it and rebuilding the graph");
                let _ = std::fs::remove_dir_all(&path);
                None
            }
        }
    }

    fn load(path: &Path, dim: usize, records: usize) -> Result<Self, SearchError> {
        let manifest_path = path.join(MANIFEST_FILE);
        let manifest = std::fs::read(&manifest_path).map_err(|e| SearchError::io(&manifest_path, e))?;
        let manifest: Manifest = serde_json::from_slice(&manifest)
            .map_err(|e| SearchError::Corrupt(format!("{}: {e}", manifest_path.display())))?;
        if manifest.covers > records {
            return Err(SearchError::Corrupt(format!(
                "the snapshot covers {} vectors but the vector file holds {records}",
                manifest.covers
            )));
        }
        let file = path.join(GRAPH_FILE);
        let (bytes, crc32) = checksum(&file)?;
        if (bytes, crc32) != (manifest.bytes, manifest.crc32) {
            return Err(SearchError::Corrupt(format!(
                "{}: {bytes} bytes with CRC-32 {crc32:08x}, the manifest says {} bytes with {:08x}",
                file.display(),
                manifest.bytes,
                manifest.crc32
            )));
        }
        let index = Index::restore(utf8(&file)?).map_err(|e| graph_error("loading the vector graph snapshot", e))?;
        if index.dimensions() != dim {
            return Err(SearchError::EmbeddingWidth { index: dim, got: index.dimensions() });
        }
        index.change_expansion_search(MIN_EXPANSION);
        let graph = Self::wrap(index);
        graph.reserve(records + records / 4)?;
        Ok(graph)
    }
}

/// `vector` in one byte per dimension, its largest component at ±127, rounded. Cosine ignores the scale,
/// so each vector uses the whole range: usearch's own cast scales unit vectors by 127 and truncates, leaving a
/// 384-dimension embedding's typical component (about 0.05) six levels.
fn to_i8(vector: &[f32], out: &mut Vec<i8>) {
    let largest = vector.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if largest > 0.0 { 127.0 / largest } else { 0.0 };
    out.clear();
    out.extend(vector.iter().map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8));
}

/// Length and CRC-32 of a file.
fn checksum(path: &Path) -> Result<(u64, u32), SearchError> {
    let mut file = std::fs::File::open(path).map_err(|e| SearchError::io(path, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| SearchError::io(path, e))?;
        if n == 0 {
            return Ok((bytes, hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
}

/// Snapshot folders, `(records covered, path)`.
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

fn remove_legacy_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(LEGACY_SNAPSHOT_PREFIX)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
