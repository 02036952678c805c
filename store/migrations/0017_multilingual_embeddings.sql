-- Multilingual embeddings (issue 22): where the worker runs the multilingual encoder (multilingual-e5-small),
-- each comment's vector from it, beside the English encoder's `embedding` (which themes and the heads read).
-- Semantic search reads it, so `murmur reindex` rebuilds a multilingual index from here. JSON
-- {"model": "...", "vector": "<base64 of little-endian float32s>"}, the wire form; NULL where the worker ran
-- no multilingual encoder.
ALTER TABLE comments ADD COLUMN multilingual jsonb;
