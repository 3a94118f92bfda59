DELETE FROM migration_findings WHERE decision = 'recovered';
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (decision IN (''repaired'', ''recovered'', ''merged''',
                     'CHECK (decision IN (''repaired'', ''merged''')
 WHERE type = 'table' AND name = 'migration_findings';
PRAGMA writable_schema = RESET;
CREATE TABLE migration_schema_bump (x INTEGER);
DROP TABLE migration_schema_bump;
