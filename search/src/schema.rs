use tantivy::schema::{
    FacetOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
    STORED, STRING,
};

use crate::tokenizer::SOCIAL;

/// The index's fields. `key` (`source/id`) identifies a document for idempotent replacement.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub key: Field,
    pub source: Field,
    pub id: Field,
    /// Analysed by the social tokenizer (hashtags, mentions, URLs, emoji), with positions for phrases.
    pub text: Field,
    pub created_at: Field,
    /// The producer's `lang`, as sent.
    pub lang: Field,
    /// The comment's language as murmur counts it ([`murmur_core::language_key`]): what `lang=` filters on.
    pub language: Field,
    pub tags: Field,
    pub sentiment: Field,
    /// Each emotion the model found.
    pub emotion: Field,
    /// Facets `/LABEL/name` (e.g. `/ORG/google`); a facet term also matches its ancestors (`/ORG`).
    pub entity: Field,
    /// The comment's embedding: its record number in the generation's vector file.
    pub vec_id: Field,
}

pub(crate) fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(SOCIAL).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        source: builder.add_text_field("source", STRING | STORED | FAST),
        id: builder.add_text_field("id", STRING | STORED),
        text: builder.add_text_field("text", text),
        created_at: builder.add_date_field("created_at", INDEXED | STORED | FAST),
        lang: builder.add_text_field("lang", STRING | STORED),
        language: builder.add_text_field("language", STRING | STORED),
        tags: builder.add_text_field("tags", STRING | STORED),
        sentiment: builder.add_text_field("sentiment", STRING | STORED | FAST),
        emotion: builder.add_text_field("emotion", STRING | STORED),
        entity: builder.add_facet_field("entity", FacetOptions::default().set_stored()),
        vec_id: builder.add_u64_field("vec_id", NumericOptions::default().set_indexed().set_fast().set_stored()),
    };
    (builder.build(), fields)
}
