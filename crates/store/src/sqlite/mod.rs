//! The embedded backend's rows: one SQLite file (WAL) in the data directory.
//!
//! Writers take SQLite's write lock at the start of a unit of work (`BEGIN IMMEDIATE`) and wait
//! for it up to a busy timeout, so two local processes writing at once queue instead of
//! failing; a lock held longer than that is reported as the store being busy, naming the file.

mod schema;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, ToSql};

use crate::sql::{Sql, SqlConn, SqlError, SqlRow, Val, backend_error};
use sameframe_core::store::repo::{Backend, RepoResult, Work};
use sameframe_core::store::{FailureKind, StoreError};

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// Units of work retried after a transient conflict.
const RETRIES: usize = 5;

/// A connection to a store's SQLite file.
struct Conn {
    path: PathBuf,
    db: Connection,
}

struct P<'a>(&'a Val<'a>);

impl ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self.0 {
            Val::Null => ValueRef::Null,
            Val::Int(i) => ValueRef::Integer(i),
            Val::Real(r) => ValueRef::Real(r),
            Val::Text(t) => ValueRef::Text(t.as_bytes()),
            Val::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

struct Row<'r, 's>(&'r rusqlite::Row<'s>);

impl SqlRow for Row<'_, '_> {
    fn get(&self, i: usize) -> Result<Val<'_>, SqlError> {
        Ok(match self.0.get_ref(i).map_err(classify)? {
            ValueRef::Null => Val::Null,
            ValueRef::Integer(n) => Val::Int(n),
            ValueRef::Real(r) => Val::Real(r),
            ValueRef::Text(t) => Val::Text(
                std::str::from_utf8(t)
                    .map_err(|_| SqlError::unexpected(format!("column {i} is not UTF-8")))?,
            ),
            ValueRef::Blob(b) => Val::Blob(b),
        })
    }

    fn columns(&self) -> usize {
        self.0.as_ref().column_count()
    }
}

/// A driver error, classified.
fn classify(e: rusqlite::Error) -> SqlError {
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => FailureKind::Busy,
            ErrorCode::ConstraintViolation => match f.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => FailureKind::Duplicate,
                _ => FailureKind::Constraint,
            },
            _ => FailureKind::Unexpected,
        },
        _ => FailureKind::Unexpected,
    };
    let detail = match kind {
        FailureKind::Busy => format!(
            "another sameframe process held the store's write lock for more than {} s ({e})",
            BUSY_TIMEOUT.as_secs()
        ),
        _ => e.to_string(),
    };
    SqlError { kind, detail }
}

impl SqlConn for Conn {
    fn location(&self) -> String {
        format!("SQLite database {}", self.path.display())
    }

    fn execute(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64, SqlError> {
        let mut st = self.db.prepare_cached(sql).map_err(classify)?;
        let n = st
            .execute(rusqlite::params_from_iter(params.iter().map(P)))
            .map_err(classify)?;
        Ok(n as u64)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        f: &mut dyn FnMut(&dyn SqlRow) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        let mut st = self.db.prepare_cached(sql).map_err(classify)?;
        let mut rows = st
            .query(rusqlite::params_from_iter(params.iter().map(P)))
            .map_err(classify)?;
        while let Some(r) = rows.next().map_err(classify)? {
            f(&Row(r))?;
        }
        Ok(())
    }
}

/// The embedded backend's rows.
pub struct Sqlite {
    conn: RefCell<Conn>,
}

fn open_conn(path: &Path) -> Result<Connection, SqlError> {
    let db = Connection::open(path).map_err(classify)?;
    db.busy_timeout(BUSY_TIMEOUT).map_err(classify)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
    )
    .map_err(classify)?;
    Ok(db)
}

impl Sqlite {
    /// Open (creating when `create`) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path, create: bool) -> Result<Self, StoreError> {
        let location = format!("SQLite database {}", path.display());
        if !create && !path.is_file() {
            return Err(StoreError::NotInitialized {
                path: path.parent().unwrap_or(path).to_path_buf(),
            });
        }
        let fail = |op: &str, e| StoreError::Backend(backend_error(location.clone(), op, e));
        let new = !path.exists();
        let mut db = open_conn(path).map_err(|e| fail("open", e))?;
        if new {
            // Readable by its owner only (SQLite gives its WAL and shared-memory files the
            // same mode).
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(StoreError::io(path))?;
            }
        }
        let found = version(&db).map_err(|e| fail("read the schema version", e))?;
        if found > schema::latest() {
            return Err(StoreError::TooNew {
                location,
                found,
                supported: schema::latest(),
            });
        }
        migrate(&mut db).map_err(|e| fail("upgrade the schema", e))?;
        Ok(Self {
            conn: RefCell::new(Conn {
                path: path.to_path_buf(),
                db,
            }),
        })
    }

    fn location_string(&self) -> String {
        self.conn.borrow().location()
    }

    fn fail(&self, op: &str, e: SqlError) -> StoreError {
        StoreError::Backend(backend_error(self.location_string(), op, e))
    }
}

