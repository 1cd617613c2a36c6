//! The tampering suite: each edit someone with access to the database (not the store key)
//! could make, done with SQL on the store's database, must be reported by `verify` or
//! `audit verify` (both, here), naming what was changed; and a store put back from an older
//! copy, which is consistent in itself, must be caught by its deletion certificates.

#![allow(clippy::unwrap_used)]

mod util;

use util::TestStore;
use util::images;

/// A store with two patients: A consents to publication, B only to clinical use; each has a
/// capture, A's photo has a recorded publication.
struct World {
    t: TestStore,
    a_consent: String,
    b_consent: String,
    a_capture: String,
    b_capture: String,
}

fn world() -> World {
    let t = TestStore::new();
    let a_consent = t.patient_with_consent("A-1", "clinical,publication");
    let b_consent = t.patient_with_consent("B-1", "clinical");
    let a_photo = t.write("a.jpg", &images::jpeg(320, 240, 1));
    let b_photo = t.write("b.jpg", &images::jpeg(320, 240, 2));
    let a_capture = t.import(&a_photo, "A-1", &a_consent, &[])["capture_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b_capture = t.import(&b_photo, "B-1", &b_consent, &[])["capture_id"]
        .as_str()
        .unwrap()
        .to_string();
    t.ok(&[
        "publish",
        "record",
        a_photo.to_str().unwrap(),
        "--channel",
        "clinic website",
    ]);
    t.ok(&["verify"]);
    t.ok(&["audit", "verify"]);
    World {
        t,
        a_consent,
        b_consent,
        a_capture,
        b_capture,
    }
}

/// A bytes literal for the store's database.
fn bytes(t: &TestStore, hex: &str) -> String {
    if t.is_shared() {
        format!("'\\x{hex}'::bytea")
    } else {
        format!("X'{hex}'")
    }
}

/// Both checks fail, and at least one names `needle`.
fn detected(t: &TestStore, what: &str, needle: &str) {
    let mut named = false;
    for args in [&["verify"][..], &["audit", "verify"][..]] {
        let (cmd, out) = t.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "{what}: `{args:?}` passed:\n{cmd:?}\n{text}"
        );
        named |= text.contains(needle);
    }
    assert!(named, "{what}: neither check named {needle}");
}

#[test]
fn a_consent_given_another_consents_body_is_reported() {
    let w = world();
    let body =
        w.t.sql_one(&format!(
            "SELECT body FROM consent WHERE id = '{}'",
            w.a_consent
        ))
        .unwrap();
    w.t.sql_exec(&format!(
        "UPDATE consent SET body = {} WHERE id = '{}'",
        bytes(&w.t, &body),
        w.b_consent
    ));
    detected(&w.t, "scope added by copying a body", &w.b_consent);
}

#[test]
fn a_capture_moved_to_another_consent_is_reported() {
    let w = world();
    let (pat, con) = {
        let r = w.t.sql(&format!(
            "SELECT patient_id, consent_id FROM capture WHERE id = '{}'",
            w.a_capture
        ));
        (r[0][0].clone().unwrap(), r[0][1].clone().unwrap())
    };
    w.t.sql_exec(&format!(
        "UPDATE capture SET patient_id = '{pat}', consent_id = '{con}' WHERE id = '{}'",
        w.b_capture
    ));
    detected(&w.t, "capture moved", &w.b_capture);
}

#[test]
fn a_withdrawal_undone_by_putting_back_the_old_row_is_reported() {
    let w = world();
    let before =
        w.t.sql_one(&format!(
            "SELECT body FROM consent WHERE id = '{}'",
            w.a_consent
        ))
        .unwrap();
    w.t.ok(&[
        "consent",
        "withdraw",
        &w.a_consent,
        "--scope",
        "publication",
        "--reason",
        "patient asked",
    ]);
    w.t.ok(&["audit", "verify"]);
    // The old body is authentic (sealed by the store itself): only the chain knows it is old.
    w.t.sql_exec(&format!(
        "UPDATE consent SET body = {} WHERE id = '{}'",
        bytes(&w.t, &before),
        w.a_consent
    ));
    assert_eq!(
        w.t.ok(&["consent", "show", &w.a_consent])["scopes"][1]["status"],
        "active",
        "the edit did put the scope back"
    );
    detected(&w.t, "withdrawal undone", &w.a_consent);
}

#[test]
fn an_edited_signature_is_reported() {
    let w = world();
    let body =
        w.t.sql_one(&format!(
            "SELECT body FROM consent WHERE id = '{}'",
            w.b_consent
        ))
        .unwrap();
    // Flip one byte of the sealed body (where signed-by and signed-on are).
    let mut b = sameframe::ids::unhex(&body).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x20;
    w.t.sql_exec(&format!(
        "UPDATE consent SET body = {} WHERE id = '{}'",
        bytes(&w.t, &util::hex(&b)),
        w.b_consent
    ));
    detected(&w.t, "signature edited", &w.b_consent);
}

