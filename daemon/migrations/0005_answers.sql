-- 0005: every asked call ends somewhere. `answer` is a person's answer to
-- the call's approval (allow | deny) and `answered_ms` when it came; the
-- row's `seal` covers both once they are set. The index finds the calls
-- of an approval when it is answered.
ALTER TABLE events ADD COLUMN answer TEXT;
ALTER TABLE events ADD COLUMN answered_ms INTEGER;
CREATE INDEX events_approval ON events(approval_id) WHERE approval_id IS NOT NULL;
