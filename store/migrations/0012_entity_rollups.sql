-- Entity rollups without a second copy for names (issue 20, item 5; docs/benchmarks.md, "Fewer rollup rows").
--
-- Until now every name written in a comment was counted twice: under its type ('entity:ORG:google') and under
-- its name alone ('name:google', for rankings by name whatever the type), by hour and by day. Those were most
-- rollup rows (about one per mention per grain per kind in the long tail), and the rollups outgrew the comments
-- they count. Now an entity row carries its type in a column of its own, `label`, after the name in `key`, so
-- one row serves both: by type (`label = 'ORG'`) and by name (every row of the name but mentions, which have
-- the labels 'handle' and 'hashtag'). For that sum to count a comment once, a comment gives each name one type,
-- that of its first mention (`murmur_store::Dim::of_parts`), and stored comments no longer hold 'name:' dims.
--
-- Stored comments are brought to that rule by the re-derivation that follows the migrations at start-up
-- (`Postgres::rederive_entities` under a new rules name, cli/src/database.rs): it rewrites each stored
-- comment's dims, and the triggers move its counts. Until it ends, a stored comment that gave one name two
-- types counts twice by name, and the 'name:' dims it still holds count nowhere.
CREATE TABLE rollups_by_label (
    -- Fixed-width columns first: no alignment padding between them.
    bucket          timestamptz NOT NULL,
    comments        integer     NOT NULL,
    negative        integer     NOT NULL,
    neutral         integer     NOT NULL,
    positive        integer     NOT NULL,
    copies          integer     NOT NULL DEFAULT 0,
    copies_negative integer     NOT NULL DEFAULT 0,
    copies_neutral  integer     NOT NULL DEFAULT 0,
    copies_positive integer     NOT NULL DEFAULT 0,
    kind            text        NOT NULL CHECK (kind IN ('all', 'tag', 'entity', 'emotion', 'brand', 'brand_group')),
    key             text        NOT NULL,
    grain           text        NOT NULL CHECK (grain IN ('minute', 'hour', 'day')),
    source          text        NOT NULL,
    -- The entity type for kind 'entity' ('ORG', 'handle', ...), '' for the other kinds.
    label           text        NOT NULL DEFAULT '',
    -- The name's types are last: reading a name by its key, grain and buckets reads all of them at once.
    PRIMARY KEY (kind, key, grain, bucket, source, label)
);

INSERT INTO rollups_by_label (bucket, comments, negative, neutral, positive,
                              copies, copies_negative, copies_neutral, copies_positive, kind, key, grain, source, label)
SELECT bucket, comments, negative, neutral, positive, copies, copies_negative, copies_neutral, copies_positive,
       kind,
       CASE WHEN kind = 'entity' THEN substr(key, strpos(key, ':') + 1) ELSE key END,
       grain, source,
       CASE WHEN kind = 'entity' THEN split_part(key, ':', 1) ELSE '' END
FROM rollups WHERE kind <> 'name'
ORDER BY kind, 3, grain, bucket, source;

DROP TABLE rollups;
ALTER TABLE rollups_by_label RENAME TO rollups;
ALTER INDEX rollups_by_label_pkey RENAME TO rollups_pkey;
-- Window scans over every key of a kind (top and trending entities).
CREATE INDEX rollups_window_idx ON rollups (grain, kind, bucket);

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
        -- 'entity:ORG:google' is kind 'entity', label 'ORG', key 'google'; 'tag:pixel' kind 'tag', key 'pixel'.
        -- 'name:' dims of comments stored before this migration count nowhere.
        SELECT k.kind,
               CASE WHEN k.kind = 'entity' THEN substr(k.rest, strpos(k.rest, ':') + 1) ELSE k.rest END,
               CASE WHEN k.kind = 'entity' THEN split_part(k.rest, ':', 1) ELSE '' END
        FROM unnest(f.dims) AS dim
        CROSS JOIN LATERAL (SELECT split_part(dim, ':', 1) AS kind, substr(dim, strpos(dim, ':') + 1) AS rest) AS k
        WHERE k.kind <> 'name'
    ) AS d
    CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS g(grain)
    WHERE g.grain <> 'minute' OR d.kind <> 'entity'
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(f.sign) <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'negative') <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'neutral') <> 0
        OR sum(f.sign) FILTER (WHERE f.sentiment = 'positive') <> 0
        OR sum(f.sign) FILTER (WHERE f.copy) <> 0
    -- One lock order for every writer: concurrent folders never deadlock on rollup rows.
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
