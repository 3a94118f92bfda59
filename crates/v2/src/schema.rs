//! Diesel `table!` definitions of the v2 schema, shared by both backends.
//!
//! Timestamps are `Timestamp` (PostgreSQL `TIMESTAMP`, SQLite `TEXT`). `sessions.ip_address` is
//! declared `Text` although PostgreSQL stores `INET`: the writer sends it as COPY text and reads it
//! back through a cast (see [`crate::V2Db::read_table`]), so no diesel inet feature is needed.
//! `tests/schema.rs` checks that these definitions list exactly the columns of the migrations.

diesel::table! {
    /// Members of the community.
    users (id) {
        id -> Varchar,
        display_name -> Varchar,
        email -> Nullable<Varchar>,
        religious_preference -> Varchar,
        prayer_style -> Nullable<Varchar>,
        invited_by_user_id -> Nullable<Varchar>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        is_active -> Bool,
        is_supporter -> Bool,
        supporter_since -> Nullable<Timestamp>,
        text_archive_path -> Nullable<Varchar>,
        supporter_type -> Nullable<Varchar>,
        welcome_dismissed -> Bool,
        email_verified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Prayer requests.
    prayers (id) {
        id -> Varchar,
        author_id -> Varchar,
        text -> Text,
        generated_prayer -> Nullable<Text>,
        project_tag -> Nullable<Varchar>,
        target_audience -> Varchar,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        is_archived -> Bool,
        is_answered -> Bool,
        answered_at -> Nullable<Timestamp>,
        testimony -> Nullable<Text>,
        text_archive_path -> Nullable<Varchar>,
    }
}

diesel::table! {
    /// One row per act of prayer.
    prayer_marks (id) {
        id -> Varchar,
        prayer_id -> Varchar,
        user_id -> Varchar,
        marked_at -> Timestamp,
    }
}

diesel::table! {
    /// Admin and moderator grants.
    user_roles (user_id, role) {
        user_id -> Varchar,
        role -> Varchar,
        granted_at -> Timestamp,
        granted_by_user_id -> Nullable<Varchar>,
    }
}

diesel::table! {
    /// Invitation tokens.
    invites (id) {
        id -> Varchar,
        token -> Varchar,
        created_by_user_id -> Nullable<Varchar>,
        invited_display_name -> Nullable<Varchar>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        max_uses -> Nullable<Integer>,
        use_count -> Integer,
        used_at -> Nullable<Timestamp>,
        used_by_user_id -> Nullable<Varchar>,
        is_admin_token -> Bool,
    }
}

diesel::table! {
    /// Live login sessions.
    sessions (id) {
        id -> Varchar,
        user_id -> Varchar,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_seen_at -> Timestamp,
        user_agent -> Nullable<Text>,
        ip_address -> Nullable<Text>,
    }
}

diesel::table! {
    /// Moderation flags on prayers.
    content_flags (id) {
        id -> Varchar,
        prayer_id -> Varchar,
        flagged_by_user_id -> Nullable<Varchar>,
        reason -> Nullable<Varchar>,
        flagged_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by_user_id -> Nullable<Varchar>,
        resolution_action -> Nullable<Varchar>,
    }
}

diesel::table! {
    /// One row per migration run.
    migration_runs (run_id) {
        run_id -> Varchar,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        status -> Varchar,
        tool_version -> Varchar,
        source_path -> Text,
        source_sha256 -> Varchar,
        source_generation -> Varchar,
        dry_run -> Bool,
        counts_json -> Text,
        decisions_sha256 -> Nullable<Varchar>,
    }
}

diesel::table! {
    /// How each v1 key became a v2 id.
    migration_id_map (entity, v1_key) {
        run_id -> Varchar,
        entity -> Varchar,
        v1_key -> Text,
        v2_id -> Varchar,
    }
}

diesel::table! {
    /// Every v1 row that was not plainly written, with its rule and decision.
    migration_findings (id) {
        id -> BigInt,
        run_id -> Varchar,
        v1_table -> Varchar,
        v1_key -> Text,
        rule -> Varchar,
        decision -> Varchar,
        reason -> Text,
        original_json -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Which application rows a run wrote (for rollback).
    migration_run_rows (run_id, table_name, row_key) {
        run_id -> Varchar,
        table_name -> Varchar,
        row_key -> Varchar,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    users,
    prayers,
    prayer_marks,
    user_roles,
    invites,
    sessions,
    content_flags,
    migration_runs,
    migration_id_map,
    migration_findings,
    migration_run_rows,
);
