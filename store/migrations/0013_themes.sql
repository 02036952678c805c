-- Themes (issue 21, docs/themes.md): what comments talk about, found from their embeddings off the write path.
--
-- The sink only queues what it stores (`theme_queue`, as `copy_queue`); one process at a time (the themer,
-- `murmur_store::themes`, under an advisory lock) gives each queued comment the nearest theme, re-clusters its
-- window of recent comments every so often and records what changed: the themes (`themes`), their history
-- (`theme_events`) and each comment's theme, as a 'theme:ID' entry of its dims, so the rollups count themes
-- like any other dimension (by the hour and day, not the minute) and every trend query takes them as slices.
-- A comment's theme outlives a rewrite of its dims (a re-enrichment, a brand re-match, a re-derivation) as
-- long as its text is unchanged (`with_theme`); a new text drops it and queues the comment again.
CREATE TABLE themes (
    id                    bigint      PRIMARY KEY,
    status                text        NOT NULL CHECK (status IN ('active', 'merged', 'faded')),
    merged_into           bigint      REFERENCES themes (id),
    -- Its first three keywords.
    label                 text        NOT NULL,
    -- Its most distinctive words (c-TF-IDF), best first.
    keywords              text[]      NOT NULL,
    -- Comments of the themer's window in it at the last clustering.
    size                  integer     NOT NULL,
    -- Unit mean of its comments' embeddings, packed as `comments.embedding`.
    centroid              bytea       NOT NULL,
    -- The comment nearest the centroid (it may since have been deleted).
    representative_source text,
    representative_id     text,
    born_at               timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE theme_events (
    seq   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at    timestamptz NOT NULL DEFAULT now(),
    kind  text        NOT NULL CHECK (kind IN ('born', 'split', 'merged', 'faded', 'revived')),
    theme bigint      NOT NULL REFERENCES themes (id),
    -- The theme split from ('split') or merged into ('merged').
    other bigint      REFERENCES themes (id)
);
CREATE INDEX theme_events_theme_idx ON theme_events (theme, seq);
CREATE INDEX theme_events_other_idx ON theme_events (other, seq) WHERE other IS NOT NULL;

CREATE TABLE theme_queue (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    id     text NOT NULL
);

-- `dims` (a comment's new dims) with the theme entries of `previous` (its stored dims); NULL stays NULL (a
-- comment that counts nowhere). 'theme:' sorts after every other kind, so the result stays sorted.
CREATE FUNCTION with_theme(dims text[], previous text[]) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN dims IS NULL THEN NULL
                ELSE dims || ARRAY(SELECT d FROM unnest(previous) AS d WHERE starts_with(d, 'theme:')) END
$$;

-- `dims` with its theme entry replaced by `theme` (none when NULL), in the same order.
CREATE FUNCTION set_theme(dims text[], theme bigint) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY(SELECT d FROM unnest(dims) WITH ORDINALITY AS x(d, n) WHERE NOT starts_with(d, 'theme:') ORDER BY n)
           || CASE WHEN theme IS NULL THEN '{}'::text[] ELSE ARRAY['theme:' || theme] END
$$;

ALTER TABLE rollups DROP CONSTRAINT rollups_by_label_kind_check;
ALTER TABLE rollups ADD CONSTRAINT rollups_kind_check
    CHECK (kind IN ('all', 'tag', 'entity', 'emotion', 'brand', 'brand_group', 'theme'));

-- As in 0012, but themes too are kept by the hour and day only.
CREATE OR REPLACE FUNCTION apply_fact_deltas(deltas fact_delta[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO rollups AS r (kind, key, label, grain, bucket, source, comments, negative, neutral, positive,
                              copies, copies_negative, copies_neutral, copies_positive)
    SELECT d.kind, d.key, d.label, g.grain, date_trunc(g.grain, f.minute, 'UTC'), f.source,
           sum(f.sign),
           coalesce(sum(f.sign) FILTER (WHERE f.sentiment = 'negative'), 0),
           coalesce(sum(f.sign) FILTER (WHERE f.sentiment = 'neutral'), 0),
           coalesce(sum(f.sign) FILTER (WHERE f.sentiment = 'positive'), 0),
           coalesce(sum(f.sign) FILTER (WHERE f.copy), 0),
           coalesce(sum(f.sign) FILTER (WHERE f.copy AND f.sentiment = 'negative'), 0),
           coalesce(sum(f.sign) FILTER (WHERE f.copy AND f.sentiment = 'neutral'), 0),
           coalesce(sum(f.sign) FILTER (WHERE f.copy AND f.sentiment = 'positive'), 0)
    FROM unnest(deltas) AS f
    CROSS JOIN LATERAL (
        SELECT 'all' AS kind, '' AS key, '' AS label
        UNION ALL
        SELECT k.kind,
               CASE WHEN k.kind = 'entity' THEN substr(k.rest, strpos(k.rest, ':') + 1) ELSE k.rest END,
               CASE WHEN k.kind = 'entity' THEN split_part(k.rest, ':', 1) ELSE '' END
        FROM unnest(f.dims) AS dim
        CROSS JOIN LATERAL (SELECT split_part(dim, ':', 1) AS kind, substr(dim, strpos(dim, ':') + 1) AS rest) AS k
        WHERE k.kind <> 'name'
    ) AS d
    CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS g(grain)
    WHERE g.grain <> 'minute' OR d.kind NOT IN ('entity', 'theme')
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(f.sign) <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'negative') <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'neutral') <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'positive') <> 0
        OR sum(f.sign) FILTER (WHERE f.copy) <> 0
    ORDER BY 1, 2, 4, 5, 6, 3
    ON CONFLICT (kind, key, grain, bucket, source, label) DO UPDATE SET
        comments = r.comments + EXCLUDED.comments,
        negative = r.negative + EXCLUDED.negative,
        neutral  = r.neutral + EXCLUDED.neutral,
        positive = r.positive + EXCLUDED.positive,
        copies          = r.copies + EXCLUDED.copies,
        copies_negative = r.copies_negative + EXCLUDED.copies_negative,
        copies_neutral  = r.copies_neutral + EXCLUDED.copies_neutral,
        copies_positive = r.copies_positive + EXCLUDED.copies_positive
