use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use murmur_core::{normalize_entity_name, BoxError, CommentStore, EnrichedComment, EntityLabel, SentimentLabel};
use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, QueryClone, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{Facet, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime as TantivyDateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::schema::{self, Fields};
use crate::SearchError;

/// Whether this process writes the index (one writer per index folder: the sink, or the demo) or only
/// reads it (the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

/// A search over the comments. `q` uses tantivy's query syntax (words, `"phrases"`, `+must -not`, `a OR b`).
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub q: String,
    pub source: Option<String>,
    pub sentiment: Option<SentimentLabel>,
    pub entity: Option<EntityFilter>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
    pub offset: usize,
    /// Also count the matching comments per sentiment and per entity.
    pub facets: bool,
}

/// Comments that mention an entity: by type, by name (any type), or both. Names compare after
/// [`normalize_entity_name`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityFilter {
    pub label: Option<EntityLabel>,
    pub name: Option<String>,
}

impl EntityFilter {
    /// `ORG:Google`, `ORG` (a type alone) or `Google` (a name of any type).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let (label, name) = match s.split_once(':') {
            Some((label, name)) => match EntityLabel::parse(label) {
                Some(label) => (Some(label), Some(name)),
                None => (None, Some(s)),
            },
            None => match EntityLabel::parse(s) {
                Some(label) => (Some(label), None),
                None => (None, Some(s)),
            },
        };
        let name = name.map(normalize_entity_name).filter(|n| !n.is_empty());
        (label.is_some() || name.is_some()).then_some(Self { label, name })
    }

    fn facets(&self) -> Vec<Facet> {
        let labels = self.label.map_or_else(|| EntityLabel::ALL.to_vec(), |l| vec![l]);
        labels.into_iter().map(|label| entity_facet(label, self.name.as_deref())).collect()
    }
}

fn entity_facet(label: EntityLabel, name: Option<&str>) -> Facet {
    match name {
        Some(name) => Facet::from_path([label.as_str(), name]),
        None => Facet::from_path([label.as_str()]),
    }
}

/// An entity a hit mentions, by type and normalised name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HitEntity {
    pub label: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub score: f32,
    pub source: String,
    pub id: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub lang: Option<String>,
    pub tags: Vec<String>,
    pub sentiment: Option<String>,
    /// Distinct entities, in order of first mention.
    pub entities: Vec<HitEntity>,
    /// The text's best fragment (at most [`SNIPPET_CHARS`] characters), HTML-escaped, the query's words in
    /// `<b>…</b>`; empty when no word of the query occurs in the text.
    pub snippet: String,
}

/// Longest snippet, in characters.
pub const SNIPPET_CHARS: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<SearchHit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
}

