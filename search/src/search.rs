//! Running a [`SearchQuery`]: BM25, nearest neighbours of the query's embedding under the same filters, or
//! both fused by reciprocal rank; then hits (with snippets and, on request, why they rank), and facets.

use std::ops::Bound;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use murmur_core::{EmotionLabel, EntityLabel, SentimentLabel};
use serde_json::json;
use tantivy::collector::{Collector, Count, FacetCollector, SegmentCollector, TopDocs};
use tantivy::columnar::Column;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{Facet, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime as TantivyDateTime, DocAddress, Searcher, SegmentReader, TantivyDocument, Term};

use crate::fusion::{fuse, List, Ranks};
use crate::generation::Generation;
use crate::index::stored_text;
use crate::query::{
    entity_facet, EntityFacet, EntityFilter, Facets, Filters, HitEntity, SearchHit, SearchMode, SearchQuery,
    SearchResults, RANK_WINDOW, SNIPPET_CHARS,
};
use crate::schema::Fields;
use crate::spaces::{merge, Background, Space, SpaceIds};
use crate::vectors::{AnnMethod, Neighbour};
use crate::{SearchError, SearchIndex};

/// Entities listed in a facet answer.
const TOP_ENTITY_FACETS: usize = 20;
/// Hybrid search reads each list this deep first; when that does not fix the page, the whole rank window.
const FUSION_DEPTH: usize = 100;

/// Ranked documents (address, score, where from), how many the ranking covers, how the vectors were
/// searched, and the query facets count over.
type Ranking = (Vec<(DocAddress, f32, Ranks)>, usize, Option<AnnMethod>, Box<dyn Query>);
/// The nearest documents, how many passed the filter, and how they were found.
type Nearest = (Vec<(DocAddress, Neighbour)>, usize, AnnMethod);

