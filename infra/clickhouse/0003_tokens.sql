-- API tokens (reelroi token create|list|revoke). Only a SHA-256 of the secret is stored.

CREATE TABLE IF NOT EXISTS {db}.tokens (
    token_id String,
    name String,
    role LowCardinality(String),
    subject String,
    secret_sha256 String,
    created_at DateTime64(3, 'UTC'),
    revoked UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY token_id;
