//! The seed's post-migration smoke checks, on the data, inside a transaction that is always
//! rolled back: members can be found by id and by name (what logging in needs), a prayer can be
//! created and marked, an admin exists and admin queries work, carried sessions are live.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use thywill_v2::rows::{Prayer, PrayerMark};
use thywill_v2::schema::*;

use crate::v2db::{on_conn, V2Conn};

/// The outcome of the smoke checks (problems are failures).
#[derive(Debug, Default)]
pub struct Smoke {
    /// What was exercised.
    pub done: Vec<String>,
    /// What failed.
    pub problems: Vec<String>,
}

/// Why the transaction ends: always rolled back, carrying the results.
#[derive(Debug)]
enum End {
    Rollback(Smoke),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for End {
    fn from(e: diesel::result::Error) -> Self {
        End::Db(e)
    }
}

const CHUNK: usize = 500;

/// Runs the smoke checks. `members` are the (id, display name) pairs the validator expects from
/// v1; `expect_admin` whether v1 holds a carried admin grant; `now` is the clock sessions must
/// outlive.
pub fn run(
    conn: &mut V2Conn,
    members: &[(String, String)],
    expect_admin: bool,
    now: NaiveDateTime,
) -> Result<Smoke, diesel::result::Error> {
    let r: Result<(), End> = on_conn!(conn, |c| c.transaction::<(), End, _>(|c| {
        let mut sm = Smoke::default();
        // Login lookups: every expected member by id and by display name (bound, chunked).
        let (mut by_id, mut by_name) = (0i64, 0i64);
        for chunk in members.chunks(CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|m| m.0.as_str()).collect();
            let names: Vec<&str> = chunk.iter().map(|m| m.1.as_str()).collect();
            by_id += users::table
                .filter(users::id.eq_any(&ids))
                .count()
                .get_result::<i64>(c)?;
            by_name += users::table
                .filter(users::display_name.eq_any(&names))
                .filter(users::id.eq_any(&ids))
                .count()
                .get_result::<i64>(c)?;
        }
        sm.done.push(format!(
            "{by_id}/{} members found by id, {by_name} by display name",
            members.len()
        ));
        if by_id as usize != members.len() || by_name as usize != members.len() {
            sm.problems.push(format!(
                "login lookups: {} of {} members not found by id, {} not by display name",
                members.len() as i64 - by_id,
                members.len(),
                members.len() as i64 - by_name
            ));
        }
        // An admin exists, and the admin queries answer.
        let admins: Vec<String> = user_roles::table
            .inner_join(users::table.on(users::id.eq(user_roles::user_id)))
            .filter(user_roles::role.eq("admin"))
            .filter(users::is_active.eq(true))
            .select(users::id)
            .order(users::id)
            .load(c)?;
        if admins.is_empty() && expect_admin {
            sm.problems
                .push("no active admin, though v1 had one: nobody can administer v2".into());
        } else if admins.is_empty() {
            sm.done
                .push("v1 had no admin grant: admin existence not required".into());
        }
        let flagged: i64 = content_flags::table
            .inner_join(prayers::table.on(prayers::id.eq(content_flags::prayer_id)))
            .filter(content_flags::resolved_at.is_null())
            .count()
            .get_result(c)?;
        let roles: i64 = user_roles::table
            .inner_join(users::table.on(users::id.eq(user_roles::user_id)))
            .count()
            .get_result(c)?;
        sm.done.push(format!(
            "{} admin(s); admin queries: {flagged} open flag(s), {roles} grant(s)",
            admins.len()
        ));
        // A prayer can be created and marked (by an admin, or by any member).
        let author = match admins.first() {
            Some(a) => Some(a.clone()),
            None => users::table
                .select(users::id)
                .order(users::id)
                .first::<String>(c)
                .optional()?,
        };
        match author {
            // Every v1 member kept out (quarantined, merged away): an empty v2 is the right
            // result, and the law and fidelity checks judge whether it is.
            None => sm
                .done
                .push("v2 holds no member: the prayer round trip has nobody to run as".into()),
            Some(author) => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let p = Prayer {
                    id: id.clone(),
                    author_id: author.clone(),
                    text: "Smoke test prayer: please pray for the migration.".into(),
                    generated_prayer: None,
                    project_tag: None,
                    target_audience: "all".into(),
                    created_at: now,
                    updated_at: now,
                    is_archived: false,
                    is_answered: false,
                    answered_at: None,
                    testimony: None,
                    text_archive_path: None,
                };
                diesel::insert_into(prayers::table).values(&p).execute(c)?;
                let m = PrayerMark {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    prayer_id: id.clone(),
                    user_id: author,
                    marked_at: now,
                };
                diesel::insert_into(prayer_marks::table)
                    .values(&m)
                    .execute(c)?;
                let n: i64 = prayer_marks::table
                    .filter(prayer_marks::prayer_id.eq(&id))
                    .count()
                    .get_result(c)?;
                if n == 1 {
                    sm.done
                        .push("a prayer was created and marked (rolled back)".into());
                } else {
                    sm.problems
                        .push(format!("created prayer {id} shows {n} marks after one"));
                }
            }
        }
        // Carried sessions are live.
        let expired: i64 = sessions::table
            .filter(sessions::expires_at.le(now))
            .count()
            .get_result(c)?;
        let total: i64 = sessions::table.count().get_result(c)?;
        if expired > 0 {
            sm.problems.push(format!(
                "{expired} of {total} carried session(s) already expired at {now}"
            ));
        } else {
            sm.done.push(format!("{total} carried session(s) live"));
        }
        Err(End::Rollback(sm))
    }));
    match r {
        Err(End::Rollback(sm)) => Ok(sm),
        Err(End::Db(e)) => Err(e),
        Ok(()) => Ok(Smoke::default()),
    }
}
