//! Every repository of the core over a [`SqlConn`].

use sameframe_core::analysis::fingerprint::INDEX_KEYPOINTS;
use sameframe_core::store::StoreError;
use sameframe_core::store::repo::*;
use sameframe_core::vocab::{Area, Role, View};

use super::tables::{ROWS_PER_INSERT, TABLES, insert_sql, page_sql, row_sql, table};
use super::{Cols, SqlConn, SqlError, SqlRow, Val, backend_error};

/// The repositories of one connection (or one transaction on it).
pub struct Sql<'c> {
    conn: &'c mut dyn SqlConn,
}

impl<'c> Sql<'c> {
    pub fn new(conn: &'c mut dyn SqlConn) -> Self {
        Self { conn }
    }

    fn fail(&self, op: &str, e: SqlError) -> StoreError {
        StoreError::Backend(backend_error(self.conn.location(), op, e))
    }

    fn exec(&mut self, op: &str, sql: &str, params: &[Val<'_>]) -> RepoResult<u64> {
        self.conn.execute(sql, params).map_err(|e| self.fail(op, e))
    }

    /// Rows mapped by `map`.
    fn rows<T>(
        &mut self,
        op: &str,
        sql: &str,
        params: &[Val<'_>],
        map: impl Fn(&Cols<'_>) -> Result<T, SqlError>,
    ) -> RepoResult<Vec<T>> {
        let mut out = Vec::new();
        let r = self.conn.query(sql, params, &mut |row| {
            out.push(map(&Cols(row))?);
            Ok(())
        });
        r.map_err(|e| self.fail(op, e))?;
        Ok(out)
    }

    /// The first row mapped by `map`, if any.
    fn one<T>(
        &mut self,
        op: &str,
        sql: &str,
        params: &[Val<'_>],
        map: impl Fn(&Cols<'_>) -> Result<T, SqlError>,
    ) -> RepoResult<Option<T>> {
        Ok(self.rows(op, sql, params, map)?.into_iter().next())
    }

    fn strings(&mut self, op: &str, sql: &str, params: &[Val<'_>]) -> RepoResult<Vec<String>> {
        self.rows(op, sql, params, |c| c.text(0))
    }
}

// ----- rows ------------------------------------------------------------------------------------

const CAPTURE_COLS: &str = "id, sha256, patient_id, consent_id, visit_id, area, view, role, baseline_id, captured_at, imported_at, body";

fn capture_row(c: &Cols<'_>) -> Result<CaptureRow, SqlError> {
    Ok(CaptureRow {
        id: c.text(0)?,
        sha256: c.text(1)?,
        patient_id: c.text(2)?,
        consent_id: c.text(3)?,
        visit_id: c.opt_text(4)?,
        area: c.word::<Area>(5)?,
        view: c.word::<View>(6)?,
        role: c.word::<Role>(7)?,
        baseline_id: c.opt_text(8)?,
        captured_at: c.text(9)?,
        imported_at: c.text(10)?,
        body: c.blob(11)?,
    })
}

fn capture_params(r: &CaptureRow) -> [Val<'_>; 12] {
    [
        Val::Text(&r.id),
        Val::Text(&r.sha256),
        Val::Text(&r.patient_id),
        Val::Text(&r.consent_id),
        r.visit_id.as_ref().into(),
        Val::Text(r.area.as_str()),
        Val::Text(r.view.as_str()),
        Val::Text(r.role.as_str()),
        r.baseline_id.as_ref().into(),
        Val::Text(&r.captured_at),
        Val::Text(&r.imported_at),
        Val::Blob(&r.body),
    ]
}

const PATIENT_COLS: &str = "id, ref_key, body, created_at";

fn patient_row(c: &Cols<'_>) -> Result<PatientRow, SqlError> {
    Ok(PatientRow {
        id: c.text(0)?,
        ref_key: c.text(1)?,
        body: c.blob(2)?,
        created_at: c.text(3)?,
    })
}

/// (id, owner, body, created_at) rows: consents and visits.
fn owned_row(c: &Cols<'_>) -> Result<(String, String, Vec<u8>, String), SqlError> {
    Ok((c.text(0)?, c.text(1)?, c.blob(2)?, c.text(3)?))
}

const DATA_KEY_COLS: &str = "id, consent_id, wrapped, created_at, destroyed_at, destroyed_by";

fn data_key_row(c: &Cols<'_>) -> Result<DataKeyRow, SqlError> {
    Ok(DataKeyRow {
        id: c.text(0)?,
        consent_id: c.text(1)?,
        wrapped: c.opt_blob(2)?,
        created_at: c.text(3)?,
        destroyed_at: c.opt_text(4)?,
        destroyed_by: c.opt_text(5)?,
    })
}

const BLOB_COLS: &str = "sha256, size, kind, consent_id, key_id, created_at";

fn blob_row(c: &Cols<'_>) -> Result<BlobRow, SqlError> {
    Ok(BlobRow {
        sha256: c.text(0)?,
        size: c.int(1)?,
        kind: c.text(2)?,
        consent_id: c.text(3)?,
        key_id: c.opt_text(4)?,
        created_at: c.text(5)?,
    })
}

const EXPORT_COLS: &str =
    "id, capture_id, sha256, purpose, path, inside_store, at, actor, station, purge_job";

fn export_row(c: &Cols<'_>) -> Result<ExportRow, SqlError> {
    Ok(ExportRow {
        id: c.text(0)?,
        capture_id: c.text(1)?,
        sha256: c.text(2)?,
        purpose: c.text(3)?,
        path: c.text(4)?,
        inside_store: c.bool(5)?,
        at: c.text(6)?,
        actor: c.text(7)?,
        station: c.opt_text(8)?.unwrap_or_default(),
        purge_job: c.opt_text(9)?,
    })
}

const JOB_COLS: &str = "id, consent_id, scopes, purge_originals, retention_override, reason, actor, started_at, committed_at, completed_at, certificate_sha256";

fn job_row(c: &Cols<'_>) -> Result<PurgeJobRow, SqlError> {
    Ok(PurgeJobRow {
        id: c.text(0)?,
        consent_id: c.text(1)?,
        scopes: c.text(2)?,
        purge_originals: c.bool(3)?,
        retention_override: c.bool(4)?,
        reason: c.text(5)?,
        actor: c.text(6)?,
        started_at: c.text(7)?,
        committed_at: c.opt_text(8)?,
        completed_at: c.opt_text(9)?,
        certificate_sha256: c.opt_text(10)?,
    })
}

fn publication_row(c: &Cols<'_>) -> Result<PublicationRow, SqlError> {
    Ok(PublicationRow {
        id: c.text(0)?,
        file_sha256: c.text(1)?,
        body: c.blob(2)?,
        recorded_at: c.text(3)?,
    })
}

fn cell(v: Val<'_>) -> Cell {
    match v {
        Val::Null => Cell::Null,
        Val::Int(i) => Cell::Int(i),
        Val::Real(r) => Cell::Real(r),
        Val::Text(t) => Cell::Text(t.to_string()),
        Val::Blob(b) => Cell::Bytes(b.to_vec()),
    }
}

fn val(c: &Cell) -> Val<'_> {
    match c {
        Cell::Null => Val::Null,
        Cell::Int(i) => Val::Int(*i),
        Cell::Real(r) => Val::Real(*r),
        Cell::Text(t) => Val::Text(t),
        Cell::Bytes(b) => Val::Blob(b),
    }
}

// ----- repositories ---------------------------------------------------------------------------

impl MetaRepo for Sql<'_> {
    fn meta(&mut self, key: &str) -> RepoResult<Option<String>> {
        self.one(
            "read the store's facts",
            "SELECT value FROM meta WHERE key = ?1",
            &[key.into()],
            |c| c.text(0),
        )
    }

    fn set_meta(&mut self, key: &str, value: &str) -> RepoResult<()> {
        self.exec(
            "record a store fact",
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[key.into(), value.into()],
        )
        .map(|_| ())
    }

    fn setting(&mut self, key: &str) -> RepoResult<Option<Vec<u8>>> {
        self.one(
            "read a setting",
            "SELECT body FROM setting WHERE key = ?1",
            &[key.into()],
            |c| c.blob(0),
        )
    }

    fn set_setting(&mut self, key: &str, body: &[u8]) -> RepoResult<()> {
        self.exec(
            "change a setting",
            "INSERT INTO setting (key, body) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET body = excluded.body",
            &[key.into(), body.into()],
        )
        .map(|_| ())
    }

    fn settings(&mut self) -> RepoResult<Vec<(String, Vec<u8>)>> {
        self.rows(
            "read the settings",
            "SELECT key, body FROM setting ORDER BY key",
            &[],
            |c| Ok((c.text(0)?, c.blob(1)?)),
        )
    }

    fn counts(&mut self) -> RepoResult<Counts> {
        let sql = "SELECT (SELECT COUNT(*) FROM patient), (SELECT COUNT(*) FROM consent),
            (SELECT COUNT(*) FROM visit), (SELECT COUNT(*) FROM capture),
            (SELECT COUNT(*) FROM blob), (SELECT COUNT(*) FROM audit)";
        Ok(self
            .one("count rows", sql, &[], |c| {
                Ok(Counts {
                    patients: c.int(0)?,
                    consents: c.int(1)?,
                    visits: c.int(2)?,
                    captures: c.int(3)?,
                    blobs: c.int(4)?,
                    audit_entries: c.int(5)?,
                })
            })?
            .unwrap_or_default())
    }
}

impl KeyRepo for Sql<'_> {
    fn keyring(&mut self) -> RepoResult<Option<KeyringRow>> {
        self.one(
            "read the key ring",
            "SELECT mode, kdf, salt, wrapped_master, key_file, check_value, migration_pending, created_at FROM keyring WHERE id = 1",
            &[],
            |c| {
                Ok(KeyringRow {
                    mode: c.text(0)?,
                    kdf: c.opt_text(1)?,
                    salt: c.opt_blob(2)?,
                    wrapped_master: c.opt_blob(3)?,
                    key_file: c.opt_text(4)?,
                    check_value: c.blob(5)?,
                    migration_pending: c.bool(6)?,
                    created_at: c.text(7)?,
                })
            },
        )
    }

    fn put_keyring(&mut self, r: &KeyringRow) -> RepoResult<()> {
        self.exec(
            "write the key ring",
            "INSERT INTO keyring (id, mode, kdf, salt, wrapped_master, key_file, check_value, migration_pending, created_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET mode = excluded.mode, kdf = excluded.kdf, salt = excluded.salt,
               wrapped_master = excluded.wrapped_master, key_file = excluded.key_file,
               check_value = excluded.check_value, migration_pending = excluded.migration_pending,
               created_at = excluded.created_at",
            &[
                r.mode.as_str().into(),
                r.kdf.as_ref().into(),
                r.salt.as_ref().into(),
                r.wrapped_master.as_ref().into(),
                r.key_file.as_ref().into(),
                (&r.check_value).into(),
                r.migration_pending.into(),
                r.created_at.as_str().into(),
            ],
        )
        .map(|_| ())
    }

    fn set_keyring_pending(&mut self, pending: bool) -> RepoResult<()> {
        self.exec(
            "update the key ring",
            "UPDATE keyring SET migration_pending = ?1 WHERE id = 1",
            &[pending.into()],
        )
        .map(|_| ())
    }

    fn data_key(&mut self, id: &str) -> RepoResult<Option<DataKeyRow>> {
        let sql = format!("SELECT {DATA_KEY_COLS} FROM data_key WHERE id = ?1");
        self.one("read a data key", &sql, &[id.into()], data_key_row)
    }

    fn data_key_of_consent(&mut self, consent_id: &str) -> RepoResult<Option<DataKeyRow>> {
        let sql = format!("SELECT {DATA_KEY_COLS} FROM data_key WHERE consent_id = ?1");
        self.one(
            "read a consent's data key",
            &sql,
            &[consent_id.into()],
            data_key_row,
        )
    }

    fn insert_data_key(&mut self, r: &DataKeyRow) -> RepoResult<()> {
        self.exec(
            "store a data key",
            "INSERT INTO data_key (id, consent_id, wrapped, created_at, destroyed_at, destroyed_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                r.id.as_str().into(),
                r.consent_id.as_str().into(),
                r.wrapped.as_ref().into(),
                r.created_at.as_str().into(),
                r.destroyed_at.as_ref().into(),
                r.destroyed_by.as_ref().into(),
            ],
        )
        .map(|_| ())
    }

    fn destroy_data_key(&mut self, id: &str, at: &str, by: &str) -> RepoResult<()> {
        self.exec(
            "destroy a data key",
            "UPDATE data_key SET wrapped = NULL, destroyed_at = ?2, destroyed_by = ?3 WHERE id = ?1",
            &[id.into(), at.into(), by.into()],
        )
        .map(|_| ())
    }
}

impl PatientRepo for Sql<'_> {
    fn insert_patient(&mut self, r: &PatientRow) -> RepoResult<()> {
        let sql = format!("INSERT INTO patient ({PATIENT_COLS}) VALUES (?1, ?2, ?3, ?4)");
        self.exec(
            "add a patient",
            &sql,
            &[
                (&r.id).into(),
                (&r.ref_key).into(),
                (&r.body).into(),
                (&r.created_at).into(),
            ],
        )
        .map(|_| ())
    }

    fn update_patient(&mut self, r: &PatientRow) -> RepoResult<()> {
        self.exec(
            "update a patient",
            "UPDATE patient SET ref_key = ?2, body = ?3 WHERE id = ?1",
            &[(&r.id).into(), (&r.ref_key).into(), (&r.body).into()],
        )
        .map(|_| ())
    }

    fn patient(&mut self, id: &str) -> RepoResult<Option<PatientRow>> {
        let sql = format!("SELECT {PATIENT_COLS} FROM patient WHERE id = ?1");
        self.one("read a patient", &sql, &[id.into()], patient_row)
    }

    fn patient_by_ref_key(&mut self, ref_key: &str) -> RepoResult<Option<PatientRow>> {
        let sql = format!("SELECT {PATIENT_COLS} FROM patient WHERE ref_key = ?1");
        self.one("find a patient", &sql, &[ref_key.into()], patient_row)
    }

    fn patients(&mut self) -> RepoResult<Vec<PatientRow>> {
        let sql = format!("SELECT {PATIENT_COLS} FROM patient ORDER BY created_at, id");
        self.rows("list patients", &sql, &[], patient_row)
    }
}

impl ConsentRepo for Sql<'_> {
    fn insert_consent(&mut self, r: &ConsentRow) -> RepoResult<()> {
        self.exec(
            "add a consent",
            "INSERT INTO consent (id, patient_id, body, created_at) VALUES (?1, ?2, ?3, ?4)",
            &[
                (&r.id).into(),
                (&r.patient_id).into(),
                (&r.body).into(),
                (&r.created_at).into(),
            ],
        )
        .map(|_| ())
    }

