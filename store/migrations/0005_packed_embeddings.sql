-- Embeddings as packed float32 in network byte order (4 bytes a dimension, `float4send` of each) instead of
-- real[]: written and read without per-element work (real[] took 24% of the sink's Postgres time; see
-- `murmur bench plumbing`), and no smaller: a 384-wide vector is 1,536 bytes either way, stored inline.
ALTER TABLE embeddings ADD COLUMN packed bytea;
UPDATE embeddings SET packed = coalesce(
    (SELECT string_agg(float4send(x), ''::bytea ORDER BY o) FROM unnest(vector) WITH ORDINALITY AS u(x, o)),
    ''::bytea);
ALTER TABLE embeddings DROP COLUMN vector;
ALTER TABLE embeddings RENAME COLUMN packed TO vector;
ALTER TABLE embeddings ALTER COLUMN vector SET NOT NULL;
