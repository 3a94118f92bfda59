UPDATE migration_runs SET status = 'succeeded' WHERE status = 'replaced';
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, '''failed'', ''rolled_back'', ''replaced'')', '''failed'', ''rolled_back'')')
 WHERE type = 'table' AND name = 'migration_runs';
PRAGMA writable_schema = RESET;
CREATE TABLE migration_schema_bump (x INTEGER);
DROP TABLE migration_schema_bump;