    fn update_consent(&mut self, r: &ConsentRow) -> RepoResult<()> {
        self.exec(
            "update a consent",
            "UPDATE consent SET patient_id = ?2, body = ?3 WHERE id = ?1",
            &[(&r.id).into(), (&r.patient_id).into(), (&r.body).into()],
        )
        .map(|_| ())
    }

    fn consent(&mut self, id: &str) -> RepoResult<Option<ConsentRow>> {
        Ok(self
            .one(
                "read a consent",
                "SELECT id, patient_id, body, created_at FROM consent WHERE id = ?1",
                &[id.into()],
                owned_row,
            )?
            .map(consent_of))
    }

    fn consents_of_patient(&mut self, patient_id: &str) -> RepoResult<Vec<ConsentRow>> {
        Ok(self
            .rows(
                "list a patient's consents",
                "SELECT id, patient_id, body, created_at FROM consent WHERE patient_id = ?1 ORDER BY created_at, id",
                &[patient_id.into()],
                owned_row,
            )?
            .into_iter()
            .map(consent_of)
            .collect())
    }

    fn consents(&mut self) -> RepoResult<Vec<ConsentRow>> {
        Ok(self
            .rows(
                "list consents",
                "SELECT id, patient_id, body, created_at FROM consent ORDER BY created_at, id",
                &[],
                owned_row,
            )?
            .into_iter()
            .map(consent_of)
            .collect())
    }
}

