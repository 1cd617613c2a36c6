//! The SQLite schema and its migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each migration runs in its own
//! transaction; a store written by a newer sameframe is refused rather than guessed at.

use rusqlite::Connection;

/// Migrations in order; index + 1 is the schema version after applying it.
pub const MIGRATIONS: &[&str] = &[
    // 1: records core.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE setting (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE patient (
        id           TEXT PRIMARY KEY,
        ref          TEXT NOT NULL UNIQUE,
        display_name TEXT,
        created_at   TEXT NOT NULL
    );
    CREATE TABLE keyring (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        mode             TEXT NOT NULL CHECK (mode IN ('passphrase', 'keyfile')),
        kdf              TEXT,
        salt             BLOB,
        wrapped_master   BLOB,
        key_file         TEXT,
        check_value      BLOB NOT NULL,
        migration_pending INTEGER NOT NULL DEFAULT 0,
        created_at       TEXT NOT NULL
    );
    CREATE TABLE data_key (
        id           TEXT PRIMARY KEY,
        consent_id   TEXT NOT NULL UNIQUE REFERENCES consent(id),
        wrapped      BLOB,
        created_at   TEXT NOT NULL,
        destroyed_at TEXT,
        destroyed_by TEXT
    );
    CREATE TABLE blob (
        sha256     TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('capture', 'document')),
        consent_id TEXT NOT NULL REFERENCES consent(id),
        key_id     TEXT REFERENCES data_key(id),
        created_at TEXT NOT NULL
    );
    CREATE TABLE consent (
        id              TEXT PRIMARY KEY,
        patient_id      TEXT NOT NULL REFERENCES patient(id),
        signed_by       TEXT NOT NULL,
        signed_on       TEXT NOT NULL,
        expires_on      TEXT,
        document_sha256 TEXT REFERENCES blob(sha256),
        created_at      TEXT NOT NULL
    );
    CREATE INDEX consent_patient ON consent(patient_id);
    CREATE TABLE consent_scope (
        consent_id        TEXT NOT NULL REFERENCES consent(id),
        scope             TEXT NOT NULL CHECK (scope IN ('clinical', 'teaching', 'publication')),
        status            TEXT NOT NULL CHECK (status IN ('active', 'withdrawn')),
        withdrawn_at      TEXT,
        withdrawn_by      TEXT,
        withdrawal_reason TEXT,
        PRIMARY KEY (consent_id, scope)
    );
    CREATE TABLE visit (
        id         TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patient(id),
        date       TEXT NOT NULL,
        area       TEXT NOT NULL,
        product    TEXT,
        lot        TEXT,
        lot_expiry TEXT,
        technique  TEXT,
        clinician  TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX visit_patient ON visit(patient_id);
    CREATE TABLE capture (
        id                 TEXT PRIMARY KEY,
        sha256             TEXT NOT NULL UNIQUE REFERENCES blob(sha256),
        patient_id         TEXT NOT NULL REFERENCES patient(id),
        consent_id         TEXT NOT NULL REFERENCES consent(id),
        visit_id           TEXT REFERENCES visit(id),
        area               TEXT NOT NULL,
        view               TEXT NOT NULL,
        role               TEXT NOT NULL CHECK (role IN ('baseline', 'follow_up')),
        baseline_id        TEXT REFERENCES capture(id),
        captured_at        TEXT NOT NULL,
        captured_at_source TEXT NOT NULL,
        width              INTEGER NOT NULL,
        height             INTEGER NOT NULL,
        format             TEXT NOT NULL,
        size               INTEGER NOT NULL,
        exif               TEXT,
        exif_error         TEXT,
        note               TEXT,
        analysis           TEXT,
        imported_at        TEXT NOT NULL
    );
    CREATE INDEX capture_series ON capture(patient_id, area, view, role);
    CREATE INDEX capture_consent ON capture(consent_id);
    CREATE TABLE capture_confounder (
        capture_id TEXT NOT NULL REFERENCES capture(id),
        key        TEXT NOT NULL,
        text       TEXT,
        PRIMARY KEY (capture_id, key)
    );
    CREATE TABLE export (
        id         TEXT PRIMARY KEY,
        capture_id TEXT NOT NULL,
        sha256     TEXT NOT NULL,
        purpose    TEXT NOT NULL,
        path       TEXT NOT NULL,
        inside_store INTEGER NOT NULL,
        at         TEXT NOT NULL,
        actor      TEXT NOT NULL
    );
    CREATE INDEX export_capture ON export(capture_id);
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        subjects  TEXT NOT NULL,
        details   TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    );
    "#,
    // 2: withdrawal and purge (tombstones, journaled purge jobs), publication records.
    r#"
    CREATE TABLE tombstone (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        sha256      TEXT,
        subject_id  TEXT,
        consent_id  TEXT NOT NULL,
        job_id      TEXT NOT NULL,
        purged_at   TEXT NOT NULL,
        purged_by   TEXT NOT NULL,
        reason      TEXT NOT NULL
    );
    CREATE INDEX tombstone_sha ON tombstone(sha256);
    CREATE INDEX tombstone_consent ON tombstone(consent_id);
    CREATE TABLE purge_job (
        id                 TEXT PRIMARY KEY,
        consent_id         TEXT NOT NULL REFERENCES consent(id),
        scopes             TEXT NOT NULL,
        purge_originals    INTEGER NOT NULL,
        retention_override INTEGER NOT NULL,
        reason             TEXT NOT NULL,
        actor              TEXT NOT NULL,
        started_at         TEXT NOT NULL,
        committed_at       TEXT,
        completed_at       TEXT,
        certificate_sha256 TEXT
    );
    CREATE INDEX purge_job_consent ON purge_job(consent_id);
    CREATE TABLE purge_item (
        job_id     TEXT NOT NULL REFERENCES purge_job(id),
        seq        INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        subject_id TEXT,
        sha256     TEXT,
        path       TEXT,
        detail     TEXT,
        PRIMARY KEY (job_id, seq)
    );
    CREATE TABLE publication (
        id           TEXT PRIMARY KEY,
        file_sha256  TEXT NOT NULL,
        channel      TEXT NOT NULL,
        url          TEXT,
        date         TEXT NOT NULL,
        purpose      TEXT NOT NULL CHECK (purpose IN ('teaching', 'publication')),
        recorded_at  TEXT NOT NULL,
        actor        TEXT NOT NULL
    );
    CREATE TABLE publication_source (
        publication_id TEXT NOT NULL REFERENCES publication(id),
        capture_id     TEXT NOT NULL,
        consent_id     TEXT NOT NULL,
        patient_id     TEXT NOT NULL,
        sha256         TEXT NOT NULL,
        panel          TEXT,
        distance       REAL,
        PRIMARY KEY (publication_id, capture_id)
    );
    CREATE INDEX publication_source_consent ON publication_source(consent_id);
    "#,
    // 3: room calibration profiles for the lighting check.
    r#"
    CREATE TABLE lighting_profile (
        name         TEXT PRIMARY KEY,
        profile      TEXT NOT NULL,
        image_sha256 TEXT NOT NULL,
        exif         TEXT,
        created_at   TEXT NOT NULL,
        created_by   TEXT NOT NULL
    );
    "#,
    // 4: perceptual fingerprints of captures, for tracing published images to their sources.
    r#"
    CREATE TABLE fingerprint (
        capture_id  TEXT PRIMARY KEY REFERENCES capture(id),
        version     INTEGER NOT NULL,
        phash       INTEGER NOT NULL,
        dhash       INTEGER NOT NULL,
        width       INTEGER NOT NULL,
        height      INTEGER NOT NULL,
        keypoints   BLOB NOT NULL,
        descriptors BLOB NOT NULL,
        created_at  TEXT NOT NULL
    );
    "#,
    // 5: indexes for purges: un-linking follow-ups from a purged baseline and the foreign-key
    // checks on deleting a capture or a data key scanned whole tables per item.
    r#"
    CREATE INDEX capture_baseline ON capture(baseline_id);
    CREATE INDEX blob_key ON blob(key_id);
    "#,
    // 6: each capture's reduced luma preview (what a candidate's pixels are verified on),
    // sealed like its thumbnail, so review need not decode the thumbnail per candidate.
    r#"
    ALTER TABLE fingerprint ADD COLUMN small BLOB;
    "#,
    // 7: what the review index reads of each fingerprint (its hashes and the first 48
    // keypoints and descriptors: 8 and 32 bytes each), in rows small enough to sit whole on a
    // page, so a review at 100,000 captures does not read every fingerprint's overflow pages.
    // Triggers keep it in step with `fingerprint`, so no writer can forget it and a purge of a
    // fingerprint removes its index row too. (Delete, then insert: an upsert's conflict policy
    // would override a REPLACE inside the trigger. `substr` of an empty blob is NULL.)
    r#"
    CREATE TABLE fingerprint_index (
        capture_id  TEXT PRIMARY KEY,
        phash       INTEGER NOT NULL,
        dhash       INTEGER NOT NULL,
        keypoints   BLOB NOT NULL,
        descriptors BLOB NOT NULL
    );
    INSERT INTO fingerprint_index
        SELECT capture_id, phash, dhash, ifnull(substr(keypoints, 1, 384), X''),
            ifnull(substr(descriptors, 1, 1536), X'')
        FROM fingerprint;
    CREATE TRIGGER fingerprint_index_insert AFTER INSERT ON fingerprint BEGIN
        DELETE FROM fingerprint_index WHERE capture_id = NEW.capture_id;
        INSERT INTO fingerprint_index VALUES (NEW.capture_id, NEW.phash, NEW.dhash,
            ifnull(substr(NEW.keypoints, 1, 384), X''),
            ifnull(substr(NEW.descriptors, 1, 1536), X''));
    END;
    CREATE TRIGGER fingerprint_index_update
    AFTER UPDATE OF phash, dhash, keypoints, descriptors ON fingerprint BEGIN
        DELETE FROM fingerprint_index WHERE capture_id = NEW.capture_id;
        INSERT INTO fingerprint_index VALUES (NEW.capture_id, NEW.phash, NEW.dhash,
            ifnull(substr(NEW.keypoints, 1, 384), X''),
            ifnull(substr(NEW.descriptors, 1, 1536), X''));
    END;
    CREATE TRIGGER fingerprint_index_delete AFTER DELETE ON fingerprint BEGIN
        DELETE FROM fingerprint_index WHERE capture_id = OLD.capture_id;
    END;
    "#,
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// The store's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Apply pending migrations. Returns the versions applied.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Vec<i64>> {
    let mut applied = Vec::new();
    let mut v = version(conn)?;
    while v < latest() {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current != v {
            v = current;
            tx.commit()?;
            continue;
        }
        let idx = usize::try_from(v).unwrap_or(0);
        tx.execute_batch(MIGRATIONS[idx])?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))?;
        tx.commit()?;
        v += 1;
        applied.push(v);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_in_order() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let applied = migrate(&mut c).unwrap();
        assert_eq!(applied, (1..=latest()).collect::<Vec<_>>());
        assert_eq!(version(&c).unwrap(), latest());
        assert!(migrate(&mut c).unwrap().is_empty());
    }
}
