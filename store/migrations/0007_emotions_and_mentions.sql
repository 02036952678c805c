-- Emotions (Ekman's six and neutral, several per comment) are stored with the comment and counted in the
-- rollups under `emotion:<label>` dims, at every grain like tags (seven keys: a minute row per key costs
-- little). Entities now also carry mentions (`handle`, `hashtag`) and names one per entity however written:
-- existing rows are re-derived by `murmur migrate` (Rust applies the name rule, see
-- `Postgres::renormalize_entities`); the rollup triggers move their counts.

ALTER TABLE comments ADD COLUMN emotion jsonb;

ALTER TABLE rollups DROP CONSTRAINT rollups_kind_check;
ALTER TABLE rollups ADD CONSTRAINT rollups_kind_check CHECK (kind IN ('all', 'tag', 'entity', 'name', 'emotion'));

CREATE OR REPLACE FUNCTION apply_fact_deltas(deltas fact_delta[]) RETURNS void LANGUAGE sql AS $$
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
    WHERE g.grain <> 'minute' OR d.kind IN ('all', 'tag', 'emotion')
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

-- Which data migrations written in Rust have run (see `Postgres::migrate`).
CREATE TABLE data_migrations (
    name   text PRIMARY KEY,
    run_at timestamptz NOT NULL DEFAULT now()
);
