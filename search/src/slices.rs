//! What the trends ask of the index: the time and sentiment of every comment in a slice the rollups do not
//! keep (a text query, two dimensions at once), and a slice's most representative comments.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use murmur_core::SentimentLabel;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{AllQuery, QueryParser};
use tantivy::SegmentReader;

use crate::query::{Filters, SearchHit, SearchMode, SearchQuery};
use crate::search::{filter_query, VecIds};
use crate::spaces::Space;
use crate::{SearchError, SearchIndex};

/// The centroid of a slice is estimated from at most this many of its vectors (evenly spread).
const CENTROID_SAMPLE: usize = 20_000;

/// A matching comment's time and sentiment.
pub type Point = (DateTime<Utc>, Option<SentimentLabel>);

impl SearchIndex {
    /// Time and sentiment of every comment that passes the filters.
    pub fn points(&self, filters: &Filters) -> Result<Vec<Point>, SearchError> {
        let Some(g) = self.generation() else { return Ok(Vec::new()) };
        let searcher = g.reader.searcher();
        let parser = QueryParser::for_index(&g.index, vec![g.fields.text]);
        let filter = filter_query(&g.fields, &parser, filters)?;
        Ok(match filter {
            Some(filter) => searcher.search(&*filter, &Points)?,
            None => searcher.search(&AllQuery, &Points)?,
        })
    }

    /// The comments that pass the filters, most representative first: nearest to the centroid of their
    /// embeddings (the comment that says what most of them say). Empty when none pass.
    pub fn representative(&self, filters: &Filters, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        let Some(g) = self.generation() else { return Ok(Vec::new()) };
        let Some(vectors) = &g.vectors else { return Err(SearchError::ReadOnly) };
        let searcher = g.reader.searcher();
        let parser = QueryParser::for_index(&g.index, vec![g.fields.text]);
        let allowed = match filter_query(&g.fields, &parser, filters)? {
            Some(filter) => Arc::new(searcher.search(&*filter, &VecIds)?),
            None => self.alive(&searcher)?,
        };
        // The English encoder's space: the comments the heads read, which trends are about.
        let space = Space::Encoder;
        let Some(centroid) = vectors.get(space).centroid(allowed.get(space), CENTROID_SAMPLE) else {
            return Ok(Vec::new());
        };
        let query = SearchQuery {
            q: filters.text.clone().unwrap_or_default(),
            mode: SearchMode::Semantic,
            embedding: Some(centroid),
            filters: filters.clone(),
            limit,
            ..SearchQuery::default()
        };
        Ok(self.search(&query)?.hits)
    }
}

struct Points;

struct SegmentPoints {
    created_at: Column<tantivy::DateTime>,
    sentiment: Option<Column<u64>>,
    /// Sentiment of each term ordinal of the segment's sentiment column.
    labels: Vec<Option<SentimentLabel>>,
    out: Vec<Point>,
}

impl Collector for Points {
    type Fruit = Vec<Point>;
    type Child = SegmentPoints;

    fn for_segment(&self, _: u32, segment: &SegmentReader) -> tantivy::Result<SegmentPoints> {
        let fast = segment.fast_fields();
        let column = fast.str("sentiment")?;
        let mut labels = Vec::new();
        if let Some(column) = &column {
            let mut term = String::new();
            for ord in 0..column.num_terms() as u64 {
                term.clear();
                column.ord_to_str(ord, &mut term)?;
                labels.push(SentimentLabel::ALL.into_iter().find(|l| l.as_str() == term));
            }
        }
        Ok(SegmentPoints {
            created_at: fast.date("created_at")?,
            sentiment: column.map(|c| c.ords().clone()),
            labels,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Point>>) -> tantivy::Result<Vec<Point>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegmentPoints {
    type Fruit = Vec<Point>;

    fn collect(&mut self, doc: u32, _: f32) {
        let Some(at) = self.created_at.first(doc) else { return };
        let Some(at) = DateTime::from_timestamp_micros(at.into_timestamp_micros()) else { return };
        let sentiment = self
            .sentiment
            .as_ref()
            .and_then(|c| c.first(doc))
            .and_then(|ord| self.labels.get(ord as usize).copied().flatten());
        self.out.push((at, sentiment));
    }

    fn harvest(self) -> Vec<Point> {
        self.out
    }
}