fn consent_of((id, patient_id, body, created_at): (String, String, Vec<u8>, String)) -> ConsentRow {
    ConsentRow {
        id,
        patient_id,
        body,
        created_at,
    }
}

fn visit_of((id, patient_id, body, created_at): (String, String, Vec<u8>, String)) -> VisitRow {
    VisitRow {
        id,
        patient_id,
        body,
        created_at,
    }
}

const TREATMENT_COLS: &str = "id, kind, patient_id, visit_id, consent_id, body, created_at";

fn treatment_row(c: &Cols<'_>) -> Result<TreatmentRow, SqlError> {
    Ok(TreatmentRow {
        id: c.text(0)?,
        kind: c.text(1)?,
        patient_id: c.text(2)?,
        visit_id: c.text(3)?,
        consent_id: c.opt_text(4)?,
        body: c.blob(5)?,
        created_at: c.text(6)?,
    })
}

impl TreatmentRepo for Sql<'_> {
    fn insert_treatment(&mut self, r: &TreatmentRow) -> RepoResult<()> {
        self.exec(
            "add a treatment record",
            "INSERT INTO treatment (id, kind, patient_id, visit_id, consent_id, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                (&r.id).into(),
                (&r.kind).into(),
                (&r.patient_id).into(),
                (&r.visit_id).into(),
                r.consent_id.as_ref().into(),
                (&r.body).into(),
                (&r.created_at).into(),
            ],
        )
        .map(|_| ())
    }

    fn update_treatment(&mut self, r: &TreatmentRow) -> RepoResult<()> {
        self.exec(
            "update a treatment record",
            "UPDATE treatment SET consent_id = ?2, body = ?3 WHERE id = ?1",
            &[
                (&r.id).into(),
                r.consent_id.as_ref().into(),
                (&r.body).into(),
            ],
        )
        .map(|_| ())
    }

    fn delete_treatment(&mut self, id: &str) -> RepoResult<()> {
        self.exec(
            "delete a treatment record",
            "DELETE FROM treatment WHERE id = ?1",
            &[id.into()],
        )
        .map(|_| ())
    }

    fn treatment(&mut self, id: &str) -> RepoResult<Option<TreatmentRow>> {
        self.one(
            "read a treatment record",
            &format!("SELECT {TREATMENT_COLS} FROM treatment WHERE id = ?1"),
            &[id.into()],
            treatment_row,
        )
    }

    fn treatments_of_visit(&mut self, visit_id: &str) -> RepoResult<Vec<TreatmentRow>> {
        self.rows(
            "list a visit's treatment records",
            &format!(
                "SELECT {TREATMENT_COLS} FROM treatment WHERE visit_id = ?1 ORDER BY created_at, id"
            ),
            &[visit_id.into()],
            treatment_row,
        )
    }

    fn treatments_of_patient(&mut self, patient_id: &str) -> RepoResult<Vec<TreatmentRow>> {
        self.rows(
            "list a patient's treatment records",
            &format!(
                "SELECT {TREATMENT_COLS} FROM treatment WHERE patient_id = ?1 ORDER BY created_at, id"
            ),
            &[patient_id.into()],
            treatment_row,
        )
    }

    fn treatments_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<TreatmentRow>> {
        self.rows(
            "list a consent's treatment records",
            &format!(
                "SELECT {TREATMENT_COLS} FROM treatment WHERE consent_id = ?1 ORDER BY created_at, id"
            ),
            &[consent_id.into()],
            treatment_row,
        )
    }

    fn treatments(&mut self, kind: Option<&str>) -> RepoResult<Vec<TreatmentRow>> {
        match kind {
            Some(k) => self.rows(
                "list treatment records",
                &format!(
                    "SELECT {TREATMENT_COLS} FROM treatment WHERE kind = ?1 ORDER BY created_at, id"
                ),
                &[k.into()],
                treatment_row,
            ),
            None => self.rows(
                "list treatment records",
                &format!("SELECT {TREATMENT_COLS} FROM treatment ORDER BY created_at, id"),
                &[],
                treatment_row,
            ),
        }
    }
}

