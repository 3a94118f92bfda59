-- docs/decisions.md §48: the operator's decisions file is part of a run's identity: the same
-- source with the same file is already migrated; with another (or none) it is a new run.
ALTER TABLE migration_runs ADD COLUMN decisions_sha256 VARCHAR(64);
