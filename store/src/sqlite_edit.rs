//! The SQLite tree-edit writer: one rusqlite connection on a thread of its
//! own that applies single-tree edits (the API's `PATCH`, a re-survey's
//! update), committing the edits waiting together as one transaction.
//!
//! # Why
//! Through sqlx every statement is a hand-off to the connection's worker
//! thread and back to the async task, which on a busy server waits in the
//! runtime's queue behind the reads each time; an edit is half a dozen
//! statements. Writers also met inside SQLite, whose busy handler polls with
//! sleeps. Under 32 connections of mixed load the edits took 20 ms at the
//! median, almost all of it waiting. Here an edit is one hand-off each way,
//! and the edits that arrive while a transaction runs share the next commit
//! (group commit).
//!
//! # Atomicity
//! Each edit runs inside its own `SAVEPOINT` within the batch's `BEGIN
//! IMMEDIATE` transaction: an edit that fails (stale version, unknown
//! orchard, taken code) is rolled back alone and answered with its error;
//! the others commit. No edit is answered before its `COMMIT` returned; if
//! the commit fails, every edit of the batch gets the error and none is
//! stored. Edits are applied in arrival order, so two edits of one tree in
//! one batch behave exactly as two transactions would (the second one sees
//! the first one's version).

use std::path::Path;
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use geo_core::{Actor, SurveyId, Tree};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use tokio::sync::oneshot;

use crate::common::{code_serial, now, tree_columns};
use crate::sqlite::{HISTORY_CHANGE_SQL, WRITE_WAIT, driver_error, parse_time, time_text, tree_from_rusqlite};
use crate::{Error, Result};

/// Most edits committed together.
const MAX_BATCH: usize = 256;

/// One edit and where its outcome goes.
struct Job {
    tree: Tree,
    actor: Option<Actor>,
    reply: oneshot::Sender<Result<Tree>>,
}

/// Handle on the writer thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct EditWriter {
    jobs: mpsc::Sender<Job>,
}

impl EditWriter {
    /// Opens a connection to the database at `path` and starts the thread.
    pub(crate) fn start(path: &Path) -> Result<Self> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(driver_error)?;
        conn.busy_timeout(WRITE_WAIT).map_err(driver_error)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")
            .map_err(driver_error)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-edits".into())
            .spawn(move || run(conn, queue))
            .map_err(|e| Error::Open { location: path.display().to_string(), reason: format!("edit writer: {e}") })?;
        Ok(Self { jobs })
    }

    /// Stores `tree` as the next version of the stored tree with its id and
    /// version, `actor` recorded as the author (see [`crate::Storage::edit_tree`]).
    pub(crate) async fn write(&self, tree: Tree, actor: Option<Actor>) -> Result<Tree> {
        let (reply, answer) = oneshot::channel();
        let gone = || Error::Aborted("the database's edit writer has stopped".into());
        self.jobs.send(Job { tree, actor, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn run(mut conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit_batch(&mut conn, &batch);
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            // The caller may have gone (request cancelled): its edit stands.
            let _ = job.reply.send(outcome);
        }
    }
}

/// Runs every job in one transaction; one outcome per job, in order.
fn commit_batch(conn: &mut Connection, jobs: &[Job]) -> Vec<Result<Tree>> {
    let all_fail = |what: &str, e: rusqlite::Error| -> Vec<Result<Tree>> {
        let reason = format!("{what}: {e}");
        jobs.iter().map(|_| Err(driver_error(std::io::Error::other(reason.clone())))).collect()
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return all_fail("starting the write", e);
    }
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = conn.execute_batch("SAVEPOINT edit").map_err(driver_error).and_then(|()| {
            let outcome = edit(conn, &job.tree, job.actor.as_ref());
            let end = if outcome.is_ok() { "RELEASE edit" } else { "ROLLBACK TO edit; RELEASE edit" };
            conn.execute_batch(end).map_err(driver_error)?;
            outcome
        });
        outcomes.push(outcome);
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => outcomes,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            all_fail("committing", e)
        }
    }
}

