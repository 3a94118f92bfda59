DELETE FROM migration_findings WHERE decision = 'recovered';
ALTER TABLE migration_findings DROP CONSTRAINT migration_findings_decision_check;
ALTER TABLE migration_findings ADD CONSTRAINT migration_findings_decision_check
    CHECK (decision IN ('repaired', 'merged', 'deduplicated', 'quarantined', 'not_carried'));
