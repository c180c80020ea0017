-- A Kafka record batch that no codec could decode reaches intake as one stand-in
-- record holding the whole batch (streams/codecs.py). Its reason travels here, so
-- the attributor rejects it whole instead of reading its bytes as JSON lines.
ALTER TABLE {db}.intake ADD COLUMN IF NOT EXISTS undecodable String DEFAULT '';