#[test]
fn retention_switched_off_behind_the_stores_back_is_reported() {
    let w = world();
    w.t.ok(&["config", "set", "retention.keep_clinical_record", "false"]);
    let off =
        w.t.sql_one("SELECT body FROM setting WHERE key = 'retention.keep_clinical_record'")
            .unwrap();
    w.t.ok(&["config", "set", "retention.keep_clinical_record", "true"]);
    w.t.ok(&["audit", "verify"]);
    w.t.sql_exec(&format!(
        "UPDATE setting SET body = {} WHERE key = 'retention.keep_clinical_record'",
        bytes(&w.t, &off)
    ));
    detected(&w.t, "retention off", "retention.keep_clinical_record");
    // Deleting the setting (back to the default) is a change too.
    let w = world();
    w.t.ok(&["config", "set", "retention.keep_clinical_record", "true"]);
    w.t.sql_exec("DELETE FROM setting WHERE key = 'retention.keep_clinical_record'");
    detected(
        &w.t,
        "retention row deleted",
        "retention.keep_clinical_record",
    );
}

#[test]
fn deleted_rows_are_reported() {
    let w = world();
    w.t.sql_exec(&format!(
        "DELETE FROM fingerprint_index WHERE capture_id = '{}'",
        w.b_capture
    ));
    w.t.sql_exec(&format!(
        "DELETE FROM fingerprint WHERE capture_id = '{}'",
        w.b_capture
    ));
    w.t.sql_exec(&format!("DELETE FROM capture WHERE id = '{}'", w.b_capture));
    detected(&w.t, "capture row deleted", &w.b_capture);

    let w = world();
    let id = w.t.sql_one("SELECT id FROM publication").unwrap();
    assert_eq!(w.t.sql_exec("DELETE FROM publication"), 1);
    detected(&w.t, "publications deleted (the takedown list)", &id);
}

#[test]
fn an_inserted_row_is_reported() {
    let w = world();
    let cols = "id, file_sha256, body, recorded_at";
    w.t.sql_exec(&format!(
        "INSERT INTO publication ({cols}) SELECT 'pub_forged', file_sha256, body, recorded_at FROM publication"
    ));
    detected(&w.t, "publication inserted", "pub_forged");
}

#[test]
fn a_removed_audit_tail_is_reported() {
    let w = world();
    let head = w.t.ok(&["audit", "verify"])["head_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let n: i64 =
        w.t.sql_one("SELECT MAX(seq) FROM audit")
            .unwrap()
            .parse()
            .unwrap();
    w.t.sql_exec(&format!("DELETE FROM audit WHERE seq > {}", n - 2));
    // What the removed entries recorded is still in the rows: they no longer fit the chain.
    detected(&w.t, "audit tail removed", "not in the audit log");
    // And a head kept outside the store says so directly.
    let out = w.t.fails(
        &["audit", "verify", "--expect-head", &head],
        &["history is not whole"],
    );
    let _ = out;
}

#[test]
fn an_unsealed_or_resealed_audit_entry_is_reported() {
    let w = world();
    // Rewrite the last entry's details (dropping its seal) and re-hash it as the chain does.
    let r = w.t.sql("SELECT seq, at, actor, action, subjects, details, prev_hash FROM audit ORDER BY seq DESC LIMIT 1");
    let row: Vec<String> = r[0].iter().map(|c| c.clone().unwrap()).collect();
    let seq: i64 = row[0].parse().unwrap();
    let mut details: serde_json::Value = serde_json::from_str(&row[5]).unwrap();
    details.as_object_mut().unwrap().remove("seal");
    details["channel"] = "forged".into();
    let details = details.to_string();
    let canonical = serde_json::json!([seq, row[1], row[2], row[3], row[4], details, row[6]]);
    let hash = sameframe::ids::sha256_hex(canonical.to_string().as_bytes());
    w.t.sql_exec(&format!(
        "UPDATE audit SET details = '{}', hash = '{hash}' WHERE seq = {seq}",
        details.replace('\'', "''")
    ));
    detected(&w.t, "entry rewritten without the key", "not sealed");
}

#[test]
fn a_store_put_back_from_before_a_withdrawal_is_caught_by_its_certificate() {
    if util::shared_requested() {
        // A shared store's database is restored by its administrator; the same check runs
        // there (certificates live in the bucket), exercised by the embedded case.
        return;
    }
    let w = world();
    let db = w.t.path("data").join("sameframe.db");
    let saved = w.t.path("before-withdrawal.db");
    std::fs::copy(&db, &saved).unwrap();
    let out = w.t.ok(&[
        "consent",
        "withdraw",
        &w.a_consent,
        "--scope",
        "all",
        "--reason",
        "patient asked",
    ]);
    let cert = out["certificate"]["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        out["certificate"]["audit_anchor"]["seq"].as_i64().is_some(),
        "{out}"
    );
    // The database goes back to before the withdrawal (a lost WAL, a restored backup): in
    // itself it is consistent, and the consent reads active again.
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(db.with_file_name(format!("sameframe.db{ext}")));
    }
    std::fs::copy(&saved, &db).unwrap();
    assert_eq!(
        w.t.ok(&["consent", "show", &w.a_consent])["scopes"][1]["status"],
        "active"
    );
    detected(&w.t, "withdrawal lost", "lost committed history");
    let _ = cert;
}
