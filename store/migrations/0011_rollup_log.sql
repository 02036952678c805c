-- Rollup maintenance leaves the sink's transaction (docs/benchmarks.md, "Where the write path's time goes"):
-- each rollup row a comment touched cost about 30 us inside the writer's transaction, 7.5x the write without
-- rollups. The triggers now append the comment's deltas to a log, one narrow row each, and `fold_rollups`
-- sums the log into the rollups in large sorted batches, deleting what it folded in the same transaction.
-- Every rollup read folds what is pending first (`murmur_store::Postgres::fold_rollups`), so answers equal
-- the raw rows at every moment; a folder in the serving and sink processes keeps the log short.
CREATE TABLE rollup_log (
    seq   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delta fact_delta NOT NULL
);
-- A queue: rows come and go all the time, so dead ones are vacuumed after every 10,000 whatever the size.
ALTER TABLE rollup_log SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);

-- Folds up to `max_rows` of the oldest pending deltas into the rollups; returns how many it folded. One
-- folder at a time (a transaction-scoped advisory lock): a second waits, then folds what is left. Each
-- statement of a PL/pgSQL function reads a fresh snapshot, so the delete sees what an earlier folder deleted.
CREATE FUNCTION fold_rollups(max_rows integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    taken fact_delta[];
BEGIN
    -- Through the key's index, which skips the dead rows of earlier folds that a scan would walk.
    PERFORM 1 FROM rollup_log ORDER BY seq LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('murmur.fold_rollups'));
    WITH folded AS (
        DELETE FROM rollup_log
        WHERE seq IN (SELECT seq FROM rollup_log ORDER BY seq LIMIT max_rows)
        RETURNING delta
    )
    SELECT array_agg(delta) INTO taken FROM folded;
    IF taken IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM apply_fact_deltas(taken);
    RETURN cardinality(taken);
END $$;

-- The triggers of migration 0010, logging their deltas instead of applying them.
CREATE OR REPLACE FUNCTION comments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_log (delta)
        SELECT ROW(n.source, date_trunc('minute', n.created_at, 'UTC'), n.sentiment, n.dims, 1, false)::fact_delta
        FROM new_rows n WHERE n.dims IS NOT NULL;
    INSERT INTO copy_queue (source, id) SELECT n.source, n.id FROM new_rows n;
    RETURN NULL;
END $$;

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
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION comments_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_log (delta)
        SELECT ROW(o.source, date_trunc('minute', o.created_at, 'UTC'), o.sentiment, o.dims, -1,
                   k.source IS NOT NULL)::fact_delta
        FROM old_rows o LEFT JOIN copies k USING (source, id) WHERE o.dims IS NOT NULL;
    DELETE FROM copies k USING old_rows o WHERE k.source = o.source AND k.id = o.id;
    RETURN NULL;
END $$;
