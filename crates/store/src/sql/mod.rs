//! The repositories, written once in the SQL both backends speak.
//!
//! A backend supplies a [`SqlConn`]: a connection that runs a statement with positional
//! parameters (`?1`, `?2`, … — the PostgreSQL backend rewrites them to `$1`, `$2`, …) and hands
//! rows back through [`SqlRow`], borrowing the driver's buffers. [`Sql`] implements every
//! repository of the core on top of it. The statements use only what SQLite and PostgreSQL
//! share: `ON CONFLICT … DO NOTHING / DO UPDATE`, row-value comparisons, `LIMIT`; integers are
//! 64-bit and flags are 0/1 integers.

mod repos;
pub mod tables;

pub use repos::Sql;

use sameframe_core::store::{BackendError, FailureKind};

/// A parameter or a column value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(s: &'a str) -> Self {
        Val::Text(s)
    }
}

impl<'a> From<&'a String> for Val<'a> {
    fn from(s: &'a String) -> Self {
        Val::Text(s)
    }
}

impl<'a> From<&'a [u8]> for Val<'a> {
    fn from(b: &'a [u8]) -> Self {
        Val::Blob(b)
    }
}

impl<'a> From<&'a Vec<u8>> for Val<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        Val::Blob(b)
    }
}

impl From<i64> for Val<'_> {
    fn from(i: i64) -> Self {
        Val::Int(i)
    }
}

impl From<bool> for Val<'_> {
    fn from(b: bool) -> Self {
        Val::Int(i64::from(b))
    }
}

impl<'a, T: Into<Val<'a>>> From<Option<T>> for Val<'a> {
    fn from(o: Option<T>) -> Self {
        o.map_or(Val::Null, Into::into)
    }
}

/// A statement's failure as a driver reports it, classified.
#[derive(Clone, Debug)]
pub struct SqlError {
    pub kind: FailureKind,
    pub detail: String,
}

impl SqlError {
    pub fn unexpected(detail: impl Into<String>) -> Self {
        SqlError {
            kind: FailureKind::Unexpected,
            detail: detail.into(),
        }
    }
}

/// One row of a result, borrowed from the driver.
pub trait SqlRow {
    /// Column `i`'s value.
    fn get(&self, i: usize) -> Result<Val<'_>, SqlError>;
    /// How many columns.
    fn columns(&self) -> usize;
}

/// A connection a backend runs statements on.
pub trait SqlConn {
    /// What messages call it ("SQLite database …", "PostgreSQL host:port/db").
    fn location(&self) -> String;
    /// Run a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64, SqlError>;
    /// Run a query, calling `f` for each row in order.
    fn query(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        f: &mut dyn FnMut(&dyn SqlRow) -> Result<(), SqlError>,
    ) -> Result<(), SqlError>;
}

/// A statement's failure named by what was being done and where.
pub fn backend_error(location: String, op: &str, e: SqlError) -> BackendError {
    BackendError {
        location,
        op: op.to_string(),
        kind: e.kind,
        detail: e.detail,
    }
}

/// Typed reads of a row's columns.
pub(crate) struct Cols<'r>(pub &'r dyn SqlRow);

impl Cols<'_> {
    pub fn text(&self, i: usize) -> Result<String, SqlError> {
        self.opt_text(i)?
            .ok_or_else(|| SqlError::unexpected(format!("column {i} is NULL")))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, SqlError> {
        match self.0.get(i)? {
            Val::Null => Ok(None),
            Val::Text(s) => Ok(Some(s.to_string())),
            Val::Blob(b) => String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| SqlError::unexpected(format!("column {i} is not text"))),
            Val::Int(n) => Ok(Some(n.to_string())),
            Val::Real(r) => Ok(Some(r.to_string())),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, SqlError> {
        self.opt_int(i)?
            .ok_or_else(|| SqlError::unexpected(format!("column {i} is NULL")))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, SqlError> {
        match self.0.get(i)? {
            Val::Null => Ok(None),
            Val::Int(n) => Ok(Some(n)),
            Val::Real(r) => Ok(Some(r as i64)),
            Val::Text(s) => s
                .parse()
                .map(Some)
                .map_err(|_| SqlError::unexpected(format!("column {i} is not a number"))),
            Val::Blob(_) => Err(SqlError::unexpected(format!("column {i} is not a number"))),
        }
    }

    pub fn bool(&self, i: usize) -> Result<bool, SqlError> {
        Ok(self.int(i)? != 0)
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, SqlError> {
        self.opt_blob(i)?
            .ok_or_else(|| SqlError::unexpected(format!("column {i} is NULL")))
    }

    pub fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, SqlError> {
        Ok(self.bytes(i)?.map(<[u8]>::to_vec))
    }

    /// Borrowed bytes of a blob (or text) column.
    pub fn bytes(&self, i: usize) -> Result<Option<&[u8]>, SqlError> {
        match self.0.get(i)? {
            Val::Null => Ok(None),
            Val::Blob(b) => Ok(Some(b)),
            Val::Text(s) => Ok(Some(s.as_bytes())),
            _ => Err(SqlError::unexpected(format!("column {i} is not bytes"))),
        }
    }

    pub fn str(&self, i: usize) -> Result<&str, SqlError> {
        match self.0.get(i)? {
            Val::Text(s) => Ok(s),
            Val::Blob(b) => std::str::from_utf8(b)
                .map_err(|_| SqlError::unexpected(format!("column {i} is not text"))),
            _ => Err(SqlError::unexpected(format!("column {i} is not text"))),
        }
    }

    /// A column holding a vocabulary word (area, view, role).
    pub fn word<T: std::str::FromStr<Err = String>>(&self, i: usize) -> Result<T, SqlError> {
        self.str(i)?.parse().map_err(SqlError::unexpected)
    }
}
