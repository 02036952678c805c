use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use murmur_core::{counted_entities, BoxError, CommentId, CommentStore, EnrichedComment, Enrichment, Expired, Expiry};
use tantivy::query::RangeQuery;
use tantivy::schema::Value;
use tantivy::{DateTime as TantivyDateTime, IndexWriter, TantivyDocument, Term};

use crate::generation::{self, Generation};
use crate::query::entity_facet;
use crate::spaces::{Space, SpaceIds, SpaceLogs, SpaceStores};
use crate::vectors::{GraphStatus, HnswParams};
use crate::SearchError;

/// What this process does with the index. One process writes a generation at a time (the sink, the demo, or a
/// rebuild); any number read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Writes, never searches (the sink: no vector graph is kept).
    Write,
    /// Searches (the API): follows the writer's commits and generation switches.
    Read,
    /// Both (the embedded demo).
    ReadWrite,
}

impl Access {
    fn writes(self) -> bool {
        self != Self::Read
    }

    fn searches(self) -> bool {
        self != Self::Write
    }
}

#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Longest a written comment waits for a commit (and so to become searchable, and its offsets committed).
    pub commit_interval: Duration,
    /// Commit sooner once this many comments wait.
    pub commit_docs: usize,
    /// How often a searching process looks for new vectors and a new generation.
    pub refresh_interval: Duration,
    pub hnsw: HnswParams,
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_secs(1),
            commit_docs: 20_000,
            refresh_interval: Duration::from_millis(250),
            hnsw: HnswParams::default(),
        }
    }
}

const WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;
const REBUILD_MEMORY_BYTES: usize = 512 * 1024 * 1024;

/// A change not committed yet, kept to be made again if the commit fails.
enum Change {
    Add(Vec<EnrichedComment>),
    /// Comments' keys (`source/id`).
    Delete(Vec<String>),
    /// Every comment created before then.
    Expire(DateTime<Utc>),
}

impl Change {
    fn comments(&self) -> usize {
        match self {
            Self::Add(batch) => batch.len(),
            Self::Delete(keys) => keys.len(),
            Self::Expire(_) => 1,
        }
    }
}

/// The writing end of a generation: tantivy's writer and the vector log, committed together.
struct Writer {
    writer: IndexWriter,
    logs: SpaceLogs,
    /// Made since the last commit, in order.
    pending: Vec<Change>,
    /// Comments the pending changes touch.
    pending_comments: usize,
    last_commit: Instant,
}

