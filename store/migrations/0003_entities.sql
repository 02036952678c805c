-- Named entities from the NER head on the shared encoder, one row per mention, in text order.
-- enrichments.entity_count is NULL where no NER head was loaded, so "none found" (0) and "not looked
-- for" (NULL) stay apart.
ALTER TABLE enrichments ADD COLUMN entity_count integer CHECK (entity_count >= 0);

CREATE TABLE entities (
    source     text    NOT NULL,
    id         text    NOT NULL,
    ordinal    integer NOT NULL CHECK (ordinal >= 0),
    label      text    NOT NULL CHECK (label IN ('PER', 'ORG', 'LOC', 'MISC')),
    -- As written in the comment; `name` is its lowercase, whitespace-collapsed form for counting.
    text       text    NOT NULL,
    name       text    NOT NULL,
    -- Character offsets into comments.text, end exclusive.
    start_char integer NOT NULL CHECK (start_char >= 0),
    end_char   integer NOT NULL CHECK (end_char > start_char),
    score      real    NOT NULL,
    PRIMARY KEY (source, id, ordinal),
    FOREIGN KEY (source, id) REFERENCES comments (source, id) ON DELETE CASCADE
);
CREATE INDEX entities_by_name_idx ON entities (label, name);
