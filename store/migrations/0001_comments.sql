-- The system of record. Every row is keyed by the producer's (source, id), so redelivered comments upsert.
CREATE TABLE comments (
    source      text        NOT NULL,
    id          text        NOT NULL,
    author      text,                       -- keyed-hash pseudonym, never the producer's author id
    text        text        NOT NULL,       -- full text, even where the model saw a truncated prefix
    created_at  timestamptz NOT NULL,
    lang        text,
    url         text,
    tags        text[]      NOT NULL DEFAULT '{}',
    metadata    jsonb       NOT NULL DEFAULT '{}',
    ingested_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);
CREATE INDEX comments_created_at_idx ON comments (created_at);

-- What the models said about a comment (sentiment and entities join this table as they arrive).
CREATE TABLE enrichments (
    source      text        NOT NULL,
    id          text        NOT NULL,
    model       text        NOT NULL,
    enriched_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id),
    FOREIGN KEY (source, id) REFERENCES comments (source, id) ON DELETE CASCADE
);

-- Sentence embeddings: the source from which vector indexes are rebuilt.
CREATE TABLE embeddings (
    source      text        NOT NULL,
    id          text        NOT NULL,
    model       text        NOT NULL,
    vector      real[]      NOT NULL,
    PRIMARY KEY (source, id),
    FOREIGN KEY (source, id) REFERENCES comments (source, id) ON DELETE CASCADE
);
