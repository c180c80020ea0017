-- The streaming intake, the attributor's cursor and its epoch fence (0004, 0007)
-- belonged to the faust leader that the keyed stages replaced
-- (docs/design/streaming.md): facts now wait in Kafka, stage state in
-- checkpoints, and nothing reads or writes these tables. Safe to run again.
DROP TABLE IF EXISTS {db}.intake SYNC;

DROP TABLE IF EXISTS {db}.attribution_offsets SYNC;

DROP TABLE IF EXISTS {db}.attribution_epochs SYNC;
