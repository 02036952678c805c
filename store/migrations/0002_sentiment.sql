-- Sentiment from the head on the shared encoder; NULL where no sentiment head was loaded.
ALTER TABLE enrichments
    ADD COLUMN sentiment          text CHECK (sentiment IN ('negative', 'neutral', 'positive')),
    ADD COLUMN sentiment_negative real,
    ADD COLUMN sentiment_neutral  real,
    ADD COLUMN sentiment_positive real;
CREATE INDEX enrichments_sentiment_idx ON enrichments (sentiment);