$$;

-- As in 0011, and every new comment with an embedding is queued for the themer.
CREATE OR REPLACE FUNCTION comments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_log (delta)
        SELECT ROW(n.source, date_trunc('minute', n.created_at, 'UTC'), n.sentiment, n.dims, 1, false)::fact_delta
        FROM new_rows n WHERE n.dims IS NOT NULL;
    INSERT INTO copy_queue (source, id) SELECT n.source, n.id FROM new_rows n;
    INSERT INTO theme_queue (source, id) SELECT n.source, n.id FROM new_rows n WHERE n.embedding IS NOT NULL;
    RETURN NULL;
END $$;

-- As in 0011, and a comment whose text changed is queued for the themer again (its theme went with the text).
CREATE OR REPLACE FUNCTION comments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_log (delta)
        SELECT ROW(n.source, date_trunc('minute', n.created_at, 'UTC'), n.sentiment, n.dims, 1,
                   k.source IS NOT NULL AND n.text = o.text)::fact_delta
        FROM new_rows n JOIN old_rows o USING (source, id) LEFT JOIN copies k USING (source, id)
        WHERE n.dims IS NOT NULL
        UNION ALL
        SELECT ROW(o.source, date_trunc('minute', o.created_at, 'UTC'), o.sentiment, o.dims, -1,
                   k.source IS NOT NULL)::fact_delta
        FROM old_rows o LEFT JOIN copies k USING (source, id) WHERE o.dims IS NOT NULL;
    DELETE FROM copies k USING new_rows n JOIN old_rows o USING (source, id)
        WHERE k.source = n.source AND k.id = n.id AND n.text <> o.text;
    INSERT INTO copy_queue (source, id)
        SELECT n.source, n.id FROM new_rows n JOIN old_rows o USING (source, id) WHERE n.text <> o.text;
    INSERT INTO theme_queue (source, id)
        SELECT n.source, n.id FROM new_rows n JOIN old_rows o USING (source, id)
        WHERE n.text <> o.text AND n.embedding IS NOT NULL;
    RETURN NULL;
END $$;

-- Comments stored before this migration are queued in the order they were written.
INSERT INTO theme_queue (source, id)
    SELECT source, id FROM comments WHERE embedding IS NOT NULL ORDER BY created_at, source, id;
