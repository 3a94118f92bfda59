-- A run whose data a later `--replace` run emptied is `replaced`, not left `succeeded`: the runs
-- table then says which run's data the application tables hold.
ALTER TABLE migration_runs DROP CONSTRAINT migration_runs_status_check;
ALTER TABLE migration_runs ADD CONSTRAINT migration_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'rolled_back', 'replaced'));
