-- Near-duplicates (see `murmur_core::duplicates`): each comment that copies an earlier one names it
-- (`duplicate_of`, as `source/id`, the first copy stored); a cluster's size is counted from it on read.
--
-- Candidates are found by MinHash band keys. `copy_bands` holds the keys of the originals stored in the last
-- days (the window: rows older than it are pruned by the writers), so the state is bounded by time: about 8
-- rows per original comment of the window, whatever the history. A copy of a comment older than the window is
-- an original again. Two writers storing the first copies of one new text in the same instant can each take
-- theirs for an original (the window's index is read, not locked): a cluster then counts twice.
ALTER TABLE comments ADD COLUMN duplicate_of text;
CREATE INDEX comments_duplicate_of_idx ON comments (duplicate_of) WHERE duplicate_of IS NOT NULL;

CREATE TABLE copy_bands (
    band    bigint      NOT NULL,
    source  text        NOT NULL,
    id      text        NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX copy_bands_band_idx ON copy_bands (band);
CREATE INDEX copy_bands_seen_idx ON copy_bands (seen_at);