impl SearchIndex {
    pub fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError> {
        let Some(generation) = self.generation() else {
            return Ok(SearchResults { mode: query.mode, total: 0, hits: Vec::new(), ann: None, facets: None });
        };
        let g = &*generation;
        let f = &g.fields;
        let searcher = g.reader.searcher();
        let parser = QueryParser::for_index(&g.index, vec![f.text]);
        let filter = filter_query(f, &parser, &query.filters)?;
        let window = query.offset + query.limit.max(1);
        if query.mode != SearchMode::Bm25 && window > RANK_WINDOW {
            return Err(SearchError::TooDeep { mode: query.mode.as_str(), deepest: RANK_WINDOW });
        }

        let text_query = match query.mode {
            SearchMode::Bm25 | SearchMode::Hybrid => {
                parser.parse_query(&query.q).map_err(|e| SearchError::InvalidQuery(e.to_string()))?
            }
            // Only for snippets: words of the query highlighted where they occur.
            SearchMode::Semantic => parser.parse_query_lenient(&query.q).0,
        };
        let matching = |text: Option<&Box<dyn Query>>| -> Box<dyn Query> {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            if let Some(text) = text {
                clauses.push((Occur::Must, text.box_clone()));
            }
            if let Some(filter) = &filter {
                clauses.push((Occur::Must, filter.box_clone()));
            }
            if clauses.is_empty() {
                Box::new(AllQuery)
            } else {
                Box::new(BooleanQuery::new(clauses))
            }
        };

        let (ranked, total, ann, facet_query): Ranking = match query.mode {
            SearchMode::Bm25 => {
                let bm25 = matching(Some(&text_query));
                let (top, total) = searcher.search(&*bm25, &(TopDocs::with_limit(window), Count))?;
                let ranked = top
                    .into_iter()
                    .enumerate()
                    .map(|(i, (score, a))| (a, score, Ranks { bm25: Some((i + 1, score)), semantic: None }))
                    .collect();
                (ranked, total, None, bm25)
            }
            SearchMode::Semantic => {
                let (neighbours, allowed, method) = self.nearest(g, &searcher, query, filter.as_deref(), window)?;
                let ranked = neighbours
                    .into_iter()
                    .enumerate()
                    .map(|(i, (a, n))| (a, n.similarity, Ranks { bm25: None, semantic: Some((i + 1, n.similarity)) }))
                    .collect();
                (ranked, allowed, Some(method), matching(None))
            }
            SearchMode::Hybrid => {
                let bm25 = matching(Some(&text_query));
                let mut depth = window.max(FUSION_DEPTH);
                loop {
                    let top = searcher.search(&*bm25, &TopDocs::with_limit(depth))?;
                    let (neighbours, allowed, method) = self.nearest(g, &searcher, query, filter.as_deref(), depth)?;
                    // A list read to the rank window is complete as far as the ranking goes.
                    let complete = |read: usize| read < depth || depth == RANK_WINDOW;
                    let lists = (
                        List { complete: complete(top.len()), items: top.into_iter().map(|(s, a)| (a, s)).collect() },
                        List {
                            complete: complete(neighbours.len()),
                            items: neighbours.into_iter().map(|(a, n)| (a, n.similarity)).collect(),
                        },
                    );
                    let fused = fuse(&lists.0, &lists.1, query.fusion);
                    if fused.exact >= window || (lists.0.complete && lists.1.complete) {
                        break (fused.ranked, allowed, Some(method), matching(None));
                    }
                    depth = RANK_WINDOW;
                }
            }
        };

        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, f.text)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let bm25_for_explain = if query.explain { Some(matching(Some(&text_query))) } else { None };
        let hits = ranked
            .into_iter()
            .skip(query.offset)
            .take(query.limit)
            .map(|(address, score, ranks)| {
                let doc: TantivyDocument = searcher.doc(address)?;
                let mut hit = hit_from(&doc, f, score);
                let snippet = snippets.snippet_from_doc(&doc);
                if !snippet.is_empty() {
                    hit.snippet = snippet.to_html();
                }
                if query.explain {
                    hit.explain = Some(explain(query, &searcher, bm25_for_explain.as_deref(), address, ranks, ann)?);
                }
                Ok(hit)
            })
            .collect::<Result<Vec<_>, SearchError>>()?;
        let facets = if query.facets { Some(facets(f, &searcher, &*facet_query)?) } else { None };
        Ok(SearchResults { mode: query.mode, total, hits, ann, facets })
    }

    /// The `k` nearest comments that pass the filter, with how many pass it and how they were found.
    fn nearest(
        &self,
        g: &Generation,
        searcher: &Searcher,
        query: &SearchQuery,
        filter: Option<&dyn Query>,
        k: usize,
    ) -> Result<Nearest, SearchError> {
        if query.embedding.is_none() && query.multilingual_embedding.is_none() {
            return Err(SearchError::EmbeddingRequired(query.mode.as_str()));
        }
        let Some(stores) = &g.vectors else { return Err(SearchError::ReadOnly) };
        let allowed = match filter {
            Some(filter) => Arc::new(searcher.search(filter, &VecIds)?),
            None => self.alive(searcher)?,
        };
        // Ask for a few more than needed: a vector can belong to a document replaced since this searcher.
        let mut method = AnnMethod::Exact;
        let mut found = [Vec::new(), Vec::new()];
        let mut backgrounds = [None, None];
        for (i, (space, embedding)) in
            [(Space::Encoder, &query.embedding), (Space::Multilingual, &query.multilingual_embedding)]
                .into_iter()
                .enumerate()
        {
            let (Some(embedding), ids) = (embedding.as_deref(), allowed.get(space)) else { continue };
            if ids.len() == 0 {
                continue;
            }
            let store = stores.get(space);
            let (neighbours, how) = store.search(embedding, k + 8, ids)?;
            if how == AnnMethod::Graph {
                method = AnnMethod::Graph;
            }
            found[i] = neighbours;
            backgrounds[i] = Background::of(store, embedding, ids);
        }
        let [encoder, multilingual] = found;
        let both = match backgrounds {
            [Some(e), Some(m)] if !encoder.is_empty() && !multilingual.is_empty() => Some((e, m)),
            _ => None,
        };
        let mut out = Vec::with_capacity(k);
        for (space, n) in merge(encoder, multilingual, both) {
            let term = Term::from_field_u64(g.fields.vec_id, space.vec_id(n.id));
            let hit = searcher.search(&TermQuery::new(term, IndexRecordOption::Basic), &TopDocs::with_limit(1))?;
            if let Some((_, address)) = hit.first() {
                out.push((*address, n));
            }
            if out.len() == k {
                break;
            }
        }
        Ok((out, allowed.len(), method))
    }

    /// Vector ids of every live document, computed once per tantivy searcher generation.
    pub(crate) fn alive(&self, searcher: &Searcher) -> Result<Arc<SpaceIds>, SearchError> {
        let id = searcher.generation().generation_id();
        if let Some((cached, ids)) = self.alive_cache().as_ref() {
            if *cached == id {
                return Ok(ids.clone());
            }
        }
        let ids = Arc::new(searcher.search(&AllQuery, &VecIds)?);
        *self.alive_cache() = Some((id, ids.clone()));
        Ok(ids)
    }
}

