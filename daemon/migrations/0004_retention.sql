-- 0004: retention. Rows of kind 'retention' are checkpoints that record
-- where the chain starts after old rows were removed; verify and the
-- pruner look them up without scanning the log.
CREATE INDEX events_retention ON events(id) WHERE kind = 'retention';
