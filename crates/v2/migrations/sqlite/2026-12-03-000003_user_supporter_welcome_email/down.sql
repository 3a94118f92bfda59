ALTER TABLE users DROP COLUMN email_verified_at;
ALTER TABLE users DROP COLUMN welcome_dismissed;
ALTER TABLE users DROP COLUMN supporter_type;
