-- Aspects (issue 21): the terms a comment judges and the sentiment toward each, as the aspect head found
-- them: a JSON array of {text, start, end, name, sentiment: {label, negative, neutral, positive}, score}, in
-- text order; NULL when the comment was enriched without an aspect head. `GET /v1/aspects` counts them by
-- `name` within a slice (the comments under one rollup dim), so no rollup holds them.
ALTER TABLE comments ADD COLUMN aspects jsonb CHECK (jsonb_typeof(aspects) = 'array');
