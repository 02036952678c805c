-- Near-duplicates (`murmur_core::duplicates`, docs/duplicates.md): which comments are copies of an earlier one,
-- and rollups that can count a cluster of copies once.
--
-- The sink's write path only queues what it stores (`copy_queue`, one narrow row a comment); one process at a
-- time (`murmur_store::copies`, under an advisory lock) drains the queue in order, compares each comment with
-- the originals it holds in memory and records the copies. Finding copies in the sink's own transaction, with
-- the originals' band keys in a table, was measured at 6x the write cost and withdrawn.
CREATE TABLE copy_queue (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    id     text NOT NULL
);

-- One row per copy: the comment and the first-seen comment it copies (the cluster's original, which has no row
-- here). A cluster's size is its original's rows here plus one.
CREATE TABLE copies (
    source          text NOT NULL,
    id              text NOT NULL,
    original_source text NOT NULL,
    original_id     text NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX copies_original_idx ON copies (original_source, original_id);

-- What the copies among `comments` contribute to it (so `comments - copies` counts each cluster once); the
-- same for each sentiment class.
ALTER TABLE rollups
    ADD COLUMN copies          integer NOT NULL DEFAULT 0,
    ADD COLUMN copies_negative integer NOT NULL DEFAULT 0,
    ADD COLUMN copies_neutral  integer NOT NULL DEFAULT 0,
    ADD COLUMN copies_positive integer NOT NULL DEFAULT 0;

-- Whether the delta's comment is a copy (counted in the `copies` columns too).
ALTER TYPE fact_delta ADD ATTRIBUTE copy boolean;

CREATE OR REPLACE FUNCTION apply_fact_deltas(deltas fact_delta[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO rollups AS r (kind, key, grain, bucket, source, comments, negative, neutral, positive,
                              copies, copies_negative, copies_neutral, copies_positive)
    SELECT d.kind, d.key, g.grain, date_trunc(g.grain, f.minute, 'UTC'), f.source,
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
        SELECT 'all' AS kind, '' AS key
        UNION ALL
        SELECT split_part(dim, ':', 1), substr(dim, strpos(dim, ':') + 1) FROM unnest(f.dims) AS dim
    ) AS d
    CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS g(grain)
    WHERE g.grain <> 'minute' OR d.kind IN ('all', 'tag', 'emotion', 'brand', 'brand_group')
    GROUP BY 1, 2, 3, 4, 5
    HAVING sum(f.sign) <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'negative') <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'neutral') <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'positive') <> 0
        OR sum(f.sign) FILTER (WHERE f.copy) <> 0
    -- One lock order for every writer: concurrent sinks never deadlock on rollup rows.
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (kind, key, grain, bucket, source) DO UPDATE SET
        comments = r.comments + EXCLUDED.comments,
        negative = r.negative + EXCLUDED.negative,
        neutral  = r.neutral + EXCLUDED.neutral,
        positive = r.positive + EXCLUDED.positive,
        copies          = r.copies + EXCLUDED.copies,
        copies_negative = r.copies_negative + EXCLUDED.copies_negative,
        copies_neutral  = r.copies_neutral + EXCLUDED.copies_neutral,
        copies_positive = r.copies_positive + EXCLUDED.copies_positive
$$;

-- A new comment is no copy until the copy finder says so; it is queued for it.
CREATE OR REPLACE FUNCTION comments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(n.source, date_trunc('minute', n.created_at, 'UTC'), n.sentiment, n.dims, 1, false)::fact_delta
        FROM new_rows n WHERE n.dims IS NOT NULL));
    INSERT INTO copy_queue (source, id) SELECT n.source, n.id FROM new_rows n;
    RETURN NULL;
END $$;

-- A copy stays a copy when its counts move (a re-enrichment, a re-match); a comment whose text changed is no
-- copy any more and is queued again.
CREATE OR REPLACE FUNCTION comments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(n.source, date_trunc('minute', n.created_at, 'UTC'), n.sentiment, n.dims, 1,
                   k.source IS NOT NULL AND n.text = o.text)::fact_delta
        FROM new_rows n JOIN old_rows o USING (source, id) LEFT JOIN copies k USING (source, id)
        WHERE n.dims IS NOT NULL
        UNION ALL
        SELECT ROW(o.source, date_trunc('minute', o.created_at, 'UTC'), o.sentiment, o.dims, -1,
                   k.source IS NOT NULL)::fact_delta
        FROM old_rows o LEFT JOIN copies k USING (source, id) WHERE o.dims IS NOT NULL));
    DELETE FROM copies k USING new_rows n JOIN old_rows o USING (source, id)
        WHERE k.source = n.source AND k.id = n.id AND n.text <> o.text;
    INSERT INTO copy_queue (source, id)
        SELECT n.source, n.id FROM new_rows n JOIN old_rows o USING (source, id) WHERE n.text <> o.text;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION comments_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(o.source, date_trunc('minute', o.created_at, 'UTC'), o.sentiment, o.dims, -1,
                   k.source IS NOT NULL)::fact_delta
        FROM old_rows o LEFT JOIN copies k USING (source, id) WHERE o.dims IS NOT NULL));
    DELETE FROM copies k USING old_rows o WHERE k.source = o.source AND k.id = o.id;
    RETURN NULL;
END $$;

-- Comments stored before this migration are queued in the order they were stored (by time).
INSERT INTO copy_queue (source, id) SELECT source, id FROM comments ORDER BY created_at, source, id;
