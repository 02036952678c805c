-- One row per comment: what the models said, the embedding and what the comment counts under in the rollups
-- move into `comments`, and `enrichments`, `embeddings`, `entities` and `comment_facts` go. Every write was
-- already one comment with all of these in one transaction and nothing reads them apart, so five heaps, five
-- primary keys and four foreign-key checks per comment became one of each: the sink's time in Postgres halved
-- (see "Throughput" in the README). Rollups are unchanged: the same deltas now come from statement triggers on
-- `comments`.
ALTER TABLE comments
    -- NULL only for a comment stored before it was enriched (none is, since the sink writes both at once).
    ADD COLUMN model              text,
    ADD COLUMN enriched_at        timestamptz,
    -- NULL where no sentiment head was loaded.
    ADD COLUMN sentiment          text CHECK (sentiment IN ('negative', 'neutral', 'positive')),
    ADD COLUMN sentiment_negative real,
    ADD COLUMN sentiment_neutral  real,
    ADD COLUMN sentiment_positive real,
    -- The NER head's mentions in text order, each {label, text, name, start, end, score} with character
    -- offsets into `text` (end exclusive) and `name` its lowercase, whitespace-collapsed form; NULL where no
    -- NER head was loaded, so "none found" ([]) and "not looked for" stay apart.
    ADD COLUMN entities           jsonb CHECK (jsonb_typeof(entities) = 'array'),
    -- Packed float32s in network byte order, 4 bytes a dimension (see 0005).
    ADD COLUMN embedding          bytea,
    -- What the comment counts under in the rollups besides 'all' ('tag:pixel', 'entity:ORG:google',
    -- 'name:google'), distinct and sorted; NULL for a comment that counts nowhere (not enriched).
    ADD COLUMN dims               text[];

-- A comment with its embedding is ~2 kB: keep it in the row, uncompressed (float32s do not compress), instead
-- of moving it to TOAST at the default 2 kB threshold.
ALTER TABLE comments SET (toast_tuple_target = 8160);
ALTER TABLE comments ALTER COLUMN embedding SET STORAGE EXTERNAL;

UPDATE comments c SET
    model = e.model, enriched_at = e.enriched_at, sentiment = e.sentiment,
    sentiment_negative = e.sentiment_negative, sentiment_neutral = e.sentiment_neutral,
    sentiment_positive = e.sentiment_positive,
    entities = CASE WHEN e.entity_count IS NOT NULL THEN (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'label', m.label, 'text', m.text, 'name', m.name, 'start', m.start_char, 'end', m.end_char,
            'score', m.score) ORDER BY m.ordinal), '[]'::jsonb)
        FROM entities m WHERE m.source = c.source AND m.id = c.id) END,
    embedding = v.vector,
    dims = f.dims
FROM enrichments e
LEFT JOIN embeddings v USING (source, id)
LEFT JOIN comment_facts f USING (source, id)
WHERE e.source = c.source AND e.id = c.id;

-- Dropping the tables fires no delete trigger, so the rollups stay as they are: they already count exactly
-- the comments that now carry dims.
DROP TABLE comment_facts, entities, embeddings, enrichments;
DROP FUNCTION comment_facts_inserted(), comment_facts_updated(), comment_facts_deleted();

CREATE FUNCTION comments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(n.source, date_trunc('minute', n.created_at, 'UTC'), n.sentiment, n.dims, 1)::fact_delta
        FROM new_rows n WHERE n.dims IS NOT NULL));
    RETURN NULL;
END $$;

CREATE FUNCTION comments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(n.source, date_trunc('minute', n.created_at, 'UTC'), n.sentiment, n.dims, 1)::fact_delta
        FROM new_rows n WHERE n.dims IS NOT NULL
        UNION ALL
        SELECT ROW(o.source, date_trunc('minute', o.created_at, 'UTC'), o.sentiment, o.dims, -1)::fact_delta
        FROM old_rows o WHERE o.dims IS NOT NULL));
    RETURN NULL;
END $$;

CREATE FUNCTION comments_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(o.source, date_trunc('minute', o.created_at, 'UTC'), o.sentiment, o.dims, -1)::fact_delta
        FROM old_rows o WHERE o.dims IS NOT NULL));
    RETURN NULL;
END $$;

CREATE TRIGGER comments_inserted AFTER INSERT ON comments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION comments_inserted();
CREATE TRIGGER comments_updated AFTER UPDATE ON comments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION comments_updated();
CREATE TRIGGER comments_deleted AFTER DELETE ON comments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION comments_deleted();
