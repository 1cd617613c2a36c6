//! A store written by an earlier sameframe (`fixtures/stores/v7`, schema 7) opens unchanged:
//! its schema is migrated, its patient text sealed on first open with the key, and everything
//! in it reads, verifies and keeps working.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

use util::{Backend, TestStore};

/// A copy of the old store in a temp folder.
fn old_store() -> TestStore {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stores/v7");
    let s = TestStore::on(Backend::Embedded);
    util::copy_dir(&fixture.join("data"), &s.data);
    std::fs::copy(fixture.join("store.key"), &s.key).unwrap();
    // A checkout does not keep the key file's owner-only mode.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    s
}

#[test]
fn an_old_store_opens_unchanged_and_is_sealed_on_first_open() {
    let s = old_store();
    let st = s.ok(&["status"]);
    assert_eq!(st["store_id"], "store_fd7be5aab2b5381c");
    assert_eq!(st["schema_version"], 9);
    assert_eq!(st["counts"]["patients"], 2);
    assert_eq!(st["counts"]["consents"], 2);
    assert_eq!(st["counts"]["visits"], 1);
    assert_eq!(st["counts"]["captures"], 3);
    assert_eq!(st["settings"]["retention.keep_clinical_record"], "true");

    // Patients, by reference in any case, with their names.
    let p = s.ok(&["patient", "show", "p-old-1"]);
    assert_eq!(p["ref"], "P-OLD-1", "{p}");
    assert_eq!(p["display_name"], "Ada Legacy");
    // Consents with their scopes and withdrawals, and the signed form.
    let c1 = &s.ok(&["consent", "list", "--patient", "P-OLD-1"])[0];
    assert_eq!(c1["signed_by"], "Ada Legacy");
    assert_eq!(c1["scopes"].as_array().unwrap().len(), 3);
    let c2 = &s.ok(&["consent", "list", "--patient", "P-OLD-2"])[0];
    let publication = c2["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["scope"] == "publication")
        .unwrap();
    assert_eq!(publication["status"], "withdrawn");
    assert_eq!(
        publication["withdrawal_reason"],
        "no longer wants to be online"
    );
    // Captures with their confounders, notes, visit and series.
    let caps = s.ok(&["capture", "list", "--patient", "P-OLD-1"]);
    let caps = caps.as_array().unwrap();
    assert_eq!(caps.len(), 2);
    let first = s.ok(&["capture", "show", caps[0]["capture_id"].as_str().unwrap()]);
    assert_eq!(first["note"], "first session, Ada's cheek");
    assert_eq!(first["confounders"][0]["key"], "makeup_present");
    assert_eq!(first["confounders"][0]["text"], "light foundation");
    assert!(first["visit_id"].is_string());
    assert_eq!(caps[1]["baseline_id"], caps[0]["capture_id"]);
    // Publications with their sources, for take-downs.
    let pubs = s.ok(&["publish", "list"]);
    assert_eq!(pubs.as_array().unwrap().len(), 2);
    assert!(pubs[0]["capture_ids"].as_array().unwrap().len() == 1);

    // Everything verifies; the chain is the old chain plus the sealing.
    let v = s.ok(&["verify", "--in-flight", "0"]);
    assert_eq!(v["ok"], 4);
    assert_eq!(v["records_damaged"].as_array().unwrap().len(), 0);
    let chain = s.ok(&["audit", "verify"]);
    assert_eq!(chain["ok"], true);
    let log = s.ok(&["audit", "log"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 17, "{actions:?}");
    assert_eq!(actions[16], "store.records.sealed");

    // The names, references and notes are no longer readable in the database files.
    let mut db = std::fs::read(s.data.join("sameframe.db")).unwrap();
    db.extend(std::fs::read(s.data.join("sameframe.db-wal")).unwrap_or_default());
    for text in [
        "Ada Legacy",
        "Bo Legacy",
        "P-OLD-1",
        "Ada's cheek",
        "light foundation",
    ] {
        assert!(
            !db.windows(text.len()).any(|w| w == text.as_bytes()),
            "{text:?} is still readable in the database"
        );
    }

    // The store keeps working: review traces the recorded publication, a new photo follows the
    // old baseline, a withdrawal purges (the old store's publication export went with its
    // earlier withdrawal).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stores/v7");
    let r = s.ok(&["review", fixture.join("published-b.jpg").to_str().unwrap()]);
    assert_eq!(
        r["images"][0]["sources"][0]["capture_id"], caps[1]["capture_id"],
        "{r}"
    );
    let cid = c1["consent_id"].as_str().unwrap();
    let f = s.write("new.jpg", &util::images::jpeg(320, 240, 5));
    let new = s.import(&f, "P-OLD-1", cid, &[]);
    assert_eq!(new["baseline_id"], caps[0]["capture_id"]);
    let c2id = c2["consent_id"].as_str().unwrap();
    assert!(!s.data.join("exports/teach.jpg").exists());
    let out = s.ok(&[
        "consent",
        "withdraw",
        c2id,
        "--scope",
        "all",
        "--reason",
        "erasure",
        "--purge-clinical-record",
        "--confirm",
    ]);
    assert_eq!(out["certificate"]["originals_purged"], true, "{out}");
    assert!(
        s.ok(&["capture", "list", "--patient", "P-OLD-2"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    s.ok(&["verify", "--in-flight", "0"]);
    s.ok(&["audit", "verify"]);
}

#[test]
fn an_old_store_needs_its_key_to_open() {
    let s = old_store();
    let right = std::fs::read(&s.key).unwrap();
    std::fs::write(&s.key, format!("{}\n", "ab".repeat(32))).unwrap();
    s.fails(&["status"], &["does not belong"]);
    s.fails(&["patient", "show", "P-OLD-1"], &["does not belong"]);
    // With its own key it opens, and is sealed then.
    std::fs::write(&s.key, right).unwrap();
    assert_eq!(s.ok(&["patient", "show", "P-OLD-1"])["ref"], "P-OLD-1");
}