/// Comments that mention the entity (any of the facets the filter stands for).
fn entity_query(f: &Fields, entity: &EntityFilter) -> BooleanQuery {
    let any: Vec<(Occur, Box<dyn Query>)> = entity
        .facets()
        .into_iter()
        .map(|facet| {
            let term = TermQuery::new(Term::from_facet(f.entity, &facet), IndexRecordOption::Basic);
            (Occur::Should, Box::new(term) as Box<dyn Query>)
        })
        .collect();
    BooleanQuery::new(any)
}

/// The filters as one non-scoring query; `None` when there are none.
pub(crate) fn filter_query(
    f: &Fields,
    parser: &QueryParser,
    filters: &Filters,
) -> Result<Option<Box<dyn Query>>, SearchError> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if let Some(text) = &filters.text {
        clauses.push((Occur::Must, parser.parse_query(text).map_err(|e| SearchError::InvalidQuery(e.to_string()))?));
    }
    let exact = [
        (f.source, filters.source.as_deref()),
        (f.sentiment, filters.sentiment.map(SentimentLabel::as_str)),
        (f.tags, filters.tag.as_deref()),
        (f.emotion, filters.emotion.map(EmotionLabel::as_str)),
        (f.language, filters.language.as_deref()),
    ];
    for (field, value) in exact {
        if let Some(value) = value {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic)),
            ));
        }
    }
    if let Some(entity) = &filters.entity {
        clauses.push((Occur::Must, Box::new(entity_query(f, entity))));
    }
    if filters.from.is_some() || filters.to.is_some() {
        let bound = |t: Option<DateTime<Utc>>, inclusive: bool| match t {
            None => Bound::Unbounded,
            Some(t) => {
                let term =
                    Term::from_field_date(f.created_at, TantivyDateTime::from_timestamp_micros(t.timestamp_micros()));
                if inclusive {
                    Bound::Included(term)
                } else {
                    Bound::Excluded(term)
                }
            }
        };
        clauses.push((Occur::Must, Box::new(RangeQuery::new(bound(filters.from, true), bound(filters.to, false)))));
    }
    Ok((!clauses.is_empty())
        .then(|| Box::new(ConstScoreQuery::new(Box::new(BooleanQuery::new(clauses)), 0.0)) as Box<dyn Query>))
}

fn explain(
    query: &SearchQuery,
    searcher: &Searcher,
    bm25: Option<&dyn Query>,
    address: DocAddress,
    ranks: Ranks,
    ann: Option<AnnMethod>,
) -> Result<serde_json::Value, SearchError> {
    let bm25_explanation = |bm25: Option<&dyn Query>| -> Result<serde_json::Value, SearchError> {
        match bm25 {
            Some(q) => Ok(serde_json::to_value(q.explain(searcher, address)?).unwrap_or_default()),
            None => Ok(serde_json::Value::Null),
        }
    };
    Ok(match query.mode {
        SearchMode::Bm25 => json!({ "bm25": bm25_explanation(bm25)?, "rank": ranks.bm25.map(|r| r.0) }),
        SearchMode::Semantic => json!({
            "similarity": ranks.semantic.map(|r| r.1),
            "rank": ranks.semantic.map(|r| r.0),
            "method": ann,
        }),
        SearchMode::Hybrid => {
            let fusion = query.fusion;
            json!({
                "fusion": { "k": fusion.k, "bm25_weight": fusion.bm25_weight, "semantic_weight": fusion.semantic_weight },
                "bm25": ranks.bm25.map(|(rank, score)| json!({
                    "rank": rank, "score": score, "contribution": fusion.contribution(rank, fusion.bm25_weight),
                    "explanation": bm25_explanation(bm25).unwrap_or_default(),
                })),
                "semantic": ranks.semantic.map(|(rank, similarity)| json!({
                    "rank": rank, "similarity": similarity, "method": ann,
                    "contribution": fusion.contribution(rank, fusion.semantic_weight),
                })),
            })
        }
    })
}

/// How many of the matching comments hold each value in `field` (values with none included).
fn term_counts<const N: usize>(
    searcher: &Searcher,
    matching: &dyn Query,
    field: tantivy::schema::Field,
    values: [&'static str; N],
) -> Result<std::collections::BTreeMap<&'static str, usize>, SearchError> {
    let mut counts = std::collections::BTreeMap::new();
    for value in values {
        let term = TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic);
        let both = BooleanQuery::new(vec![
            (Occur::Must, matching.box_clone()),
            (Occur::Must, Box::new(ConstScoreQuery::new(Box::new(term), 0.0))),
        ]);
        counts.insert(value, searcher.search(&both, &Count)?);
    }
    Ok(counts)
}

