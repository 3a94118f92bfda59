-- spec/v2.md: the member columns real v1 has and v2 must not drop: the supporter badges
-- (v1's comma-separated badge keys), whether the welcome message was dismissed, and when the
-- member's e-mail address was verified (from v1's separate e-mail database).
ALTER TABLE users ADD COLUMN supporter_type VARCHAR(255);
ALTER TABLE users ADD COLUMN welcome_dismissed BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMP;