impl Writer {
    /// `threads`: one keeps documents in arrival order (the sink); a rebuild uses more.
    fn open(generation: &Generation, threads: usize, memory: usize) -> Result<Self, SearchError> {
        let writer = generation.index.writer_with_num_threads(threads, memory).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => SearchError::WriterBusy(generation.path.display().to_string()),
            e => e.into(),
        })?;
        let logs = SpaceLogs::open(&generation.path)?;
        Ok(Self { writer, logs, pending: Vec::new(), pending_comments: 0, last_commit: Instant::now() })
    }

    /// Adds `batch`; a comment whose vector is from another encoder than its space's is found by its words only
    /// (and said, once per batch: changing encoders takes `murmur reindex`).
    fn add(&mut self, generation: &Generation, batch: &[EnrichedComment]) -> Result<(), SearchError> {
        let f = &generation.fields;
        let mut foreign = Vec::new();
        for enriched in batch {
            let c = &enriched.comment;
            let key = c.key().joined();
            self.writer.delete_term(Term::from_field_text(f.key, &key));
            let mut doc = TantivyDocument::new();
            doc.add_text(f.key, &key);
            doc.add_text(f.source, &c.source);
            doc.add_text(f.id, &c.id);
            doc.add_text(f.text, &c.text);
            doc.add_date(f.created_at, TantivyDateTime::from_timestamp_micros(c.created_at.timestamp_micros()));
            if let Some(lang) = &c.lang {
                doc.add_text(f.lang, lang);
            }
            doc.add_text(f.language, enriched.language_key());
            for tag in &c.tags {
                doc.add_text(f.tags, tag);
            }
            if let Some(sentiment) = &enriched.enrichment.sentiment {
                doc.add_text(f.sentiment, sentiment.label.as_str());
            }
            for emotion in enriched.enrichment.emotion.iter().flat_map(|e| &e.labels) {
                doc.add_text(f.emotion, emotion.as_str());
            }
            for (label, name) in counted_entities(enriched.enrichment.entities.as_deref().unwrap_or_default()) {
                doc.add_facet(f.entity, entity_facet(label, Some(&name)));
            }
            if let Some((space, model, vector)) = search_vector(&enriched.enrichment) {
                match self.logs.append(space, vector, model)? {
                    Some(vec_id) => doc.add_u64(f.vec_id, vec_id),
                    None => foreign.push((key, model)),
                }
            }
            self.writer.add_document(doc)?;
        }
        if let Some((first, model)) = foreign.first() {
            tracing::warn!(
                comments = foreign.len(),
                first = %first,
                model = %model,
                "vectors from another encoder than their space holds: these comments are found by their words only; \
                 run murmur reindex after changing encoders"
            );
        }
        Ok(())
    }

    /// Removes the documents of these keys (their vectors are no longer returned: only live documents'
    /// vectors are searched).
    fn delete(&mut self, generation: &Generation, keys: &[String]) {
        for key in keys {
            self.writer.delete_term(Term::from_field_text(generation.fields.key, key));
        }
    }

    /// Makes `change` (not yet committed) and keeps it for a retry.
    fn make(&mut self, generation: &Generation, change: Change) -> Result<(), SearchError> {
        match &change {
            Change::Add(batch) => self.add(generation, batch)?,
            Change::Delete(keys) => self.delete(generation, keys),
            Change::Expire(before) => {
                let before = TantivyDateTime::from_timestamp_micros(before.timestamp_micros());
                let before = Term::from_field_date(generation.fields.created_at, before);
                self.writer.delete_query(Box::new(RangeQuery::new(Bound::Unbounded, Bound::Excluded(before))))?;
            }
        }
        self.pending_comments += change.comments();
        self.pending.push(change);
        Ok(())
    }

    /// Vectors first (synced), then tantivy: a commit never references a vector that is not durable.
    fn commit(&mut self, generation: &Generation) -> Result<(), SearchError> {
        let committed = self.logs.sync().and_then(|()| Ok(self.writer.commit().map(|_| ())?));
        match committed {
            Ok(()) => {
                self.pending.clear();
                self.pending_comments = 0;
                self.last_commit = Instant::now();
                Ok(())
            }
            Err(e) => {
                // Start the uncommitted work over, so a retried commit covers all of it.
                self.writer.rollback()?;
                self.logs.rollback()?;
                self.pending_comments = 0;
                for change in std::mem::take(&mut self.pending) {
                    self.make(generation, change)?;
                }
                Err(e)
            }
        }
    }
}

struct Inner {
    root: PathBuf,
    options: IndexOptions,
    access: Access,
    /// `None` until a writer creates the first generation.
    generation: RwLock<Option<Arc<Generation>>>,
    writer: Option<Mutex<Writer>>,
    /// Vector ids of every live document, per tantivy searcher generation (what an unfiltered semantic search
    /// may return).
    alive: Mutex<Option<(u64, Arc<SpaceIds>)>>,
}

/// The space, encoder and vector semantic search reads for a comment: its multilingual vector where the worker
/// made one (a comment in a language the heads never learned), else its English encoder's; `None` when it has
/// neither (a stub model).
fn search_vector(enrichment: &Enrichment) -> Option<(Space, &str, &[f32])> {
    match &enrichment.multilingual {
        Some(m) if !m.vector.is_empty() => Some((Space::Multilingual, m.model.as_str(), m.vector.as_slice())),
        _ if !enrichment.embedding.is_empty() => {
            Some((Space::Encoder, enrichment.model.as_str(), enrichment.embedding.as_slice()))
        }
        _ => None,
    }
}