fn facets(f: &Fields, searcher: &Searcher, matching: &dyn Query) -> Result<Facets, SearchError> {
    let sentiment = term_counts(searcher, matching, f.sentiment, SentimentLabel::ALL.map(SentimentLabel::as_str))?;
    let emotion = term_counts(searcher, matching, f.emotion, EmotionLabel::ALL.map(EmotionLabel::as_str))?;
    let mut collector = FacetCollector::for_field("entity");
    for label in EntityLabel::ALL {
        collector.add_facet(entity_facet(label, None));
    }
    let counts = searcher.search(matching, &collector)?;
    let top = |label: EntityLabel| -> Vec<(String, u64)> {
        counts
            .top_k(entity_facet(label, None), TOP_ENTITY_FACETS)
            .into_iter()
            .filter_map(|(facet, n)| Some((facet.to_path().get(1).map(|s| (*s).to_owned())?, n)))
            .collect()
    };
    let mut entities: Vec<EntityFacet> = Vec::new();
    // Names written in the text: one entry per name, its types' counts, and its comments counted exactly
    // (a comment naming it two ways counts once).
    let mut names: std::collections::BTreeMap<String, Vec<(String, u64)>> = std::collections::BTreeMap::new();
    for label in EntityLabel::NAMES {
        for (name, n) in top(label) {
            names.entry(name).or_default().push((label.as_str().to_owned(), n));
        }
    }
    for (name, mut types) in names {
        types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let comments = match types.as_slice() {
            [(_, n)] => *n,
            _ => {
                let filter = EntityFilter { label: None, name: Some(name.clone()) };
                let either = BooleanQuery::new(vec![
                    (Occur::Must, matching.box_clone()),
                    (Occur::Must, Box::new(ConstScoreQuery::new(Box::new(entity_query(f, &filter)), 0.0))),
                ]);
                searcher.search(&either, &Count)? as u64
            }
        };
        entities.push(EntityFacet { label: types[0].0.clone(), name, comments, types });
    }
    for label in [EntityLabel::Handle, EntityLabel::Hashtag] {
        entities.extend(top(label).into_iter().map(|(name, comments)| EntityFacet {
            label: label.as_str().to_owned(),
            name,
            comments,
            types: Vec::new(),
        }));
    }
    entities.sort_by(|a, b| b.comments.cmp(&a.comments).then_with(|| (&a.label, &a.name).cmp(&(&b.label, &b.name))));
    entities.truncate(TOP_ENTITY_FACETS);
    Ok(Facets { sentiment, emotion, entities })
}

fn hit_from(doc: &TantivyDocument, f: &Fields, score: f32) -> SearchHit {
    let created_at = doc
        .get_first(f.created_at)
        .and_then(|v| v.as_datetime())
        .and_then(|d| DateTime::<Utc>::from_timestamp_micros(d.into_timestamp_micros()))
        .unwrap_or_default();
    SearchHit {
        score,
        source: stored_text(doc, f.source).unwrap_or_default(),
        id: stored_text(doc, f.id).unwrap_or_default(),
        text: stored_text(doc, f.text).unwrap_or_default(),
        created_at,
        lang: stored_text(doc, f.lang),
        language: stored_text(doc, f.language).unwrap_or_else(|| murmur_core::UNDETERMINED_LANGUAGE.to_owned()),
        tags: doc.get_all(f.tags).filter_map(|v| v.as_str()).map(str::to_owned).collect(),
        sentiment: stored_text(doc, f.sentiment),
        emotions: doc.get_all(f.emotion).filter_map(|v| v.as_str()).map(str::to_owned).collect(),
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
        explain: None,
        cluster_size: None,
    }
}

/// Collects the vector ids of matching documents, per space.
pub(crate) struct VecIds;

pub(crate) struct SegmentVecIds {
    column: Column<u64>,
    ids: SpaceIds,
}

impl Collector for VecIds {
    type Fruit = SpaceIds;
    type Child = SegmentVecIds;

    fn for_segment(&self, _: u32, segment: &SegmentReader) -> tantivy::Result<SegmentVecIds> {
        Ok(SegmentVecIds { column: segment.fast_fields().u64("vec_id")?, ids: SpaceIds::default() })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<SpaceIds>) -> tantivy::Result<SpaceIds> {
        let mut all = SpaceIds::default();
        for fruit in &fruits {
            all.union(fruit);
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentVecIds {
    type Fruit = SpaceIds;

    fn collect(&mut self, doc: u32, _: f32) {
        if let Some(id) = self.column.first(doc) {
            self.ids.insert(id);
        }
    }

    fn harvest(self) -> SpaceIds {
        self.ids
    }
}
