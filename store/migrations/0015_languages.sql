-- Languages (issue 22): the language murmur detected in each comment's text, beside the producer's `lang` (kept
-- as sent), with the detector's confidence; and why the heads did not read a comment, when they did not
-- ('language': confidently in a language they never learned, so sentiment, emotion, entities and aspects are
-- NULL by design, not missing). NULL everywhere for comments enriched before detection existed.
ALTER TABLE comments
    ADD COLUMN lang_detected text,
    ADD COLUMN lang_confidence real CHECK (lang_confidence > 0 AND lang_confidence <= 1),
    ADD COLUMN skipped text CHECK (skipped IN ('language'));
