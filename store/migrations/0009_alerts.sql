-- Push alerts (see `murmur_trends::alerts`): the rules users define, and what fired.
--
-- Every `serve` process evaluates every rule; a firing is claimed in one statement that moves the rule's
-- `last_fired_at` and `last_bucket` and inserts the firing, under the rule's row lock: a second process
-- evaluating the same bucket finds the claim made (the bucket is no longer after `last_bucket`, or the
-- cooldown has not passed) and inserts nothing. So a rule fires at most once per bucket and per cooldown,
-- whatever the number of servers.
CREATE TABLE alert_rules (
    id               bigserial   PRIMARY KEY,
    name             text        NOT NULL,
    -- The rule as the API took it (slice, kind, bucket, threshold, cooldown, webhook, ...).
    definition       jsonb       NOT NULL,
    cooldown_seconds integer     NOT NULL CHECK (cooldown_seconds > 0),
    last_fired_at    timestamptz,
    -- The bucket the last firing was about.
    last_bucket      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_firings (
    id               bigserial   PRIMARY KEY,
    rule_id          bigint      REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name        text        NOT NULL,
    bucket_start     timestamptz NOT NULL,
    bucket_end       timestamptz NOT NULL,
    fired_at         timestamptz NOT NULL DEFAULT now(),
    -- What was found: kind, value, expectation, counts, entity, example comments.
    body             jsonb       NOT NULL,
    -- One line for chat (Slack's `text`).
    text             text        NOT NULL,
    -- Webhook delivery, as for reports: NULL without a webhook.
    webhook_status   text CHECK (webhook_status IN ('pending', 'delivered', 'failed')),
    webhook_attempts integer     NOT NULL DEFAULT 0,
    webhook_error    text,
    UNIQUE (rule_id, bucket_start)
);
CREATE INDEX alert_firings_fired_idx ON alert_firings (fired_at DESC);