/// One edit inside the open transaction (which holds the write lock, so the
/// checks stay true until commit).
fn edit(conn: &Connection, tree: &Tree, actor: Option<&Actor>) -> Result<Tree> {
    let serial = code_serial(&tree.code);
    let mut check = conn
        .prepare_cached(concat!(
            "SELECT version, created_at, code_serial, ",
            "(SELECT id FROM trees WHERE code_serial = ?2 AND id <> ?1), ",
            "EXISTS (SELECT 1 FROM orchards WHERE id = ?3), ",
            "?4 IS NULL OR EXISTS (SELECT 1 FROM surveys WHERE id = ?4) ",
            "FROM trees WHERE id = ?1"
        ))
        .map_err(driver_error)?;
    type Stored = (i64, String, i64, Option<i64>, bool, bool);
    let stored: Option<Stored> = check
        .query_row(params![tree.id.0, serial, tree.orchard_id.as_str(), tree.survey_id.map(|s| s.0)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()
        .map_err(driver_error)?;
    let Some((current, created_at, stored_serial, other, orchard_exists, survey_exists)) = stored else {
        return Err(Error::NotFound(tree.id));
    };
    if current != tree.version {
        return Err(Error::Conflict { id: tree.id, current, given: tree.version });
    }
    if other.is_some() {
        return Err(Error::DuplicateCode(tree.code.to_string()));
    }
    if serial != stored_serial {
        let removed: Option<i64> = conn
            .prepare_cached(
                "SELECT tree_id FROM tree_history WHERE removal_reason IS NOT NULL AND code_serial = ?1 LIMIT 1",
            )
            .and_then(|mut s| s.query_row([serial], |r| r.get(0)).optional())
            .map_err(driver_error)?;
        if removed.is_some() {
            return Err(Error::DuplicateCode(tree.code.to_string()));
        }
    }
    if !orchard_exists {
        return Err(Error::UnknownOrchard(tree.orchard_id.clone()));
    }
    if let (Some(SurveyId(s)), false) = (tree.survey_id, survey_exists) {
        return Err(Error::Invalid { field: "survey_id", reason: format!("survey {s} does not exist") });
    }
    // Never before created_at, even if this machine's clock is behind the one that created it.
    let created_at: DateTime<Utc> = parse_time("trees", "created_at", &created_at)?;
    let at = time_text(now().max(created_at));
    conn.prepare_cached(HISTORY_CHANGE_SQL)
        .and_then(|mut s| {
            s.execute(params![
                tree.id.0,
                at,
                actor.map(|a| a.name.as_str()),
                actor.and_then(|a| a.user_id).map(|u| u.0),
                None::<&str>,
                None::<i64>
            ])
        })
        .map_err(driver_error)?;
    let mut update = conn
        .prepare_cached(concat!(
            "UPDATE trees SET code = ?1, lon = ?2, lat = ?3, accuracy_m = ?4, cultivar = ?5, planted_year = ?6, ",
            "health = ?7, height_m = ?8, girth_cm = ?9, orchard_id = ?10, survey_id = ?11, updated_at = ?12, ",
            "version = version + 1, code_serial = ?15, row_key = NULL WHERE id = ?13 AND version = ?14 RETURNING ",
            tree_columns!()
        ))
        .map_err(driver_error)?;
    let mut rows = update
        .query(params![
            tree.code.as_str(),
            tree.location.lon,
            tree.location.lat,
            tree.accuracy_m,
            tree.cultivar.as_str(),
            tree.planted_year,
            tree.health.as_str(),
            tree.height_m,
            tree.girth_cm,
            tree.orchard_id.as_str(),
            tree.survey_id.map(|s| s.0),
            at,
            tree.id.0,
            tree.version,
            serial
        ])
        .map_err(driver_error)?;
    // The write lock is held since the version check, so the row cannot have changed.
    let Some(row) = rows.next().map_err(driver_error)? else {
        return Err(Error::Conflict { id: tree.id, current, given: tree.version });
    };
    let updated = tree_from_rusqlite(row)?;
    drop(rows);
    conn.prepare_cached("INSERT INTO changes (tree_id, changed_at) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![tree.id.0, at]))
        .map_err(driver_error)?;
    Ok(updated)
}
