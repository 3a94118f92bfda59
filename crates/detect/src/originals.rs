//! The original v1 rows of findings, fetched while a consumer streams the findings (the plan
//! keeps none of them).

use thywill_v1::{V1Database, V1EmailDb, V1Error};

use crate::model::Finding;

/// Fetches the whole original v1 row of each finding (`V1Database::row_json`: every column,
/// bytes that are not UTF-8 as hex) as a consumer walks [`crate::Plan::findings`]. The findings
/// of one row are adjacent in that order, so they share one fetch: only the last row is kept.
///
/// ```no_run
/// # let db = thywill_v1::V1Database::open("thywill.db")?;
/// # let plan = thywill_detect::detect(&db, &thywill_detect::DetectOptions::new(
/// #     thywill_detect::Policy::Repair, chrono::Utc::now().naive_utc()))?;
/// let mut originals = thywill_detect::OriginalRows::new(&db);
/// for f in plan.findings() {
///     let f = f?;
///     println!("{} {}: {}", f.rule, f.v1_key, originals.of(&f)?);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OriginalRows<'e, D> {
    db: D,
    email: Option<&'e V1EmailDb>,
    last: Option<(String, i64, serde_json::Value)>,
}

/// Where [`OriginalRows`] reads a row: the snapshot itself (`&V1Database`), or a handle that
/// reaches it (a report keeps the snapshot behind a lock to fetch rows as it is written).
pub trait RowSource {
    /// The whole row `rowid` of `table` as JSON, as [`V1Database::row_json`] gives it.
    fn row_json(&self, table: &str, rowid: i64) -> Result<Option<serde_json::Value>, V1Error>;
}

impl RowSource for V1Database {
    fn row_json(&self, table: &str, rowid: i64) -> Result<Option<serde_json::Value>, V1Error> {
        V1Database::row_json(self, table, rowid)
    }
}

impl<T: RowSource + ?Sized> RowSource for &T {
    fn row_json(&self, table: &str, rowid: i64) -> Result<Option<serde_json::Value>, V1Error> {
        (**self).row_json(table, rowid)
    }
}

impl<'e, D: RowSource> OriginalRows<'e, D> {
    /// A fetcher over the snapshot the plan was made from.
    pub fn new(db: D) -> Self {
        OriginalRows {
            db,
            email: None,
            last: None,
        }
    }

    /// The same, also fetching the `user_email` rows of `R-EMAIL` from v1's e-mail database
    /// (the address as v1 stored it: its ciphertext). Without it such rows are `Null`.
    pub fn with_email(mut self, email: Option<&'e V1EmailDb>) -> Self {
        self.email = email;
        self
    }

    /// The original row of `finding` (`Null` when the snapshot has no such row).
    pub fn of(&mut self, finding: &Finding) -> Result<&serde_json::Value, V1Error> {
        let same =
            matches!(&self.last, Some((t, r, _)) if *r == finding.rowid && *t == finding.v1_table);
        if !same {
            let row = match (
                self.email,
                finding.v1_table == thywill_v1::email::EMAIL_TABLE,
            ) {
                (Some(e), true) => e.row_json(finding.rowid)?,
                (None, true) => None,
                (_, false) => self.db.row_json(&finding.v1_table, finding.rowid)?,
            }
            .unwrap_or_default();
            self.last = Some((finding.v1_table.clone(), finding.rowid, row));
        }
        Ok(self
            .last
            .as_ref()
            .map_or(&serde_json::Value::Null, |l| &l.2))
    }
}
