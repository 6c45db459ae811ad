-- The spawner contract: where a server runs is the spawner's business. A local
-- process's pid lives in spawner_state (with its start time), like a batch job's
-- id would; the hub itself no longer has a column for it.
ALTER TABLE servers DROP COLUMN pid;

ALTER TABLE servers
    ADD CONSTRAINT servers_state_known CHECK (state IN ('starting', 'running', 'stopping'));
