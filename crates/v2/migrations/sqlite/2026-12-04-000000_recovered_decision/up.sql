-- spec/v2.md: a finding's decision may be `recovered` (a record the v1 archive tree holds and the
-- database lost, written to v2 from the archive under `repair`). The CHECK is widened in place,
-- as in 2026-12-03-000001 (no stored byte changes; a rebuild would cascade).
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (decision IN (''repaired'', ''merged''',
                     'CHECK (decision IN (''repaired'', ''recovered'', ''merged''')
 WHERE type = 'table' AND name = 'migration_findings';
PRAGMA writable_schema = RESET;
CREATE TABLE migration_schema_bump (x INTEGER);
DROP TABLE migration_schema_bump;
