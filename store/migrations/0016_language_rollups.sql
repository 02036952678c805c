-- Languages in the trends (issue 22): every comment counts under one 'lang:<code>' dimension, its language as
-- `murmur_core::language_key` decides it (the detected language when detected with a confidence of 0.5 or
-- more, else the primary subtag of the producer's `lang`, else 'und'), kept by the minute like tags (a handful of keys per bucket). `lang=` slices of the
-- trends and the dashboard's language mix read these rows.
ALTER TABLE rollups DROP CONSTRAINT rollups_kind_check;
ALTER TABLE rollups ADD CONSTRAINT rollups_kind_check
    CHECK (kind IN ('all', 'tag', 'entity', 'emotion', 'brand', 'brand_group', 'theme', 'lang'));

-- Comments stored before this migration get their language dimension (the rule above, as SQL once); the
-- update's rollup deltas count them under it. Byte order, as the sink sorts dims.
UPDATE comments c
SET dims = ARRAY(
    SELECT x.d FROM (
        SELECT DISTINCT d FROM unnest(c.dims || ARRAY['lang:' || coalesce(
            CASE WHEN c.lang_confidence >= 0.5 THEN c.lang_detected END,
            CASE WHEN lower(split_part(replace(c.lang, '_', '-'), '-', 1)) ~ '^[a-z]{2,3}$'
                      AND lower(split_part(replace(c.lang, '_', '-'), '-', 1)) <> 'und'
                 THEN lower(split_part(replace(c.lang, '_', '-'), '-', 1)) END,
            'und')]) AS d
    ) AS x
    ORDER BY x.d COLLATE "C")
WHERE c.dims IS NOT NULL AND NOT EXISTS (SELECT 1 FROM unnest(c.dims) AS d WHERE starts_with(d, 'lang:'));