/// Counts over every comment that matches (not only the page of hits).
#[derive(Debug, Clone, Serialize)]
pub struct Facets {
    /// Comments per sentiment class (classes with none included).
    pub sentiment: std::collections::BTreeMap<&'static str, usize>,
    /// The most mentioned entities, most first (ties by type, then name).
    pub entities: Vec<EntityFacet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityFacet {
    pub label: String,
    pub name: String,
    pub comments: u64,
}

/// Entities listed in a facet answer.
const TOP_ENTITY_FACETS: usize = 20;

struct Inner {
    index: Index,
    reader: IndexReader,
    writer: Option<Mutex<IndexWriter>>,
    fields: Fields,
}

/// The comment index. Cheap to clone (shared).
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

const WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;

impl SearchIndex {
    /// Opens the index in `dir`, creating it (and the folder) when there is none yet.
    pub fn open(dir: &Path, access: Access) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| SearchError::Directory { path: dir.display().to_string(), source })?;
        let (schema, fields) = schema::build();
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = if Index::exists(&directory).map_err(|e| SearchError::Index(e.into()))? {
            let index = Index::open(directory)?;
            if index.schema() != schema {
                return Err(SearchError::SchemaMismatch(dir.display().to_string()));
            }
            index
        } else {
            Index::create(directory, schema, tantivy::IndexSettings::default())?
        };
        let reader = index.reader_builder().reload_policy(ReloadPolicy::OnCommitWithDelay).try_into()?;
        let writer = match access {
            Access::ReadWrite => Some(Mutex::new(index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?)),
            Access::ReadOnly => None,
        };
        tracing::info!(dir = %dir.display(), ?access, "search index open");
        Ok(Self { inner: Arc::new(Inner { index, reader, writer, fields }) })
    }

    /// Replaces or adds each comment and commits: when this returns, the batch is durable and searchable.
    pub fn write_batch(&self, batch: &[EnrichedComment]) -> Result<(), SearchError> {
        let f = &self.inner.fields;
        let mut writer = self
            .inner
            .writer
            .as_ref()
            .ok_or(SearchError::ReadOnly)?
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for enriched in batch {
            let c = &enriched.comment;
            let key = c.key().joined();
            writer.delete_term(Term::from_field_text(f.key, &key));
            let mut doc = TantivyDocument::new();
            doc.add_text(f.key, &key);
            doc.add_text(f.source, &c.source);
            doc.add_text(f.id, &c.id);
            doc.add_text(f.text, &c.text);
            doc.add_date(f.created_at, TantivyDateTime::from_timestamp_micros(c.created_at.timestamp_micros()));
            if let Some(lang) = &c.lang {
                doc.add_text(f.lang, lang);
            }
            for tag in &c.tags {
                doc.add_text(f.tags, tag);
            }
            if let Some(sentiment) = &enriched.enrichment.sentiment {
                doc.add_text(f.sentiment, sentiment.label.as_str());
            }
            let mut seen = std::collections::HashSet::new();
            for entity in enriched.enrichment.entities.iter().flatten() {
                let name = entity.name();
                if !name.is_empty() && seen.insert((entity.label, name.clone())) {
                    doc.add_facet(f.entity, entity_facet(entity.label, Some(&name)));
                }
            }
            writer.add_document(doc)?;
        }
        writer.commit()?;
        drop(writer);
        // Same-process readers (the demo) see the batch at once; others reload on the commit notification.
        self.inner.reader.reload()?;
        Ok(())
    }

    /// Documents visible to searches now.
    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    pub fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError> {
        let f = &self.inner.fields;
        let parser = QueryParser::for_index(&self.inner.index, vec![f.text]);
        let text_query = parser.parse_query(&query.q).map_err(|e| SearchError::InvalidQuery(e.to_string()))?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query)];
        let exact = [(f.source, query.source.as_deref()), (f.sentiment, query.sentiment.map(SentimentLabel::as_str))];
        for (field, value) in exact {
            if let Some(value) = value {
                let term = TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic);
                clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(term), 0.0))));
            }
        }
        if let Some(entity) = &query.entity {
            let any: Vec<(Occur, Box<dyn Query>)> = entity
                .facets()
                .into_iter()
                .map(|facet| {
                    let term = TermQuery::new(Term::from_facet(f.entity, &facet), IndexRecordOption::Basic);
                    (Occur::Should, Box::new(term) as Box<dyn Query>)
                })
                .collect();
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(BooleanQuery::new(any)), 0.0))));
        }
        if query.from.is_some() || query.to.is_some() {
            let bound = |t: Option<DateTime<Utc>>, inclusive: bool| match t {
                None => Bound::Unbounded,
                Some(t) => {
                    let term = Term::from_field_date(
                        f.created_at,
                        TantivyDateTime::from_timestamp_micros(t.timestamp_micros()),
                    );
                    if inclusive {
                        Bound::Included(term)
                    } else {
                        Bound::Excluded(term)
                    }
                }
            };
            let range = RangeQuery::new(bound(query.from, true), bound(query.to, false));
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(range), 0.0))));
        }
        let combined = BooleanQuery::new(clauses);
        let searcher = self.inner.reader.searcher();
        let top = TopDocs::with_limit(query.limit.max(1)).and_offset(query.offset);
        let (top, total) = searcher.search(&combined, &(top, Count))?;
        let mut snippets = SnippetGenerator::create(&searcher, &combined, f.text)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let hits = top
            .into_iter()
            .map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address)?;
                let mut hit = hit_from(&doc, f, score);
                let snippet = snippets.snippet_from_doc(&doc);
                if !snippet.is_empty() {
                    hit.snippet = snippet.to_html();
                }
                Ok(hit)
            })
            .collect::<Result<Vec<_>, SearchError>>()?;
        let facets = if query.facets { Some(self.facets(&searcher, &combined)?) } else { None };
        Ok(SearchResults { total, hits, facets })
    }

    fn facets(&self, searcher: &tantivy::Searcher, matching: &BooleanQuery) -> Result<Facets, SearchError> {
        let f = &self.inner.fields;
        let mut sentiment = std::collections::BTreeMap::new();
        for label in SentimentLabel::ALL {
            let term = TermQuery::new(Term::from_field_text(f.sentiment, label.as_str()), IndexRecordOption::Basic);
            let both = BooleanQuery::new(vec![
                (Occur::Must, matching.box_clone()),
                (Occur::Must, Box::new(ConstScoreQuery::new(Box::new(term), 0.0))),
            ]);
            sentiment.insert(label.as_str(), searcher.search(&both, &Count)?);
        }
        let mut collector = FacetCollector::for_field("entity");
        for label in EntityLabel::ALL {
            collector.add_facet(entity_facet(label, None));
        }
        let counts = searcher.search(matching, &collector)?;
        let mut entities: Vec<EntityFacet> = EntityLabel::ALL
            .iter()
            .flat_map(|&label| {
                counts.top_k(entity_facet(label, None), TOP_ENTITY_FACETS).into_iter().filter_map(move |(facet, n)| {
                    let name = facet.to_path().get(1).map(|s| (*s).to_owned())?;
                    Some(EntityFacet { label: label.as_str().to_owned(), name, comments: n })
                })
            })
            .collect();
        entities
            .sort_by(|a, b| b.comments.cmp(&a.comments).then_with(|| (&a.label, &a.name).cmp(&(&b.label, &b.name))));
        entities.truncate(TOP_ENTITY_FACETS);
        Ok(Facets { sentiment, entities })
    }
}

