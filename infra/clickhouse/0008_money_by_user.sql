-- money is keyed by (user_id, event_id), not event_id: an order's counted payment
-- (and its refunds) can move between users whose facts come from different stage
-- partitions (docs/design/streaming.md section 2), and versions from different
-- partitions are not comparable, so each (user, event) row must have one producer.
-- A moved payment is one retracted row under the old user and one row under the new.
-- The sort key of a MergeTree cannot be changed in place: copy every row (every
-- version, as stored) into a table with the new key, then swap the two by name
-- (views read money by name). Safe to run again after a crash at any point: the
-- copy is dropped first, and a swap already made is simply made again.
DROP TABLE IF EXISTS {db}.money__v8 SYNC;

CREATE TABLE {db}.money__v8 AS {db}.money
ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY (user_id, event_id);

INSERT INTO {db}.money__v8 SELECT * FROM {db}.money;

EXCHANGE TABLES {db}.money AND {db}.money__v8;

DROP TABLE {db}.money__v8 SYNC;
