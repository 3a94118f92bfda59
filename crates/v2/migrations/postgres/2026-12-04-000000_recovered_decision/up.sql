-- spec/v2.md: a finding's decision may be `recovered` (a record the v1 archive tree holds and the
-- database lost, written to v2 from the archive under `repair`).
ALTER TABLE migration_findings DROP CONSTRAINT migration_findings_decision_check;
ALTER TABLE migration_findings ADD CONSTRAINT migration_findings_decision_check
    CHECK (decision IN ('repaired', 'recovered', 'merged', 'deduplicated', 'quarantined', 'not_carried'));
