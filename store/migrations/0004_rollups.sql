-- Trend rollups, maintained on write.
--
-- `comment_facts` holds what each comment contributes to the rollups: its minute, source, sentiment and the
-- dimensions it counts under ('tag:pixel', 'entity:ORG:google', 'name:google'; every comment also counts under
-- 'all'). The sink upserts it in the same transaction as the comment, rewriting a row only when it changed.
-- Statement triggers turn the rows that changed into rollup deltas (+1 for the new version, -1 for the old),
-- so a redelivered comment adds nothing, an edited one moves its counts, and a deleted one takes them away.
CREATE TABLE comment_facts (
    source    text        NOT NULL,
    id        text        NOT NULL,
    minute    timestamptz NOT NULL,
    sentiment text        CHECK (sentiment IN ('negative', 'neutral', 'positive')),
    -- Distinct and sorted, so an unchanged comment compares equal.
    dims      text[]      NOT NULL,
    PRIMARY KEY (source, id),
    FOREIGN KEY (source, id) REFERENCES comments (source, id) ON DELETE CASCADE
);

-- Comments per (dimension, grain, bucket, source), by sentiment. `comments` counts every comment, the three
-- classes only those with a sentiment. Grains: 'minute', 'hour', 'day' (UTC buckets); queries read the
-- coarsest grain that tiles their window. Entities and names are kept by hour and day only: a minute row per
-- (entity, minute) would be about one row per mention, as large as the raw rows it summarises.
CREATE TABLE rollups (
    kind     text        NOT NULL CHECK (kind IN ('all', 'tag', 'entity', 'name')),
    key      text        NOT NULL,
    grain    text        NOT NULL CHECK (grain IN ('minute', 'hour', 'day')),
    bucket   timestamptz NOT NULL,
    source   text        NOT NULL,
    -- integer, not bigint: a bucket never holds 2^31 comments, and sums of integers aggregate in 64-bit
    -- integers where sums of bigints go through numeric (1.6x slower on a ranking over 77k rows).
    comments integer     NOT NULL,
    negative integer     NOT NULL,
    neutral  integer     NOT NULL,
    positive integer     NOT NULL,
    PRIMARY KEY (kind, key, grain, bucket, source)
);
-- Window scans over every key of a kind (top and trending entities).
CREATE INDEX rollups_window_idx ON rollups (grain, kind, bucket);

CREATE TYPE fact_delta AS (source text, minute timestamptz, sentiment text, dims text[], sign integer);

CREATE FUNCTION apply_fact_deltas(deltas fact_delta[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO rollups AS r (kind, key, grain, bucket, source, comments, negative, neutral, positive)
    SELECT d.kind, d.key, g.grain, date_trunc(g.grain, f.minute, 'UTC'), f.source,
           sum(f.sign),
           coalesce(sum(f.sign) FILTER (WHERE f.sentiment = 'negative'), 0),
           coalesce(sum(f.sign) FILTER (WHERE f.sentiment = 'neutral'), 0),
           coalesce(sum(f.sign) FILTER (WHERE f.sentiment = 'positive'), 0)
    FROM unnest(deltas) AS f
    CROSS JOIN LATERAL (
        SELECT 'all' AS kind, '' AS key
        UNION ALL
        SELECT split_part(dim, ':', 1), substr(dim, strpos(dim, ':') + 1) FROM unnest(f.dims) AS dim
    ) AS d
    CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS g(grain)
    WHERE g.grain <> 'minute' OR d.kind IN ('all', 'tag')
    GROUP BY 1, 2, 3, 4, 5
    HAVING sum(f.sign) <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'negative') <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'neutral') <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'positive') <> 0
    -- One lock order for every writer: concurrent sinks never deadlock on rollup rows.
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (kind, key, grain, bucket, source) DO UPDATE SET
        comments = r.comments + EXCLUDED.comments,
        negative = r.negative + EXCLUDED.negative,
        neutral  = r.neutral + EXCLUDED.neutral,
        positive = r.positive + EXCLUDED.positive
$$;

CREATE FUNCTION comment_facts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(n.source, n.minute, n.sentiment, n.dims, 1)::fact_delta FROM new_facts n));
    RETURN NULL;
END $$;

CREATE FUNCTION comment_facts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(n.source, n.minute, n.sentiment, n.dims, 1)::fact_delta FROM new_facts n
        UNION ALL
        SELECT ROW(o.source, o.minute, o.sentiment, o.dims, -1)::fact_delta FROM old_facts o));
    RETURN NULL;
END $$;

CREATE FUNCTION comment_facts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_fact_deltas(ARRAY(
        SELECT ROW(o.source, o.minute, o.sentiment, o.dims, -1)::fact_delta FROM old_facts o));
    RETURN NULL;
END $$;

CREATE TRIGGER comment_facts_inserted AFTER INSERT ON comment_facts
    REFERENCING NEW TABLE AS new_facts FOR EACH STATEMENT EXECUTE FUNCTION comment_facts_inserted();
CREATE TRIGGER comment_facts_updated AFTER UPDATE ON comment_facts
    REFERENCING OLD TABLE AS old_facts NEW TABLE AS new_facts FOR EACH STATEMENT EXECUTE FUNCTION comment_facts_updated();
CREATE TRIGGER comment_facts_deleted AFTER DELETE ON comment_facts
    REFERENCING OLD TABLE AS old_facts FOR EACH STATEMENT EXECUTE FUNCTION comment_facts_deleted();

-- Comments stored before this migration count too.
INSERT INTO comment_facts (source, id, minute, sentiment, dims)
SELECT c.source, c.id, date_trunc('minute', c.created_at, 'UTC'), e.sentiment,
       ARRAY(SELECT DISTINCT d FROM (
           SELECT 'tag:' || t FROM unnest(c.tags) AS t
           UNION ALL SELECT 'entity:' || m.label || ':' || m.name FROM entities m WHERE m.source = c.source AND m.id = c.id
           UNION ALL SELECT 'name:' || m.name FROM entities m WHERE m.source = c.source AND m.id = c.id
       ) AS x(d) ORDER BY d)
FROM comments c JOIN enrichments e USING (source, id);

-- Report schedules and the reports they rendered.
CREATE TABLE report_schedules (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL,
    cron        text        NOT NULL,
    time_zone   text        NOT NULL,
    -- The report's definition (slices, window, formats, webhook) as the API accepted it.
    spec        jsonb       NOT NULL,
    next_run_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX report_schedules_due_idx ON report_schedules (next_run_at);

CREATE TABLE reports (
    id           bigserial   PRIMARY KEY,
    schedule_id  bigint      REFERENCES report_schedules (id) ON DELETE SET NULL,
    name         text        NOT NULL,
    window_from  timestamptz NOT NULL,
    window_to    timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    body_json    jsonb       NOT NULL,
    body_html    text,
    body_csv     text,
    -- Webhook delivery: NULL without a webhook; 'pending', 'delivered' or 'failed' after the last attempt.
    webhook_status   text CHECK (webhook_status IN ('pending', 'delivered', 'failed')),
    webhook_attempts integer NOT NULL DEFAULT 0,
    webhook_error    text
);
CREATE INDEX reports_created_idx ON reports (created_at DESC);