impl Backend for Sqlite {
    fn location(&self) -> String {
        self.location_string()
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn read(&self, work: &mut Work<'_>) -> RepoResult<()> {
        let mut c = self.conn.borrow_mut();
        work(&mut Sql::new(&mut *c))
    }

    fn write(&self, work: &mut Work<'_>) -> RepoResult<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut c = self.conn.borrow_mut();
            // Errors are named from the connection in hand (`self.fail` would borrow it again).
            let location = c.location();
            let fail = |op: &str, e| StoreError::Backend(backend_error(location.clone(), op, e));
            c.db.execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| fail("take the store's write lock", classify(e)))?;
            let r = work(&mut Sql::new(&mut *c));
            let done = match r {
                Ok(()) => {
                    c.db.execute_batch("COMMIT")
                        .map_err(|e| fail("commit", classify(e)))
                }
                Err(e) => Err(e),
            };
            if done.is_err() {
                let _ = c.db.execute_batch("ROLLBACK");
            }
            match done {
                Err(e)
                    if attempt < RETRIES
                        && matches!(e.kind(), Some(FailureKind::Retry | FailureKind::Busy)) =>
                {
                    drop(c);
                    std::thread::sleep(Duration::from_millis(20 * attempt as u64));
                }
                other => return other,
            }
        }
    }

    fn reader(&self) -> RepoResult<Box<dyn Backend>> {
        let path = self.conn.borrow().path.clone();
        let db = open_conn(&path).map_err(|e| self.fail("open", e))?;
        db.execute_batch("PRAGMA query_only = ON;")
            .map_err(|e| self.fail("open", classify(e)))?;
        Ok(Box::new(Sqlite {
            conn: RefCell::new(Conn { path, db }),
        }))
    }

    fn schema_version(&self) -> RepoResult<i64> {
        version(&self.conn.borrow().db).map_err(|e| self.fail("read the schema version", e))
    }

    fn compact(&self) -> RepoResult<()> {
        // Fold the WAL into the database and truncate it, so deleted rows and destroyed keys
        // do not linger in the log file. A reader holding an old snapshot can delay it; the
        // next checkpoint finishes the job.
        let c = self.conn.borrow();
        let _ =
            c.db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(())
    }
}

fn version(db: &Connection) -> Result<i64, SqlError> {
    db.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(classify)
}

/// Apply pending migrations. Returns the versions applied.
fn migrate(db: &mut Connection) -> Result<Vec<i64>, SqlError> {
    let mut applied = Vec::new();
    let mut v = version(db)?;
    while v < schema::latest() {
        let next = v + 1;
        let rebuild = schema::REBUILDS.contains(&next);
        if rebuild {
            db.execute_batch("PRAGMA foreign_keys = OFF")
                .map_err(classify)?;
        }
        let result = (|| {
            let tx = db
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(classify)?;
            // Re-read under the write lock: another process may have migrated meanwhile.
            let current: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(classify)?;
            if current != v {
                tx.commit().map_err(classify)?;
                return Ok(current);
            }
            let idx = usize::try_from(v).unwrap_or(0);
            tx.execute_batch(schema::MIGRATIONS[idx])
                .map_err(classify)?;
            if rebuild {
                let broken: i64 = tx
                    .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                        r.get(0)
                    })
                    .map_err(classify)?;
                if broken > 0 {
                    return Err(SqlError::unexpected(format!(
                        "migration {next} would leave {broken} broken reference(s); nothing was changed"
                    )));
                }
            }
            tx.execute_batch(&format!("PRAGMA user_version = {next}"))
                .map_err(classify)?;
            tx.commit().map_err(classify)?;
            Ok(next)
        })();
        if rebuild {
            db.execute_batch("PRAGMA foreign_keys = ON")
                .map_err(classify)?;
        }
        let reached = result?;
        if reached == next {
            applied.push(next);
        }
        v = reached;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open_conn(&dir.path().join("t.db")).unwrap();
        let applied = migrate(&mut db).unwrap();
        assert_eq!(applied, (1..=schema::latest()).collect::<Vec<_>>());
        assert_eq!(version(&db).unwrap(), schema::latest());
        assert!(migrate(&mut db).unwrap().is_empty());
    }
}