fn hit_from(doc: &TantivyDocument, f: &Fields, score: f32) -> SearchHit {
    let text = |field| doc.get_first(field).and_then(|v| v.as_str()).map(str::to_owned);
    let created_at = doc
        .get_first(f.created_at)
        .and_then(|v| v.as_datetime())
        .and_then(|d| DateTime::<Utc>::from_timestamp_micros(d.into_timestamp_micros()))
        .unwrap_or_default();
    SearchHit {
        score,
        source: text(f.source).unwrap_or_default(),
        id: text(f.id).unwrap_or_default(),
        text: text(f.text).unwrap_or_default(),
        created_at,
        lang: text(f.lang),
        tags: doc.get_all(f.tags).filter_map(|v| v.as_str()).map(str::to_owned).collect(),
        sentiment: text(f.sentiment),
        entities: doc
            .get_all(f.entity)
            .filter_map(|v| v.as_facet())
            .filter_map(|path| {
                let facet = Facet::from_encoded(path.as_bytes().to_vec()).ok()?;
                let mut parts = facet.to_path().into_iter();
                Some(HitEntity { label: parts.next()?.to_owned(), name: parts.next()?.to_owned() })
            })
            .collect(),
        snippet: String::new(),
    }
}

#[async_trait]
impl CommentStore for SearchIndex {
    fn name(&self) -> &'static str {
        "tantivy"
    }

    async fn upsert(&self, batch: &[EnrichedComment]) -> Result<(), BoxError> {
        let index = self.clone();
        let batch = batch.to_vec();
        tokio::task::spawn_blocking(move || index.write_batch(&batch)).await.map_err(|_| SearchError::WriteTask)??;
        Ok(())
    }
}