impl VisitRepo for Sql<'_> {
    fn insert_visit(&mut self, r: &VisitRow) -> RepoResult<()> {
        self.exec(
            "add a visit",
            "INSERT INTO visit (id, patient_id, body, created_at) VALUES (?1, ?2, ?3, ?4)",
            &[
                (&r.id).into(),
                (&r.patient_id).into(),
                (&r.body).into(),
                (&r.created_at).into(),
            ],
        )
        .map(|_| ())
    }

    fn update_visit(&mut self, r: &VisitRow) -> RepoResult<()> {
        self.exec(
            "update a visit",
            "UPDATE visit SET patient_id = ?2, body = ?3 WHERE id = ?1",
            &[(&r.id).into(), (&r.patient_id).into(), (&r.body).into()],
        )
        .map(|_| ())
    }

    fn visit(&mut self, id: &str) -> RepoResult<Option<VisitRow>> {
        Ok(self
            .one(
                "read a visit",
                "SELECT id, patient_id, body, created_at FROM visit WHERE id = ?1",
                &[id.into()],
                owned_row,
            )?
            .map(visit_of))
    }

    fn visits_of_patient(&mut self, patient_id: &str) -> RepoResult<Vec<VisitRow>> {
        Ok(self
            .rows(
                "list a patient's visits",
                "SELECT id, patient_id, body, created_at FROM visit WHERE patient_id = ?1 ORDER BY created_at, id",
                &[patient_id.into()],
                owned_row,
            )?
            .into_iter()
            .map(visit_of)
            .collect())
    }

    fn visits(&mut self) -> RepoResult<Vec<VisitRow>> {
        Ok(self
            .rows(
                "list visits",
                "SELECT id, patient_id, body, created_at FROM visit ORDER BY created_at, id",
                &[],
                owned_row,
            )?
            .into_iter()
            .map(visit_of)
            .collect())
    }
}

impl BlobRowRepo for Sql<'_> {
    fn insert_blob(&mut self, r: &BlobRow) -> RepoResult<()> {
        let sql = format!(
            "INSERT INTO blob ({BLOB_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (sha256) DO NOTHING"
        );
        self.exec(
            "record a blob",
            &sql,
            &[
                (&r.sha256).into(),
                r.size.into(),
                (&r.kind).into(),
                (&r.consent_id).into(),
                r.key_id.as_ref().into(),
                (&r.created_at).into(),
            ],
        )
        .map(|_| ())
    }

    fn blob_row(&mut self, sha256: &str) -> RepoResult<Option<BlobRow>> {
        let sql = format!("SELECT {BLOB_COLS} FROM blob WHERE sha256 = ?1");
        self.one("read a blob row", &sql, &[sha256.into()], blob_row)
    }

    fn blob_rows(&mut self) -> RepoResult<Vec<BlobRow>> {
        let sql = format!("SELECT {BLOB_COLS} FROM blob ORDER BY sha256");
        self.rows("list blobs", &sql, &[], blob_row)
    }

    fn blob_rows_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<BlobRow>> {
        let sql = format!("SELECT {BLOB_COLS} FROM blob WHERE consent_id = ?1 ORDER BY sha256");
        self.rows(
            "list a consent's blobs",
            &sql,
            &[consent_id.into()],
            blob_row,
        )
    }

    fn set_blob_key(&mut self, sha256: &str, key_id: Option<&str>) -> RepoResult<()> {
        self.exec(
            "update a blob row",
            "UPDATE blob SET key_id = ?2 WHERE sha256 = ?1",
            &[sha256.into(), key_id.into()],
        )
        .map(|_| ())
    }

    fn delete_blob_row(&mut self, sha256: &str) -> RepoResult<()> {
        self.exec(
            "delete a blob row",
            "DELETE FROM blob WHERE sha256 = ?1",
            &[sha256.into()],
        )
        .map(|_| ())
    }
}

