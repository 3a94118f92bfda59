UPDATE migration_runs SET status = 'succeeded' WHERE status = 'replaced';
ALTER TABLE migration_runs DROP CONSTRAINT migration_runs_status_check;
ALTER TABLE migration_runs ADD CONSTRAINT migration_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'rolled_back'));