/// The encoders of an index's two vector spaces (see [`SearchIndex::vector_models`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VectorModels {
    pub encoder: Option<String>,
    pub multilingual: Option<String>,
}

/// The comment index: BM25 (tantivy) and vectors (HNSW) over the same documents. Cheap to clone (shared).
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SearchIndex {
    /// Opens the index folder `root`; a writer creates the first generation when there is none.
    pub fn open(root: &Path, access: Access, options: IndexOptions) -> Result<Self, SearchError> {
        let vectors = access.searches().then_some(options.hnsw);
        let mut path = generation::current(root)?;
        if path.is_none() && access.writes() {
            let created = generation::create(root)?;
            generation::publish(root, &created)?;
            path = Some(created);
        }
        let generation = match &path {
            Some(path) => Some(Arc::new(Generation::open(path, vectors)?)),
            None => None,
        };
        let writer = match (&generation, access.writes()) {
            (Some(generation), true) => Some(Mutex::new(Writer::open(generation, 1, WRITER_MEMORY_BYTES)?)),
            _ => None,
        };
        // The graph is loaded (or built) by the refresh thread: semantic searches are exact until it is ready.
        tracing::info!(root = %root.display(), generation = ?path, ?access, "search index open");
        let index = Self {
            inner: Arc::new(Inner {
                root: root.to_owned(),
                options,
                access,
                generation: RwLock::new(generation),
                writer,
                alive: Mutex::new(None),
            }),
        };
        if access.searches() {
            index.start_refresher();
        }
        Ok(index)
    }

    /// Documents committed in the index folder `root` now (0 when it has none), read without the vectors: for
    /// tools and checks that only count.
    pub fn committed_documents(root: &Path) -> Result<u64, SearchError> {
        match generation::current(root)? {
            Some(path) => Ok(Generation::open(&path, None)?.reader.searcher().num_docs()),
            None => Ok(0),
        }
    }

    pub(crate) fn generation(&self) -> Option<Arc<Generation>> {
        self.inner.generation.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A thread that keeps a searching process current: first the graph loaded or built, then new vectors
    /// into it, gone comments' vectors out of it, and a switch to a new generation once a rebuild publishes
    /// one. It ends when the index is dropped.
    fn start_refresher(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.options.refresh_interval;
        let spawned = std::thread::Builder::new().name("index-refresh".into()).spawn(move || loop {
            let Some(inner) = weak.upgrade() else { return };
            if let Err(e) = (SearchIndex { inner }).refresh() {
                tracing::warn!(error = %e, "index refresh failed; retrying");
            }
            std::thread::sleep(every);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the index refresh thread; new vectors will not be searchable");
        }
    }

    /// Picks up a newly published generation (readers only) and new vectors.
    pub fn refresh(&self) -> Result<(), SearchError> {
        if self.inner.access == Access::Read {
            let published = generation::current(&self.inner.root)?;
            let serving = self.generation().map(|g| g.path.clone());
            if let Some(path) = published.filter(|p| Some(p) != serving.as_ref()) {
                tracing::info!(generation = %path.display(), "switching to a new index generation");
                let next = Generation::open(&path, Some(self.inner.options.hnsw))?;
                if let Some(store) = &next.vectors {
                    store.refresh(true)?;
                }
                *self.inner.generation.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(next));
                *lock(&self.inner.alive) = None;
            }
        }
        let Some(generation) = self.generation() else { return Ok(()) };
        if let Some(stores) = &generation.vectors {
            stores.refresh(false)?;
            let alive = self.alive(&generation.reader.searcher())?;
            stores.prune(&alive)?;
        }
        Ok(())
    }

    fn writer(&self) -> Result<(MutexGuard<'_, Writer>, Arc<Generation>), SearchError> {
        let writer = self.inner.writer.as_ref().ok_or(SearchError::ReadOnly)?;
        let generation = self.generation().ok_or(SearchError::ReadOnly)?;
        Ok((lock(writer), generation))
    }

    /// Adds or replaces each comment (by source and id). Durable and searchable after the next [`Self::commit`].
    pub fn add(&self, batch: &[EnrichedComment]) -> Result<(), SearchError> {
        let (mut writer, generation) = self.writer()?;
        writer.make(&generation, Change::Add(batch.to_vec()))
    }

    /// Removes each comment (by source and id): no search finds it after the next [`Self::commit`].
    pub fn delete(&self, comments: &[CommentId]) -> Result<(), SearchError> {
        let (mut writer, generation) = self.writer()?;
        writer.make(&generation, Change::Delete(comments.iter().map(|c| c.key().joined()).collect()))
    }

    /// Removes every comment created before `before` (at once: a range deletion), after the next commit.
    pub fn expire(&self, before: DateTime<Utc>) -> Result<(), SearchError> {
        let (mut writer, generation) = self.writer()?;
        writer.make(&generation, Change::Expire(before))
    }

    /// Makes everything added durable and visible.
    pub fn commit(&self) -> Result<(), SearchError> {
        let (mut writer, generation) = self.writer()?;
        if writer.pending.is_empty() {
            return Ok(());
        }
        writer.commit(&generation)?;
        drop(writer);
        // Same-process readers see the commit at once; others reload on tantivy's commit notification.
        generation.reader.reload()?;
        if let Some(store) = &generation.vectors {
            store.refresh(false)?;
        }
        Ok(())
    }

    /// Whether comments have waited long enough (or are numerous enough) for a commit; true when none wait.
    pub fn commit_due(&self) -> bool {
        let Some(writer) = &self.inner.writer else { return false };
        let writer = lock(writer);
        writer.pending.is_empty()
            || writer.pending_comments >= self.inner.options.commit_docs
            || writer.last_commit.elapsed() >= self.inner.options.commit_interval
    }

    /// `add` then `commit`.
    pub fn write_batch(&self, batch: &[EnrichedComment]) -> Result<(), SearchError> {
        self.add(batch)?;
        self.commit()
    }

    /// Documents visible to searches now.
    pub fn num_docs(&self) -> u64 {
        self.generation().map_or(0, |g| g.reader.searcher().num_docs())
    }

    /// The encoders whose vectors the generation in service holds, in its English and its multilingual space: a
    /// semantic query must be embedded by them. `None` for a space without vectors (or one written before the
    /// encoder was recorded).
    pub fn vector_models(&self) -> VectorModels {
        // One generation read for both, so a switch between the two reads cannot mix them.
        let generation = self.generation();
        let model = |space| generation.as_ref().and_then(|g| g.vectors.as_ref().and_then(|v| v.get(space).model()));
        VectorModels { encoder: model(Space::Encoder), multilingual: model(Space::Multilingual) }
    }

    /// Where the vector graphs of the generation in service stand (both spaces together).
    pub fn graph_status(&self) -> GraphStatus {
        // No generation, or one opened for writing only: nothing to wait for.
        let nothing = GraphStatus { ready: true, ..GraphStatus::default() };
        self.generation().and_then(|g| g.vectors.as_ref().map(SpaceStores::status)).unwrap_or(nothing)
    }

    pub(crate) fn alive_cache(&self) -> MutexGuard<'_, Option<(u64, Arc<SpaceIds>)>> {
        lock(&self.inner.alive)
    }

    /// Starts a new generation in `root` to be filled from the system of record. While it is built, the
    /// generation in service stays in service and its writer lock is held, so no sink writes what the rebuild
    /// would miss (a sink started meanwhile fails with [`SearchError::WriterBusy`]; stop sinks first).
    pub fn rebuild(root: &Path, options: IndexOptions) -> Result<Rebuild, SearchError> {
        let previous = generation::current(root).or_else(|e| match e {
            SearchError::OldLayout(_) => Ok(None),
            e => Err(e),
        })?;
        let guard = match &previous {
            Some(path) => Some(Writer::open(&Generation::open(path, None)?, 1, WRITER_MEMORY_BYTES)?),
            None => None,
        };
        let path = generation::create(root)?;
        let generation = Generation::open(&path, None)?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
        let writer = Writer::open(&generation, threads, REBUILD_MEMORY_BYTES)?;
        tracing::info!(generation = %path.display(), "rebuilding the search index");
        Ok(Rebuild { root: root.to_owned(), options, previous, guard, generation, writer, docs: 0 })
    }
}