impl CaptureRepo for Sql<'_> {
    fn insert_capture(&mut self, r: &CaptureRow) -> RepoResult<()> {
        let sql = format!(
            "INSERT INTO capture ({CAPTURE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        );
        self.exec("add a capture", &sql, &capture_params(r))
            .map(|_| ())
    }

    fn update_capture(&mut self, r: &CaptureRow) -> RepoResult<()> {
        self.exec(
            "update a capture",
            "UPDATE capture SET sha256 = ?2, patient_id = ?3, consent_id = ?4, visit_id = ?5, area = ?6,
               view = ?7, role = ?8, baseline_id = ?9, captured_at = ?10, imported_at = ?11, body = ?12
             WHERE id = ?1",
            &capture_params(r),
        )
        .map(|_| ())
    }

    fn capture(&mut self, id: &str) -> RepoResult<Option<CaptureRow>> {
        let sql = format!("SELECT {CAPTURE_COLS} FROM capture WHERE id = ?1");
        self.one("read a capture", &sql, &[id.into()], capture_row)
    }

    fn capture_by_sha(&mut self, sha256: &str) -> RepoResult<Option<CaptureRow>> {
        let sql = format!("SELECT {CAPTURE_COLS} FROM capture WHERE sha256 = ?1");
        self.one(
            "find a capture by hash",
            &sql,
            &[sha256.into()],
            capture_row,
        )
    }

    fn captures(&mut self, patient_id: Option<&str>) -> RepoResult<Vec<CaptureRow>> {
        match patient_id {
            Some(p) => {
                let sql = format!(
                    "SELECT {CAPTURE_COLS} FROM capture WHERE patient_id = ?1 ORDER BY captured_at, imported_at, id"
                );
                self.rows("list a patient's captures", &sql, &[p.into()], capture_row)
            }
            None => {
                let sql = format!(
                    "SELECT {CAPTURE_COLS} FROM capture ORDER BY captured_at, imported_at, id"
                );
                self.rows("list captures", &sql, &[], capture_row)
            }
        }
    }

    fn captures_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<CaptureRow>> {
        let sql = format!("SELECT {CAPTURE_COLS} FROM capture WHERE consent_id = ?1 ORDER BY id");
        self.rows(
            "list a consent's captures",
            &sql,
            &[consent_id.into()],
            capture_row,
        )
    }

    fn followers(&mut self, baseline_id: &str) -> RepoResult<Vec<String>> {
        self.strings(
            "list a baseline's follow-ups",
            "SELECT id FROM capture WHERE baseline_id = ?1 ORDER BY id",
            &[baseline_id.into()],
        )
    }

    fn series_baseline(
        &mut self,
        patient_id: &str,
        area: Area,
        view: View,
    ) -> RepoResult<Option<String>> {
        Ok(self
            .strings(
                "find a series' baseline",
                "SELECT id FROM capture WHERE patient_id = ?1 AND area = ?2 AND view = ?3 AND role = 'baseline'
                 ORDER BY imported_at DESC, captured_at DESC, id DESC LIMIT 1",
                &[patient_id.into(), area.as_str().into(), view.as_str().into()],
            )?
            .into_iter()
            .next())
    }

    fn captures_at_visit(
        &mut self,
        patient_id: &str,
        visit_id: &str,
        area: Area,
        view: View,
    ) -> RepoResult<Vec<String>> {
        self.strings(
            "list a visit's captures",
            "SELECT id FROM capture WHERE patient_id = ?1 AND visit_id = ?2 AND area = ?3 AND view = ?4
             ORDER BY imported_at, captured_at, id",
            &[
                patient_id.into(),
                visit_id.into(),
                area.as_str().into(),
                view.as_str().into(),
            ],
        )
    }

    fn look_alikes(&mut self, capture_id: &str) -> RepoResult<Vec<String>> {
        self.strings(
            "list a capture's look-alikes",
            "SELECT o.id FROM capture c JOIN capture o
               ON o.patient_id = c.patient_id AND o.area = c.area AND o.view = c.view AND o.id <> c.id
             WHERE c.id = ?1 ORDER BY o.captured_at, o.id",
            &[capture_id.into()],
        )
    }

    fn delete_capture(&mut self, id: &str) -> RepoResult<()> {
        self.exec(
            "delete a capture",
            "DELETE FROM capture WHERE id = ?1",
            &[id.into()],
        )
        .map(|_| ())
    }
}

