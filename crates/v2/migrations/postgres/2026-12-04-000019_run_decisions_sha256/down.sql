ALTER TABLE migration_runs DROP COLUMN decisions_sha256;
