use tantivy::schema::{FacetOptions, Field, Schema, FAST, INDEXED, STORED, STRING, TEXT};

/// The index's fields. `key` (`source/id`) identifies a document for idempotent replacement.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub key: Field,
    pub source: Field,
    pub id: Field,
    pub text: Field,
    pub created_at: Field,
    pub lang: Field,
    pub tags: Field,
    pub sentiment: Field,
    /// Facets `/LABEL/name` (e.g. `/ORG/google`); a facet term also matches its ancestors (`/ORG`).
    pub entity: Field,
}

pub(crate) fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        source: builder.add_text_field("source", STRING | STORED | FAST),
        id: builder.add_text_field("id", STRING | STORED),
        text: builder.add_text_field("text", TEXT | STORED),
        created_at: builder.add_date_field("created_at", INDEXED | STORED | FAST),
        lang: builder.add_text_field("lang", STRING | STORED),
        tags: builder.add_text_field("tags", STRING | STORED),
        sentiment: builder.add_text_field("sentiment", STRING | STORED | FAST),
        entity: builder.add_facet_field("entity", FacetOptions::default().set_stored()),
    };
    (builder.build(), fields)
}