impl FingerprintRepo for Sql<'_> {
    fn put_fingerprint(&mut self, r: &FingerprintRow) -> RepoResult<()> {
        self.exec(
            "store a fingerprint",
            "INSERT INTO fingerprint (capture_id, version, phash, dhash, width, height, keypoints, descriptors, created_at, small)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (capture_id) DO UPDATE SET version = excluded.version, phash = excluded.phash,
               dhash = excluded.dhash, width = excluded.width, height = excluded.height,
               keypoints = excluded.keypoints, descriptors = excluded.descriptors,
               created_at = excluded.created_at, small = excluded.small",
            &[
                (&r.capture_id).into(),
                r.version.into(),
                r.phash.into(),
                r.dhash.into(),
                i64::from(r.width).into(),
                i64::from(r.height).into(),
                (&r.keypoints).into(),
                (&r.descriptors).into(),
                (&r.created_at).into(),
                r.small.as_ref().into(),
            ],
        )?;
        // The review index reads a compact copy: the hashes and the first keypoints.
        let kp = &r.keypoints[..r.keypoints.len().min(INDEX_KEYPOINTS * 8)];
        let ds = &r.descriptors[..r.descriptors.len().min(INDEX_KEYPOINTS * 32)];
        self.exec(
            "store a fingerprint's index row",
            "INSERT INTO fingerprint_index (capture_id, phash, dhash, keypoints, descriptors)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (capture_id) DO UPDATE SET phash = excluded.phash, dhash = excluded.dhash,
               keypoints = excluded.keypoints, descriptors = excluded.descriptors",
            &[
                (&r.capture_id).into(),
                r.phash.into(),
                r.dhash.into(),
                kp.into(),
                ds.into(),
            ],
        )
        .map(|_| ())
    }

    fn fingerprint(&mut self, capture_id: &str) -> RepoResult<Option<FingerprintRow>> {
        self.one(
            "read a fingerprint",
            "SELECT capture_id, version, phash, dhash, width, height, keypoints, descriptors, created_at
             FROM fingerprint WHERE capture_id = ?1",
            &[capture_id.into()],
            |c| {
                Ok(FingerprintRow {
                    capture_id: c.text(0)?,
                    version: c.int(1)?,
                    phash: c.int(2)?,
                    dhash: c.int(3)?,
                    width: u32::try_from(c.int(4)?).unwrap_or(0),
                    height: u32::try_from(c.int(5)?).unwrap_or(0),
                    keypoints: c.blob(6)?,
                    descriptors: c.blob(7)?,
                    created_at: c.text(8)?,
                    small: None,
                })
            },
        )
    }

    fn fingerprint_small(&mut self, capture_id: &str) -> RepoResult<Option<Vec<u8>>> {
        Ok(self
            .one(
                "read a reduced preview",
                "SELECT small FROM fingerprint WHERE capture_id = ?1",
                &[capture_id.into()],
                |c| c.opt_blob(0),
            )?
            .flatten())
    }

    fn set_fingerprint_small(&mut self, capture_id: &str, small: &[u8]) -> RepoResult<()> {
        self.exec(
            "store a reduced preview",
            "UPDATE fingerprint SET small = ?2 WHERE capture_id = ?1",
            &[capture_id.into(), small.into()],
        )
        .map(|_| ())
    }

    fn delete_fingerprint(&mut self, capture_id: &str) -> RepoResult<()> {
        self.exec(
            "delete a fingerprint",
            "DELETE FROM fingerprint WHERE capture_id = ?1",
            &[capture_id.into()],
        )?;
        self.exec(
            "delete a fingerprint's index row",
            "DELETE FROM fingerprint_index WHERE capture_id = ?1",
            &[capture_id.into()],
        )
        .map(|_| ())
    }

    fn fingerprints_to_backfill(&mut self, version: i64) -> RepoResult<Vec<(String, bool)>> {
        self.rows(
            "list fingerprints to backfill",
            "SELECT c.id, f.version FROM capture c LEFT JOIN fingerprint f ON f.capture_id = c.id
             WHERE (f.capture_id IS NULL OR f.version < ?1 OR f.small IS NULL)
               AND NOT EXISTS (SELECT 1 FROM tombstone t WHERE t.subject_id = c.id
                               AND t.kind IN ('fingerprint', 'thumbnail', 'derived'))
             ORDER BY c.imported_at, c.id",
            &[version.into()],
            |c| Ok((c.text(0)?, c.opt_int(1)?.is_some_and(|v| v >= version))),
        )
    }

    fn count_fingerprints_to_backfill(&mut self, version: i64) -> RepoResult<usize> {
        let n = self.one(
            "count fingerprints to backfill",
            "SELECT COUNT(*) FROM capture c LEFT JOIN fingerprint f ON f.capture_id = c.id
             WHERE (f.capture_id IS NULL OR f.version < ?1 OR f.small IS NULL)
               AND NOT EXISTS (SELECT 1 FROM tombstone t WHERE t.subject_id = c.id
                               AND t.kind IN ('fingerprint', 'thumbnail', 'derived'))",
            &[version.into()],
            |c| c.int(0),
        )?;
        Ok(usize::try_from(n.unwrap_or(0)).unwrap_or(0))
    }

    fn fingerprints_with_small(&mut self) -> RepoResult<Vec<(String, String)>> {
        self.rows(
            "list reduced previews",
            "SELECT f.capture_id, c.consent_id FROM fingerprint f JOIN capture c ON c.id = f.capture_id
             WHERE f.small IS NOT NULL ORDER BY f.capture_id",
            &[],
            |c| Ok((c.text(0)?, c.text(1)?)),
        )
    }

    fn each_index_row(&mut self, f: &mut dyn FnMut(IndexRow<'_>)) -> RepoResult<()> {
        let r = self.conn.query(
            "SELECT capture_id, phash, dhash, keypoints, descriptors FROM fingerprint_index",
            &[],
            &mut |row: &dyn SqlRow| {
                let c = Cols(row);
                f(IndexRow {
                    capture_id: c.str(0)?,
                    phash: c.int(1)? as u64,
                    dhash: c.int(2)? as u64,
                    keypoints: c.bytes(3)?.unwrap_or_default(),
                    descriptors: c.bytes(4)?.unwrap_or_default(),
                });
                Ok(())
            },
        );
        r.map_err(|e| self.fail("read the review index", e))
    }
}

impl ExportRepo for Sql<'_> {
    fn insert_export(&mut self, r: &ExportRow) -> RepoResult<()> {
        let sql = format!(
            "INSERT INTO export ({EXPORT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        );
        self.exec(
            "record an export",
            &sql,
            &[
                (&r.id).into(),
                (&r.capture_id).into(),
                (&r.sha256).into(),
                (&r.purpose).into(),
                (&r.path).into(),
                r.inside_store.into(),
                (&r.at).into(),
                (&r.actor).into(),
                (&r.station).into(),
                r.purge_job.as_ref().into(),
            ],
        )
        .map(|_| ())
    }

    fn exports_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<ExportRow>> {
        let cols = EXPORT_COLS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM export e JOIN capture c ON c.id = e.capture_id
             WHERE c.consent_id = ?1 AND e.purge_job IS NULL ORDER BY e.at, e.id"
        );
        self.rows(
            "list a consent's exports",
            &sql,
            &[consent_id.into()],
            export_row,
        )
    }

    fn exports_to_sweep(&mut self, station: Option<&str>) -> RepoResult<Vec<ExportRow>> {
        match station {
            Some(s) => {
                let sql = format!(
                    "SELECT {EXPORT_COLS} FROM export WHERE purge_job IS NOT NULL AND (station = ?1 OR station = '')
                     ORDER BY at, id"
                );
                self.rows("list copies to delete", &sql, &[s.into()], export_row)
            }
            None => {
                let sql = format!(
                    "SELECT {EXPORT_COLS} FROM export WHERE purge_job IS NOT NULL ORDER BY at, id"
                );
                self.rows("list copies to delete", &sql, &[], export_row)
            }
        }
    }

    fn mark_export_purged(&mut self, id: &str, job_id: &str) -> RepoResult<()> {
        self.exec(
            "mark an export for deletion",
            "UPDATE export SET purge_job = ?2 WHERE id = ?1",
            &[id.into(), job_id.into()],
        )
        .map(|_| ())
    }

    fn delete_export(&mut self, id: &str) -> RepoResult<()> {
        self.exec(
            "delete an export row",
            "DELETE FROM export WHERE id = ?1",
            &[id.into()],
        )
        .map(|_| ())
    }
}

