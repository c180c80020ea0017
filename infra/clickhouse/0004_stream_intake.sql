-- The streaming intake: every Kafka record a worker took, kept whole before
-- attribution, so that any number of intake workers can feed one attributor.
-- Keyed by its Kafka position: a record written twice (a redelivery, a rebalance)
-- is one row.
CREATE TABLE IF NOT EXISTS {db}.intake (
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    appended DateTime64(3, 'UTC'),
    raw String,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (topic, partition, offset);

-- How far the attributor has got: the next intake offset of each partition.
-- Written after the batch's facts and event log rows, with the attributor's epoch.
CREATE TABLE IF NOT EXISTS {db}.attribution_offsets (
    topic LowCardinality(String),
    partition UInt32,
    next_offset UInt64,
    epoch UInt64,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (topic, partition);

-- Every attributor that took over, newest epoch first: a write from an older
-- epoch is refused (the fence against a paused former leader).
CREATE TABLE IF NOT EXISTS {db}.attribution_epochs (
    epoch UInt64,
    worker String,
    started DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY epoch;