/// A generation being rebuilt; see [`SearchIndex::rebuild`]. Dropped without [`Rebuild::finish`], it leaves
/// the generation in service untouched (the unfinished folder is removed by the next rebuild).
pub struct Rebuild {
    root: PathBuf,
    options: IndexOptions,
    previous: Option<PathBuf>,
    guard: Option<Writer>,
    generation: Generation,
    writer: Writer,
    docs: u64,
}

impl Rebuild {
    pub fn add(&mut self, batch: &[EnrichedComment]) -> Result<(), SearchError> {
        self.writer.add(&self.generation, batch)?;
        self.docs += batch.len() as u64;
        Ok(())
    }

    pub fn docs(&self) -> u64 {
        self.docs
    }

    /// Commits what was added so far (the text side; `finish` commits again and builds the vectors' graph).
    pub fn commit(&mut self) -> Result<(), SearchError> {
        self.writer.commit(&self.generation)
    }

    /// Commits, builds the vector graph (all cores) and snapshots it, then puts the generation in service
    /// and removes the ones before the previous. Returns the new generation's folder.
    pub fn finish(mut self) -> Result<PathBuf, SearchError> {
        self.writer.commit(&self.generation)?;
        let vectors = SpaceStores::open(&self.generation.path, self.options.hnsw)?;
        vectors.refresh(true)?;
        vectors.snapshot()?;
        generation::publish(&self.root, &self.generation.path)?;
        drop(self.guard.take());
        let keep: Vec<&Path> =
            [Some(self.generation.path.as_path()), self.previous.as_deref()].into_iter().flatten().collect();
        generation::remove_others(&self.root, &keep)?;
        tracing::info!(generation = %self.generation.path.display(), docs = self.docs, "search index rebuilt and in service");
        Ok(self.generation.path.clone())
    }
}

