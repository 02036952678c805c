-- Brands users track (see `murmur_core::brands`): the catalogue, and two rollup dimensions, `brand:<key>` and
-- `brand_group:<key>`, which a comment's `dims` hold for the brands it mentions (that is where a comment's
-- brands are stored), kept at every grain like tags (a catalogue has tens to hundreds of brands, not one key
-- per mention).
--
-- The catalogue has one version and one lock (an advisory lock). A writer of comments takes the lock shared
-- in the transaction that stores its batch, then reads the version and matches with it; a change of the
-- catalogue takes it exclusively, so it waits for batches in flight and batches after it wait for it. Every stored comment was therefore matched with the catalogue of
-- its commit or an older one, and one re-matching pass after a change (`rematched_version` records the last
-- finished) brings every older one up to date while ingest goes on.
CREATE TABLE brands (
    key        text        PRIMARY KEY,
    -- The brand as the API took it (name, aliases, handles, hashtags, exclusions, group).
    definition jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE brand_catalogue (
    id                integer PRIMARY KEY CHECK (id = 1),
    version           bigint  NOT NULL,
    rematched_version bigint  NOT NULL
);
INSERT INTO brand_catalogue VALUES (1, 0, 0);

ALTER TABLE rollups DROP CONSTRAINT rollups_kind_check;
ALTER TABLE rollups ADD CONSTRAINT rollups_kind_check
    CHECK (kind IN ('all', 'tag', 'entity', 'name', 'emotion', 'brand', 'brand_group'));

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
    WHERE g.grain <> 'minute' OR d.kind IN ('all', 'tag', 'emotion', 'brand', 'brand_group')
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