impl PublicationRepo for Sql<'_> {
    fn insert_publication(&mut self, r: &PublicationRow) -> RepoResult<()> {
        self.exec(
            "record a publication",
            "INSERT INTO publication (id, file_sha256, body, recorded_at) VALUES (?1, ?2, ?3, ?4)",
            &[
                (&r.id).into(),
                (&r.file_sha256).into(),
                (&r.body).into(),
                (&r.recorded_at).into(),
            ],
        )
        .map(|_| ())
    }

    fn update_publication(&mut self, r: &PublicationRow) -> RepoResult<()> {
        self.exec(
            "update a publication",
            "UPDATE publication SET file_sha256 = ?2, body = ?3 WHERE id = ?1",
            &[(&r.id).into(), (&r.file_sha256).into(), (&r.body).into()],
        )
        .map(|_| ())
    }

    fn publications(&mut self) -> RepoResult<Vec<PublicationRow>> {
        self.rows(
            "list publications",
            "SELECT id, file_sha256, body, recorded_at FROM publication ORDER BY recorded_at, id",
            &[],
            publication_row,
        )
    }

    fn publications_of_file(&mut self, file_sha256: &str) -> RepoResult<Vec<PublicationRow>> {
        self.rows(
            "find a file's publications",
            "SELECT id, file_sha256, body, recorded_at FROM publication WHERE file_sha256 = ?1 ORDER BY recorded_at, id",
            &[file_sha256.into()],
            publication_row,
        )
    }
}

impl ProfileRepo for Sql<'_> {
    fn put_profile(&mut self, r: &ProfileRow) -> RepoResult<bool> {
        let replaced = self
            .one(
                "read a lighting profile",
                "SELECT name FROM lighting_profile WHERE name = ?1",
                &[(&r.name).into()],
                |c| c.text(0),
            )?
            .is_some();
        self.exec(
            "store a lighting profile",
            "INSERT INTO lighting_profile (name, profile, image_sha256, exif, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (name) DO UPDATE SET profile = excluded.profile, image_sha256 = excluded.image_sha256,
               exif = excluded.exif, created_at = excluded.created_at, created_by = excluded.created_by",
            &[
                (&r.name).into(),
                (&r.profile).into(),
                (&r.image_sha256).into(),
                r.exif.as_ref().into(),
                (&r.created_at).into(),
                (&r.created_by).into(),
            ],
        )?;
        Ok(replaced)
    }

    fn profile(&mut self, name: &str) -> RepoResult<Option<ProfileRow>> {
        self.one(
            "read a lighting profile",
            "SELECT name, profile, image_sha256, exif, created_at, created_by FROM lighting_profile WHERE name = ?1",
            &[name.into()],
            |c| {
                Ok(ProfileRow {
                    name: c.text(0)?,
                    profile: c.text(1)?,
                    image_sha256: c.text(2)?,
                    exif: c.opt_text(3)?,
                    created_at: c.text(4)?,
                    created_by: c.text(5)?,
                })
            },
        )
    }

    fn profile_names(&mut self) -> RepoResult<Vec<String>> {
        self.strings(
            "list lighting profiles",
            "SELECT name FROM lighting_profile ORDER BY name",
            &[],
        )
    }
}

impl PurgeRepo for Sql<'_> {
    fn insert_tombstone(&mut self, r: &TombstoneRow) -> RepoResult<()> {
        self.exec(
            "record a tombstone",
            "INSERT INTO tombstone (id, kind, sha256, subject_id, consent_id, job_id, purged_at, purged_by, reason)
             VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM tombstone), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[
                (&r.kind).into(),
                r.sha256.as_ref().into(),
                r.subject_id.as_ref().into(),
                (&r.consent_id).into(),
                (&r.job_id).into(),
                (&r.purged_at).into(),
                (&r.purged_by).into(),
                (&r.reason).into(),
            ],
        )
        .map(|_| ())
    }

    fn tombstones_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<TombstoneRow>> {
        self.rows(
            "list tombstones",
            "SELECT kind, sha256, subject_id, consent_id, job_id, purged_at, purged_by, reason
             FROM tombstone WHERE consent_id = ?1 ORDER BY id",
            &[consent_id.into()],
            |c| {
                Ok(TombstoneRow {
                    kind: c.text(0)?,
                    sha256: c.opt_text(1)?,
                    subject_id: c.opt_text(2)?,
                    consent_id: c.text(3)?,
                    job_id: c.text(4)?,
                    purged_at: c.text(5)?,
                    purged_by: c.text(6)?,
                    reason: c.text(7)?,
                })
            },
        )
    }

    fn insert_purge_job(&mut self, j: &PurgeJobRow, items: &[PurgeItemRow]) -> RepoResult<()> {
        let sql = format!(
            "INSERT INTO purge_job ({JOB_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        );
        self.exec(
            "record a withdrawal",
            &sql,
            &[
                (&j.id).into(),
                (&j.consent_id).into(),
                (&j.scopes).into(),
                j.purge_originals.into(),
                j.retention_override.into(),
                (&j.reason).into(),
                (&j.actor).into(),
                (&j.started_at).into(),
                j.committed_at.as_ref().into(),
                j.completed_at.as_ref().into(),
                j.certificate_sha256.as_ref().into(),
            ],
        )?;
        for (seq, it) in items.iter().enumerate() {
            self.exec(
                "record a withdrawal's item",
                "INSERT INTO purge_item (job_id, seq, kind, subject_id, sha256, path, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &[
                    (&j.id).into(),
                    (seq as i64).into(),
                    (&it.kind).into(),
                    it.subject_id.as_ref().into(),
                    it.sha256.as_ref().into(),
                    it.path.as_ref().into(),
                    it.detail.as_ref().into(),
                ],
            )?;
        }
        Ok(())
    }

    fn pending_purge_job(&mut self, consent_id: &str) -> RepoResult<Option<PurgeJobRow>> {
        let sql = format!(
            "SELECT {JOB_COLS} FROM purge_job WHERE consent_id = ?1 AND completed_at IS NULL ORDER BY started_at, id"
        );
        self.one("read a withdrawal", &sql, &[consent_id.into()], job_row)
    }

    fn unfinished_purge_jobs(&mut self) -> RepoResult<Vec<PurgeJobRow>> {
        let sql = format!(
            "SELECT {JOB_COLS} FROM purge_job WHERE completed_at IS NULL ORDER BY started_at, id"
        );
        self.rows("list unfinished withdrawals", &sql, &[], job_row)
    }

    fn last_completed_purge_job(&mut self, consent_id: &str) -> RepoResult<Option<PurgeJobRow>> {
        let sql = format!(
            "SELECT {JOB_COLS} FROM purge_job WHERE consent_id = ?1 AND completed_at IS NOT NULL
             ORDER BY completed_at DESC, id DESC LIMIT 1"
        );
        self.one("read a withdrawal", &sql, &[consent_id.into()], job_row)
    }

    fn purge_items(&mut self, job_id: &str) -> RepoResult<Vec<PurgeItemRow>> {
        self.rows(
            "read a withdrawal's items",
            "SELECT kind, subject_id, sha256, path, detail FROM purge_item WHERE job_id = ?1 ORDER BY seq",
            &[job_id.into()],
            |c| {
                Ok(PurgeItemRow {
                    kind: c.text(0)?,
                    subject_id: c.opt_text(1)?,
                    sha256: c.opt_text(2)?,
                    path: c.opt_text(3)?,
                    detail: c.opt_text(4)?,
                })
            },
        )
    }

    fn mark_purge_committed(&mut self, job_id: &str, at: &str) -> RepoResult<()> {
        self.exec(
            "commit a withdrawal",
            "UPDATE purge_job SET committed_at = ?2 WHERE id = ?1",
            &[job_id.into(), at.into()],
        )
        .map(|_| ())
    }

    fn mark_purge_completed(&mut self, job_id: &str, at: &str, cert_sha: &str) -> RepoResult<bool> {
        let n = self.exec(
            "complete a withdrawal",
            "UPDATE purge_job SET completed_at = ?2, certificate_sha256 = ?3 WHERE id = ?1 AND completed_at IS NULL",
            &[job_id.into(), at.into(), cert_sha.into()],
        )?;
        Ok(n == 1)
    }
}

