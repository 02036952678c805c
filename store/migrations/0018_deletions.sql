-- Deletion, erasure and retention (issue 23, docs/privacy.md).
--
-- A comment is deleted by a tombstone (key `source/id`, no value) on the comments topic, or by the API, which
-- sends the same tombstone to the enriched topic: the sinks delete it from every store, and the rollups lose
-- its counts through the delete trigger (migration 0011). `deletions` remembers every deleted key, so a
-- replayed or late message cannot bring the comment back: the sink reads it before writing (the
-- `DeletionLedger`). One narrow row per deleted comment, kept for good (far longer than any topic's retention);
-- nothing about the comment but its key.
CREATE TABLE deletions (
    source     text        NOT NULL,
    id         text        NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    -- The erasure that deleted it, if one did (its count is its rows here).
    erasure    bigint,
    PRIMARY KEY (source, id)
);
CREATE INDEX deletions_erasure_idx ON deletions (erasure) WHERE erasure IS NOT NULL;

-- Erasure requests (`POST /v1/erasure`): every comment of one author of one source. The audit trail of the
-- request and its outcome; it holds the author's keyed pseudonym (what the comments hold), never the handle.
CREATE TABLE erasures (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source         text        NOT NULL,
    author         text        NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    -- The author's comments arriving until then are erased on arrival (the sink asks the ledger).
    arrivals_until timestamptz NOT NULL,
    -- 'sweeping': tombstoning the stored comments page by page; 'settling': waiting until `sweep_after` to
    -- sweep once more, for comments whose write was under way when the request came; 'done'.
    status         text        NOT NULL DEFAULT 'sweeping' CHECK (status IN ('sweeping', 'settling', 'done')),
    -- Sweeps finished (two end the erasure).
    sweeps         integer     NOT NULL DEFAULT 0,
    -- The last id tombstoned in this sweep (ids in order): where a restarted eraser resumes.
    cursor_id      text,
    sweep_after    timestamptz,
    -- Comments deleted so far: its rows in `deletions`, each counted once however often it was tombstoned.
    comments       bigint      NOT NULL DEFAULT 0,
    finished_at    timestamptz
);
CREATE INDEX erasures_unfinished_idx ON erasures (id) WHERE status <> 'done';
CREATE INDEX erasures_arrivals_idx ON erasures (source, author, arrivals_until);

-- Which stored comments each stored report and alert quotes (as examples), filled as they are stored, so a
-- deletion finds the quotes to replace ("removed", or "removed at the author's request" for an erasure) in the
-- same transaction, by index, without reading every report.
CREATE TABLE quotes (
    source    text   NOT NULL,
    id        text   NOT NULL,
    report_id bigint REFERENCES reports (id) ON DELETE CASCADE,
    alert_id  bigint REFERENCES alert_firings (id) ON DELETE CASCADE,
    CHECK ((report_id IS NULL) <> (alert_id IS NULL))
);
CREATE INDEX quotes_comment_idx ON quotes (source, id);

-- A quote is any object of the body with a source, an id and a text (a search hit).
CREATE FUNCTION quoted(body jsonb) RETURNS TABLE (source text, id text) LANGUAGE sql IMMUTABLE AS $$
    SELECT DISTINCT q ->> 'source', q ->> 'id'
    FROM jsonb_path_query(body, 'lax $.** ? (@.type() == "object" && exists(@.source) && exists(@.id) && exists(@.text))') AS q
$$;

CREATE FUNCTION report_quotes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quotes (source, id, report_id) SELECT q.source, q.id, NEW.id FROM quoted(NEW.body_json) AS q;
    RETURN NULL;
END $$;
CREATE TRIGGER report_quotes AFTER INSERT ON reports FOR EACH ROW EXECUTE FUNCTION report_quotes();

CREATE FUNCTION alert_quotes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quotes (source, id, alert_id) SELECT q.source, q.id, NEW.id FROM quoted(NEW.body) AS q;
    RETURN NULL;
END $$;
CREATE TRIGGER alert_quotes AFTER INSERT ON alert_firings FOR EACH ROW EXECUTE FUNCTION alert_quotes();

-- Reports and alerts stored before this migration.
INSERT INTO quotes (source, id, report_id) SELECT q.source, q.id, r.id FROM reports r, quoted(r.body_json) AS q;
INSERT INTO quotes (source, id, alert_id) SELECT q.source, q.id, a.id FROM alert_firings a, quoted(a.body) AS q;

-- Retention may keep the rollups of the comments it deletes (aggregates hold no personal data): it sets
-- `murmur.keep_rollups` for its transaction, and the delete trigger of 0011 then logs no deltas.
CREATE OR REPLACE FUNCTION comments_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('murmur.keep_rollups', true), '') <> 'on' THEN
        INSERT INTO rollup_log (delta)
            SELECT ROW(o.source, date_trunc('minute', o.created_at, 'UTC'), o.sentiment, o.dims, -1,
                       k.source IS NOT NULL)::fact_delta
            FROM old_rows o LEFT JOIN copies k USING (source, id) WHERE o.dims IS NOT NULL;
    END IF;
    DELETE FROM copies k USING old_rows o WHERE k.source = o.source AND k.id = o.id;
    RETURN NULL;
END $$;
