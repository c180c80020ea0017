-- reelroi schema, version 1. Applied by reelroi (sinks/schema.py), idempotently,
-- and recorded in {db}.schema_migrations. {db} is the database name.
-- Facts are keyed upserts: ReplacingMergeTree(version, is_deleted), read with FINAL,
-- so re-sending a batch or replaying twice never double-counts.

CREATE TABLE IF NOT EXISTS {db}.events (
    event_id String,
    type LowCardinality(String),
    ts DateTime64(6, 'UTC'),
    origin String,
    raw String,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY event_id;

CREATE TABLE IF NOT EXISTS {db}.rejections (
    key String,
    reason LowCardinality(String),
    detail String,
    event_id String,
    type LowCardinality(String),
    origin String,
    raw String,
    version UInt64,
    is_deleted UInt8
) ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY key;

CREATE TABLE IF NOT EXISTS {db}.duplicates (
    key String,
    kind LowCardinality(String),
    event_id String,
    origin String,
    version UInt64,
    is_deleted UInt8
) ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY key;

CREATE TABLE IF NOT EXISTS {db}.users (
    user_id String,
    source_kind LowCardinality(String),
    source_id String,
    touch LowCardinality(String),
    cohort_date Date32,
    acquired DateTime64(6, 'UTC'),
    version UInt64,
    is_deleted UInt8
) ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY user_id;

CREATE TABLE IF NOT EXISTS {db}.money (
    event_id String,
    kind LowCardinality(String),
    user_id String,
    order_id String,
    ts DateTime64(6, 'UTC'),
    date Date32,
    source_kind LowCardinality(String),
    source_id String,
    cohort_date Date32,
    currency LowCardinality(String),
    amount Decimal(38, 4),
    rate Decimal(76, 30),
    value Decimal(76, 30),
    creator_id String,
    commission Decimal(76, 30),
    version UInt64,
    is_deleted UInt8
) ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY event_id;

CREATE TABLE IF NOT EXISTS {db}.spend (
    campaign_id String,
    period_start DateTime64(6, 'UTC'),
    date Date32,
    event_id String,
    currency LowCardinality(String),
    amount Decimal(38, 4),
    rate Decimal(76, 30),
    value Decimal(76, 30),
    version UInt64,
    is_deleted UInt8
) ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY (campaign_id, period_start);

CREATE TABLE IF NOT EXISTS {db}.campaigns (
    campaign_id String,
    platform LowCardinality(String),
    drama_id String,
    buyer_id String,
    name String,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY campaign_id;

CREATE TABLE IF NOT EXISTS {db}.plans (
    plan_id String,
    creator_id String,
    drama_id String,
    commission_rate Decimal(76, 30),
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY plan_id;

CREATE TABLE IF NOT EXISTS {db}.fx_rates (
    currency LowCardinality(String),
    effective_date Date32,
    rate Decimal(76, 30),
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (currency, effective_date);

CREATE TABLE IF NOT EXISTS {db}.settings (
    name String,
    value String,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY name;