/// Reads a stored text field.
pub(crate) fn stored_text(doc: &TantivyDocument, field: tantivy::schema::Field) -> Option<String> {
    doc.get_first(field).and_then(|v| v.as_str()).map(str::to_owned)
}

#[async_trait]
impl CommentStore for SearchIndex {
    fn name(&self) -> &'static str {
        "tantivy"
    }

    async fn upsert(&self, batch: &[EnrichedComment]) -> Result<(), BoxError> {
        let index = self.clone();
        let batch = batch.to_vec();
        tokio::task::spawn_blocking(move || index.add(&batch)).await.map_err(|_| SearchError::WriteTask)??;
        Ok(())
    }

    async fn delete(&self, comments: &[CommentId]) -> Result<(), BoxError> {
        let index = self.clone();
        let comments = comments.to_vec();
        tokio::task::spawn_blocking(move || index.delete(&comments)).await.map_err(|_| SearchError::WriteTask)??;
        Ok(())
    }

    async fn expire(&self, expiry: &Expiry) -> Result<Expired, BoxError> {
        if let Some(before) = expiry.comments_before {
            let index = self.clone();
            tokio::task::spawn_blocking(move || index.expire(before)).await.map_err(|_| SearchError::WriteTask)??;
        }
        Ok(Expired::default())
    }

    fn flush_due(&self) -> bool {
        self.commit_due()
    }

    async fn flush(&self) -> Result<(), BoxError> {
        let index = self.clone();
        tokio::task::spawn_blocking(move || index.commit()).await.map_err(|_| SearchError::WriteTask)??;
        Ok(())
    }
}
