-- The v2 schema (PostgreSQL). Keep in step with ../../sqlite/ (same tables, columns, nullability,
-- constraint names); `tests/schema.rs` compares the two. Id columns use the "C" collation: hex ids
-- sort the same as under any locale, and keys and indexes on them build several times faster. Constraint and index names are explicit so
-- that the writer can drop and rebuild them around a bulk load and the comparison can match them.

CREATE TABLE users (
    id                   VARCHAR(32) COLLATE "C"  NOT NULL,
    display_name         VARCHAR(100) NOT NULL,
    email                VARCHAR(255),
    religious_preference VARCHAR(50)  NOT NULL DEFAULT 'unspecified',
    prayer_style         VARCHAR(100),
    invited_by_user_id   VARCHAR(32) COLLATE "C",
    created_at           TIMESTAMP    NOT NULL,
    updated_at           TIMESTAMP    NOT NULL,
    is_active            BOOLEAN      NOT NULL DEFAULT TRUE,
    is_supporter         BOOLEAN      NOT NULL DEFAULT FALSE,
    supporter_since      TIMESTAMP,
    text_archive_path    VARCHAR(500),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_display_name_key UNIQUE (display_name),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_display_name_check CHECK (length(trim(display_name)) >= 1),
    CONSTRAINT users_religious_preference_check
        CHECK (religious_preference IN ('christian', 'unspecified', 'other')),
    CONSTRAINT users_invited_by_user_id_fkey FOREIGN KEY (invited_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL
);
-- users.display_name is indexed by its unique constraint.
CREATE INDEX idx_users_created_at ON users (created_at);
CREATE INDEX idx_users_active ON users (display_name) WHERE is_active;

CREATE TABLE prayers (
    id                VARCHAR(32) COLLATE "C"  NOT NULL,
    author_id         VARCHAR(32) COLLATE "C"  NOT NULL,
    text              TEXT         NOT NULL,
    generated_prayer  TEXT,
    project_tag       VARCHAR(100),
    target_audience   VARCHAR(50)  NOT NULL DEFAULT 'all',
    created_at        TIMESTAMP    NOT NULL,
    updated_at        TIMESTAMP    NOT NULL,
    is_archived       BOOLEAN      NOT NULL DEFAULT FALSE,
    is_answered       BOOLEAN      NOT NULL DEFAULT FALSE,
    answered_at       TIMESTAMP,
    testimony         TEXT,
    text_archive_path VARCHAR(500),
    CONSTRAINT prayers_pkey PRIMARY KEY (id),
    CONSTRAINT prayers_text_check CHECK (length(text) BETWEEN 10 AND 5000),
    CONSTRAINT prayers_target_audience_check CHECK (target_audience IN ('all', 'christians_only')),
    CONSTRAINT prayers_answered_check CHECK (
        (NOT is_answered AND answered_at IS NULL AND testimony IS NULL)
        OR (is_answered AND answered_at IS NOT NULL)),
    CONSTRAINT prayers_author_id_fkey FOREIGN KEY (author_id)
        REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX idx_prayers_author_id ON prayers (author_id);
CREATE INDEX idx_prayers_created_at ON prayers (created_at DESC);
CREATE INDEX idx_prayers_active ON prayers (created_at DESC) WHERE NOT is_archived;
CREATE INDEX idx_prayers_answered ON prayers (answered_at DESC) WHERE is_answered;

CREATE TABLE prayer_marks (
    id        VARCHAR(32) COLLATE "C" NOT NULL,
    prayer_id VARCHAR(32) COLLATE "C" NOT NULL,
    user_id   VARCHAR(32) COLLATE "C" NOT NULL,
    marked_at TIMESTAMP   NOT NULL,
    CONSTRAINT prayer_marks_pkey PRIMARY KEY (id),
    CONSTRAINT prayer_marks_prayer_id_user_id_marked_at_key UNIQUE (prayer_id, user_id, marked_at),
    CONSTRAINT prayer_marks_prayer_id_fkey FOREIGN KEY (prayer_id)
        REFERENCES prayers (id) ON DELETE CASCADE,
    CONSTRAINT prayer_marks_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX idx_prayer_marks_prayer_id ON prayer_marks (prayer_id);
CREATE INDEX idx_prayer_marks_user_marked_at ON prayer_marks (user_id, marked_at DESC);
CREATE INDEX idx_prayer_marks_marked_at ON prayer_marks (marked_at DESC);

CREATE TABLE user_roles (
    user_id            VARCHAR(32) COLLATE "C" NOT NULL,
    role               VARCHAR(50) NOT NULL,
    granted_at         TIMESTAMP   NOT NULL,
    granted_by_user_id VARCHAR(32) COLLATE "C",
    CONSTRAINT user_roles_pkey PRIMARY KEY (user_id, role),
    CONSTRAINT user_roles_role_check CHECK (role IN ('admin', 'moderator')),
    CONSTRAINT user_roles_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT user_roles_granted_by_user_id_fkey FOREIGN KEY (granted_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE invites (
    id                   VARCHAR(32) COLLATE "C"  NOT NULL,
    token                VARCHAR(64)  NOT NULL,
    created_by_user_id   VARCHAR(32) COLLATE "C",
    invited_display_name VARCHAR(100),
    created_at           TIMESTAMP    NOT NULL,
    expires_at           TIMESTAMP    NOT NULL,
    max_uses             INTEGER,
    use_count            INTEGER      NOT NULL DEFAULT 0,
    used_at              TIMESTAMP,
    used_by_user_id      VARCHAR(32) COLLATE "C",
    is_admin_token       BOOLEAN      NOT NULL DEFAULT FALSE,
    CONSTRAINT invites_pkey PRIMARY KEY (id),
    CONSTRAINT invites_token_key UNIQUE (token),
    CONSTRAINT invites_expires_check CHECK (expires_at > created_at),
    CONSTRAINT invites_created_by_user_id_fkey FOREIGN KEY (created_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT invites_used_by_user_id_fkey FOREIGN KEY (used_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE sessions (
    id           VARCHAR(64) COLLATE "C" NOT NULL,
    user_id      VARCHAR(32) COLLATE "C" NOT NULL,
    created_at   TIMESTAMP   NOT NULL,
    expires_at   TIMESTAMP   NOT NULL,
    last_seen_at TIMESTAMP   NOT NULL,
    user_agent   TEXT,
    ip_address   INET,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_expires_check CHECK (expires_at > created_at),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

-- Resolution is all-or-nothing for `resolved_at` and `resolution_action`; `resolved_by_user_id` is
-- set only on a resolved flag and becomes NULL if the resolver's account is deleted (ON DELETE SET
-- NULL). The writer enforces the strict three-way rule on the rows it writes.
CREATE TABLE content_flags (
    id                  VARCHAR(32) COLLATE "C"  NOT NULL,
    prayer_id           VARCHAR(32) COLLATE "C"  NOT NULL,
    flagged_by_user_id  VARCHAR(32) COLLATE "C",
    reason              VARCHAR(255),
    flagged_at          TIMESTAMP    NOT NULL,
    resolved_at         TIMESTAMP,
    resolved_by_user_id VARCHAR(32) COLLATE "C",
    resolution_action   VARCHAR(50),
    CONSTRAINT content_flags_pkey PRIMARY KEY (id),
    CONSTRAINT content_flags_prayer_id_flagged_by_user_id_key UNIQUE (prayer_id, flagged_by_user_id),
    CONSTRAINT content_flags_resolution_check CHECK (
        (resolved_at IS NULL AND resolved_by_user_id IS NULL AND resolution_action IS NULL)
        OR (resolved_at IS NOT NULL AND resolution_action IS NOT NULL)),
    CONSTRAINT content_flags_prayer_id_fkey FOREIGN KEY (prayer_id)
        REFERENCES prayers (id) ON DELETE CASCADE,
    CONSTRAINT content_flags_flagged_by_user_id_fkey FOREIGN KEY (flagged_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT content_flags_resolved_by_user_id_fkey FOREIGN KEY (resolved_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL
);

-- The migration's own bookkeeping (prefix migration_). The v2 application ignores these tables.

CREATE TABLE migration_runs (
    run_id            VARCHAR(32) COLLATE "C"  NOT NULL,
    started_at        TIMESTAMP    NOT NULL,
    finished_at       TIMESTAMP,
    status            VARCHAR(16)  NOT NULL,
    tool_version      VARCHAR(50)  NOT NULL,
    source_path       TEXT         NOT NULL,
    source_sha256     VARCHAR(64)  NOT NULL,
    source_generation VARCHAR(8)   NOT NULL,
    dry_run           BOOLEAN      NOT NULL DEFAULT FALSE,
    counts_json       TEXT         NOT NULL DEFAULT '{}',
    CONSTRAINT migration_runs_pkey PRIMARY KEY (run_id),
    CONSTRAINT migration_runs_status_check
        CHECK (status IN ('running', 'succeeded', 'failed', 'rolled_back'))
);

-- How each v1 key became a v2 id. It describes the data currently in the application tables (at
-- most one run's data is there at a time), hence the key (entity, v1_key).
CREATE TABLE migration_id_map (
    run_id VARCHAR(32) COLLATE "C"  NOT NULL,
    entity VARCHAR(32)  NOT NULL,
    v1_key TEXT         NOT NULL,
    v2_id  VARCHAR(32) COLLATE "C"  NOT NULL,
    CONSTRAINT migration_id_map_pkey PRIMARY KEY (entity, v1_key),
    CONSTRAINT migration_id_map_run_id_fkey FOREIGN KEY (run_id)
        REFERENCES migration_runs (run_id) ON DELETE CASCADE
);

CREATE TABLE migration_findings (
    id            BIGSERIAL    NOT NULL,
    run_id        VARCHAR(32) COLLATE "C"  NOT NULL,
    v1_table      VARCHAR(64)  NOT NULL,
    v1_key        TEXT         NOT NULL,
    rule          VARCHAR(64)  NOT NULL,
    decision      VARCHAR(16)  NOT NULL,
    reason        TEXT         NOT NULL,
    original_json TEXT         NOT NULL,
    created_at    TIMESTAMP    NOT NULL,
    CONSTRAINT migration_findings_pkey PRIMARY KEY (id),
    CONSTRAINT migration_findings_decision_check
        CHECK (decision IN ('repaired', 'merged', 'deduplicated', 'quarantined', 'not_carried')),
    CONSTRAINT migration_findings_run_id_fkey FOREIGN KEY (run_id)
        REFERENCES migration_runs (run_id) ON DELETE CASCADE
);
CREATE INDEX idx_migration_findings_run_id ON migration_findings (run_id);

-- Which application rows a run wrote, so that a rollback removes exactly them. Filled by the writer
-- inside the run's transaction from the tables themselves (they were empty when the load began), for
-- every application table but prayer_marks: a run's marks all hang on the run's prayers and go with
-- them (ON DELETE CASCADE). `row_key` is the primary key (`user_id/role` for user_roles).
CREATE TABLE migration_run_rows (
    run_id     VARCHAR(32) COLLATE "C"  NOT NULL,
    table_name VARCHAR(32)  NOT NULL,
    row_key    VARCHAR(100) COLLATE "C" NOT NULL,
    CONSTRAINT migration_run_rows_pkey PRIMARY KEY (run_id, table_name, row_key),
    CONSTRAINT migration_run_rows_run_id_fkey FOREIGN KEY (run_id)
        REFERENCES migration_runs (run_id) ON DELETE CASCADE
);