impl AuditRepo for Sql<'_> {
    fn audit_head(&mut self) -> RepoResult<Option<(i64, String)>> {
        self.one(
            "read the audit chain's head",
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            &[],
            |c| Ok((c.int(0)?, c.text(1)?)),
        )
    }

    fn insert_audit(&mut self, r: &AuditRow) -> RepoResult<()> {
        self.exec(
            "append to the audit chain",
            "INSERT INTO audit (seq, at, actor, action, subjects, details, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[
                r.seq.into(),
                (&r.at).into(),
                (&r.actor).into(),
                (&r.action).into(),
                (&r.subjects).into(),
                (&r.details).into(),
                (&r.prev_hash).into(),
                (&r.hash).into(),
            ],
        )
        .map(|_| ())
    }

    fn each_audit(&mut self, f: &mut dyn FnMut(AuditRow) -> RepoResult<()>) -> RepoResult<()> {
        // Read in pages: the callback may fail (its error is kept), and a long chain is not
        // held in memory at once.
        let mut after = 0i64;
        loop {
            let page = self.rows(
                "read the audit chain",
                "SELECT seq, at, actor, action, subjects, details, prev_hash, hash FROM audit
                 WHERE seq > ?1 ORDER BY seq LIMIT 5000",
                &[after.into()],
                |c| {
                    Ok(AuditRow {
                        seq: c.int(0)?,
                        at: c.text(1)?,
                        actor: c.text(2)?,
                        action: c.text(3)?,
                        subjects: c.text(4)?,
                        details: c.text(5)?,
                        prev_hash: c.text(6)?,
                        hash: c.text(7)?,
                    })
                },
            )?;
            let Some(last) = page.last().map(|r| r.seq) else {
                return Ok(());
            };
            for row in page {
                f(row)?;
            }
            after = last;
        }
    }
}

impl TransferRepo for Sql<'_> {
    fn transfer_tables(&self) -> Vec<&'static str> {
        TABLES.iter().map(|t| t.name).collect()
    }

    fn transfer_rows(
        &mut self,
        name: &str,
        after: Option<&[Cell]>,
        limit: usize,
    ) -> RepoResult<Vec<Vec<Cell>>> {
        let t = table(name).ok_or_else(|| {
            self.fail(
                "copy rows",
                SqlError::unexpected(format!("no table {name}")),
            )
        })?;
        let params: Vec<Val<'_>> = after
            .map(|a| a.iter().take(t.order.len()).map(val).collect())
            .unwrap_or_default();
        let sql = page_sql(t, after.is_some(), limit);
        let mut out = Vec::new();
        let r = self.conn.query(&sql, &params, &mut |row| {
            out.push(
                (0..row.columns())
                    .map(|i| row.get(i).map(cell))
                    .collect::<Result<_, _>>()?,
            );
            Ok(())
        });
        r.map_err(|e| self.fail(&format!("copy rows of {name}"), e))?;
        Ok(out)
    }

    fn transfer_row(&mut self, name: &str, id: &str) -> RepoResult<Option<Vec<Cell>>> {
        let t = table(name).ok_or_else(|| {
            self.fail(
                "read a row",
                SqlError::unexpected(format!("no table {name}")),
            )
        })?;
        let mut out = None;
        let r = self.conn.query(&row_sql(t), &[Val::Text(id)], &mut |row| {
            out = Some(
                (0..row.columns())
                    .map(|i| row.get(i).map(cell))
                    .collect::<Result<_, _>>()?,
            );
            Ok(())
        });
        r.map_err(|e| self.fail(&format!("read {name} {id}"), e))?;
        Ok(out)
    }

    fn transfer_id_index(&self, name: &str) -> Option<usize> {
        table(name).map(|t| t.id_index())
    }

    fn transfer_insert(&mut self, name: &str, rows: &[Vec<Cell>]) -> RepoResult<usize> {
        let t = table(name).ok_or_else(|| {
            self.fail(
                "copy rows",
                SqlError::unexpected(format!("no table {name}")),
            )
        })?;
        let mut added = 0;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(t, chunk.len());
            let params: Vec<Val<'_>> = chunk.iter().flatten().map(val).collect();
            added += self.exec(&format!("copy rows into {name}"), &sql, &params)? as usize;
        }
        Ok(added)
    }

    fn transfer_clear(&mut self) -> RepoResult<()> {
        for t in TABLES.iter().rev() {
            let sql = format!("DELETE FROM {}", t.name);
            self.exec(&format!("clear {}", t.name), &sql, &[])?;
        }
        Ok(())
    }
}
