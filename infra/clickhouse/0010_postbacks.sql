-- Postbacks to ad platforms (SPEC 7). 0009 is taken by another change.
-- postback_decisions: what the postback stage decided per idempotency key (send,
-- held_*, superseded); a stage fact like the others, so a later version of a key
-- replaces the earlier one (a decision superseded when its user moved away).
CREATE TABLE IF NOT EXISTS {db}.postback_decisions (
    key String,
    platform LowCardinality(String),
    campaign_id String,
    click_event_id String,
    callback String,
    user_id String,
    order_id String,
    kind LowCardinality(String),
    amount Decimal(76, 30),
    conversion_ts DateTime64(6, 'UTC'),
    decided_ts DateTime64(6, 'UTC'),
    decision LowCardinality(String),
    detail String,
    version UInt64,
    is_deleted UInt8
) ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY key;

-- postback_deliveries: the sender's ledger of what it really sent to a platform,
-- by the same key. Not derived from the events: a replay or reattribute keeps it,
-- so a conversion already sent is never sent twice (sinks/writer.py DERIVED_TABLES).
CREATE TABLE IF NOT EXISTS {db}.postback_deliveries (
    key String,
    status LowCardinality(String),
    attempts UInt32,
    last_answer String,
    last_attempt DateTime64(6, 'UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY key;
