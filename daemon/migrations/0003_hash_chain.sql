-- 0003: tamper evidence. Each row carries the hash of its content and of
-- the row before it (`hash`, chained through `prev_hash`), and a `seal` over
-- that hash and the fields filled in later (outcome, latency, approval,
-- who answered). Rows written before this migration have none and are not
-- part of the chain.
ALTER TABLE events ADD COLUMN prev_hash TEXT;
ALTER TABLE events ADD COLUMN hash TEXT;
ALTER TABLE events ADD COLUMN seal TEXT;
