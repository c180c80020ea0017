-- The journal of table rebuilds (sinks/builds.py): replay and reattribute
-- build new tables beside the live ones and switch only once a build is
-- complete. The latest row of a build says where it got to:
-- building (with a heartbeat), ready (fully written: switch it), done or aborted.
-- A store that finds a ready build not done finishes its switch when opened.
CREATE TABLE IF NOT EXISTS {db}.builds (
    build_id String,
    command LowCardinality(String),
    state LowCardinality(String),
    tables Array(String),
    at DateTime64(3, 'UTC') DEFAULT now64(3),
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY build_id;
