//! The embedded store's SQLite schema and its migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each migration runs in its own
//! transaction; a store written by a newer sameframe is refused rather than guessed at. Stores
//! made by any earlier version open unchanged: their migrations run on first open.

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
    // 8: storage behind traits. Patient text moves into sealed record bodies (sealed by the
    // core when the store is next opened with its key; built here as plain JSON from the old
    // columns), consent scopes into the consent's body, confounders into the capture's,
    // publication sources into the publication's; settings get bodies; exports record their
    // station; the index copy of fingerprints is written by the repositories, not triggers.
    // Run with foreign keys off (tables are rebuilt); checked after.
    r#"
    CREATE TABLE patient_v8 (
        id         TEXT PRIMARY KEY,
        ref_key    TEXT NOT NULL UNIQUE,
        body       BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    INSERT INTO patient_v8 SELECT id, 'legacy:' || id,
        CAST(json_object('ref', ref, 'display_name', display_name) AS BLOB), created_at
        FROM patient;
    DROP TABLE patient;
    ALTER TABLE patient_v8 RENAME TO patient;

    CREATE TABLE consent_v8 (
        id         TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patient(id),
        body       BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    INSERT INTO consent_v8 SELECT c.id, c.patient_id, CAST(json_object(
            'patient_id', c.patient_id, 'signed_by', c.signed_by, 'signed_on', c.signed_on,
            'expires_on', c.expires_on, 'document_sha256', c.document_sha256,
            'scopes', json(COALESCE((SELECT json_group_array(json_object(
                'scope', s.scope, 'status', s.status, 'withdrawn_at', s.withdrawn_at,
                'withdrawn_by', s.withdrawn_by, 'withdrawal_reason', s.withdrawal_reason))
                FROM consent_scope s WHERE s.consent_id = c.id), '[]')),
            'created_at', c.created_at) AS BLOB), c.created_at
        FROM consent c;
    DROP TABLE consent_scope;
    DROP TABLE consent;
    ALTER TABLE consent_v8 RENAME TO consent;
    CREATE INDEX consent_patient ON consent(patient_id);

    CREATE TABLE visit_v8 (
        id         TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patient(id),
        body       BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    INSERT INTO visit_v8 SELECT id, patient_id, CAST(json_object(
            'visit_id', id, 'patient_id', patient_id, 'date', date, 'area', area,
            'product', product, 'lot', lot, 'lot_expiry', lot_expiry, 'technique', technique,
            'clinician', clinician, 'created_at', created_at) AS BLOB), created_at
        FROM visit;
    DROP TABLE visit;
    ALTER TABLE visit_v8 RENAME TO visit;
    CREATE INDEX visit_patient ON visit(patient_id);

    CREATE TABLE capture_v8 (
        id          TEXT PRIMARY KEY,
        sha256      TEXT NOT NULL UNIQUE REFERENCES blob(sha256),
        patient_id  TEXT NOT NULL REFERENCES patient(id),
        consent_id  TEXT NOT NULL REFERENCES consent(id),
        visit_id    TEXT REFERENCES visit(id),
        area        TEXT NOT NULL,
        view        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('baseline', 'follow_up')),
        baseline_id TEXT REFERENCES capture(id),
        captured_at TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        body        BLOB NOT NULL
    );
    INSERT INTO capture_v8 SELECT c.id, c.sha256, c.patient_id, c.consent_id, c.visit_id,
            c.area, c.view, c.role, c.baseline_id, c.captured_at, c.imported_at,
            CAST(json_object(
                'sha256', c.sha256, 'patient_id', c.patient_id, 'consent_id', c.consent_id,
                'visit_id', c.visit_id, 'area', c.area, 'view', c.view, 'role', c.role,
                'baseline_id', c.baseline_id, 'captured_at', c.captured_at,
                'captured_at_source', c.captured_at_source, 'width', c.width,
                'height', c.height, 'format', c.format, 'size', c.size,
                'exif', json(c.exif), 'exif_error', c.exif_error, 'note', c.note,
                'confounders', json(COALESCE((SELECT json_group_array(json_object(
                    'key', k.key, 'text', k.text))
                    FROM capture_confounder k WHERE k.capture_id = c.id), '[]')),
                'analysis', json(c.analysis), 'imported_at', c.imported_at) AS BLOB)
        FROM capture c;
    DROP TABLE capture_confounder;
    DROP TABLE capture;
    ALTER TABLE capture_v8 RENAME TO capture;
    CREATE INDEX capture_series ON capture(patient_id, area, view, role);
    CREATE INDEX capture_consent ON capture(consent_id);
    CREATE INDEX capture_baseline ON capture(baseline_id);

    CREATE TABLE publication_v8 (
        id          TEXT PRIMARY KEY,
        file_sha256 TEXT NOT NULL,
        body        BLOB NOT NULL,
        recorded_at TEXT NOT NULL
    );
    INSERT INTO publication_v8 SELECT p.id, p.file_sha256, CAST(json_object(
            'publication_id', p.id, 'file_sha256', p.file_sha256, 'channel', p.channel,
            'url', p.url, 'date', p.date, 'purpose', p.purpose,
            'recorded_at', p.recorded_at, 'actor', p.actor,
            'sources', json(COALESCE((SELECT json_group_array(json_object(
                'capture_id', s.capture_id, 'consent_id', s.consent_id,
                'patient_id', s.patient_id, 'sha256', s.sha256, 'panel', json(s.panel),
                'distance', s.distance))
                FROM publication_source s WHERE s.publication_id = p.id), '[]'))) AS BLOB),
            p.recorded_at
        FROM publication p;
    DROP TABLE publication_source;
    DROP TABLE publication;
    ALTER TABLE publication_v8 RENAME TO publication;
    CREATE INDEX publication_file ON publication(file_sha256);

    CREATE TABLE setting_v8 (
        key  TEXT PRIMARY KEY,
        body BLOB NOT NULL
    );
    INSERT INTO setting_v8 SELECT key, CAST(json_object('value', value) AS BLOB) FROM setting;
    DROP TABLE setting;
    ALTER TABLE setting_v8 RENAME TO setting;

    ALTER TABLE export ADD COLUMN station TEXT NOT NULL DEFAULT '';
    ALTER TABLE export ADD COLUMN purge_job TEXT;

    DROP TRIGGER IF EXISTS fingerprint_index_insert;
    DROP TRIGGER IF EXISTS fingerprint_index_update;
    DROP TRIGGER IF EXISTS fingerprint_index_delete;
    "#,
    // 9: treatment records of visits (area maps, products and lots, skin response, pain,
    // outcomes, adverse events), each sealed, with the consent whose clinical record holds it.
    r#"
    CREATE TABLE treatment (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        patient_id TEXT NOT NULL REFERENCES patient(id),
        visit_id   TEXT NOT NULL REFERENCES visit(id),
        consent_id TEXT REFERENCES consent(id),
        body       BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX treatment_visit ON treatment(visit_id);
    CREATE INDEX treatment_patient ON treatment(patient_id);
    CREATE INDEX treatment_consent ON treatment(consent_id);
    CREATE INDEX treatment_kind ON treatment(kind);
    "#,
];

/// Migrations that rebuild tables, and so run with foreign keys off (checked afterwards).
pub const REBUILDS: &[i64] = &[8];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}
