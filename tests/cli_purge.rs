//! Consent withdrawal, purge, deletion certificates, encryption at rest and crash safety, through
//! the real binary.

#![allow(clippy::unwrap_used)]

mod util;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::TestStore;
use util::images;

/// Every 64-byte window of `data`.
fn windows64(data: &[u8], set: &mut HashSet<Vec<u8>>) {
    for w in data.windows(64) {
        set.insert(w.to_vec());
    }
}

/// Files under `root` containing any 64-byte run from `runs`.
fn files_with_runs(files: &[PathBuf], runs: &HashSet<Vec<u8>>) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| {
            let bytes = std::fs::read(f).unwrap_or_default();
            bytes.windows(64).any(|w| runs.contains(w))
        })
        .cloned()
        .collect()
}

fn open_lib(s: &TestStore) -> sameframe::store::Store {
    s.open_lib()
}

struct Patient {
    consent: String,
    originals: Vec<(String, String, Vec<u8>)>, // capture id, sha, bytes
}

fn patient_with_photos(s: &TestStore, reference: &str, scopes: &str, n: u64, seed: u64) -> Patient {
    s.ok(&["patient", "add", "--ref", reference]);
    let doc = s.write(
        &format!("{reference}-consent.pdf"),
        format!("%PDF-1.4 consent form of {reference} {seed}")
            .repeat(20)
            .as_bytes(),
    );
    let c = s.ok(&[
        "consent",
        "grant",
        "--patient",
        reference,
        "--scope",
        scopes,
        "--signed-by",
        reference,
        "--signed-on",
        "2026-01-05",
        "--document",
        doc.to_str().unwrap(),
    ]);
    let consent = c["consent_id"].as_str().unwrap().to_string();
    let mut originals = Vec::new();
    for i in 0..n {
        let bytes = if i % 2 == 0 {
            images::jpeg(240, 180, seed + i)
        } else {
            images::png(160, 120, seed + i)
        };
        let f = s.write(&format!("{reference}-{i}.img"), &bytes);
        let view = [
            "frontal",
            "oblique_left_45",
            "oblique_right_45",
            "lateral_left_90",
        ][(i % 4) as usize];
        let out = s.ok(&[
            "capture",
            "import",
            f.to_str().unwrap(),
            "--patient",
            reference,
            "--consent",
            &consent,
            "--area",
            "face",
            "--view",
            view,
            // With their previews and fingerprints: what a purge must remove.
            "--derive-now",
        ]);
        originals.push((
            out["capture_id"].as_str().unwrap().to_string(),
            out["sha256"].as_str().unwrap().to_string(),
            bytes,
        ));
    }
    Patient { consent, originals }
}

fn wrapped_key(s: &TestStore, consent: &str) -> Option<Vec<u8>> {
    s.sql_one(&format!(
        "SELECT wrapped FROM data_key WHERE consent_id = '{consent}'"
    ))
    .map(|h| sameframe::ids::unhex(&h).unwrap())
}

/// Every stored byte a purge must have cleaned: the data directory's files, and on the
/// shared backend every object in the store's bucket prefix.
fn stored(s: &TestStore) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = s
        .files()
        .into_iter()
        .map(|f| {
            (
                f.display().to_string(),
                std::fs::read(&f).unwrap_or_default(),
            )
        })
        .collect();
    if s.is_shared() {
        out.extend(s.objects());
    }
    out
}

#[test]
fn withdraw_all_with_purge_leaves_nothing_readable() {
    let s = TestStore::new();
    let p = patient_with_photos(&s, "P1", "clinical,teaching,publication", 3, 10);
    let keep = patient_with_photos(&s, "P2", "clinical", 1, 50);
    let (cap0, _, bytes0) = &p.originals[0];
    // One export inside the data directory, one outside.
    let inside = s.data.join("exports").join("for-slides.jpg");
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    s.ok(&[
        "capture",
        "export",
        cap0,
        "--out",
        inside.to_str().unwrap(),
        "--purpose",
        "teaching",
    ]);
    let outside = s.path("outside.jpg");
    s.ok(&[
        "capture",
        "export",
        cap0,
        "--out",
        outside.to_str().unwrap(),
    ]);
    assert_eq!(&std::fs::read(&inside).unwrap(), bytes0);

    // A face found in one of the photos, cached by `analyze pose` (named by the photo's hash).
    let photo0 = s.write("baseline-copy.img", bytes0);
    s.ok(&[
        "analyze",
        "pose",
        "--baseline",
        photo0.to_str().unwrap(),
        "--frame",
        photo0.to_str().unwrap(),
    ]);
    let faces = s.data.join("cache").join("models").join("faces");
    let cached_faces = |sha: &str| {
        std::fs::read_dir(&faces)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(sha))
                    .count()
            })
            .unwrap_or(0)
    };
    let sha0 = &p.originals[0].1;
    assert_eq!(cached_faces(sha0), 2, "the face was not cached");

    let key_before = wrapped_key(&s, &p.consent).unwrap();
    assert!(key_before.len() >= 32);
    // A backup of the sealed originals as they are stored.
    let backup: Vec<(String, Vec<u8>)> = p
        .originals
        .iter()
        .map(|(_, sha, _)| (sha.clone(), s.blob_raw(sha).unwrap()))
        .collect();

    let out = s.ok(&[
        "consent",
        "withdraw",
        &p.consent,
        "--scope",
        "all",
        "--reason",
        "patient request by email",
        "--purge-clinical-record",
        "--confirm",
    ]);
    assert_eq!(out["resumed"], false);
    assert_eq!(cached_faces(sha0), 0, "the cached face outlived the purge");
    let scopes: HashSet<_> = out["scopes_withdrawn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        HashSet::from(["clinical", "teaching", "publication"])
    );

    // The certificate lists exactly the purged originals and document, by hash.
    let cert = &out["certificate"];
    let purged: HashSet<String> = cert["purged"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "original" || i["kind"] == "document")
        .map(|i| i["sha256"].as_str().unwrap().to_string())
        .collect();
    let mut expected: HashSet<String> = p.originals.iter().map(|(_, h, _)| h.clone()).collect();
    let consent_before = s.ok(&["consent", "show", &p.consent]);
    assert!(
        consent_before["document_sha256"].is_null(),
        "the document was purged"
    );
    let doc_tomb = s
        .sql_one(&format!(
            "SELECT sha256 FROM tombstone WHERE kind = 'document' AND consent_id = '{}'",
            p.consent
        ))
        .unwrap();
    expected.insert(doc_tomb);
    assert_eq!(purged, expected);
    assert!(
        cert["purged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "data_key")
    );
    assert_eq!(
        cert["outside_copies"][0]["path"].as_str().unwrap(),
        std::path::absolute(&outside).unwrap().to_str().unwrap()
    );
    assert!(
        outside.exists(),
        "copies outside the store are listed, not touched"
    );
    assert!(
        !inside.exists(),
        "exports inside the data directory are purged"
    );
    let json_cert: Value =
        serde_json::from_slice(&std::fs::read(out["certificate_json"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(json_cert["certificate_id"], cert["certificate_id"]);
    let text = std::fs::read_to_string(out["certificate_text"].as_str().unwrap()).unwrap();
    for h in &expected {
        assert!(text.contains(h.as_str()));
    }
    // The certificate names the patient by clinic reference on the clinic's own disk; a shared
    // store's servers hold opaque IDs only.
    assert_eq!(out["patient_ref"], "P1");
    if s.is_shared() {
        let leaked: Vec<String> = s
            .objects()
            .into_iter()
            .filter(|(_, b)| {
                b.windows(4).any(|w| w == b"\"P1\"") || b.windows(3).any(|w| w == b"P1,")
            })
            .map(|(l, _)| l)
            .collect();
        assert!(
            leaked.is_empty(),
            "the reference reached the bucket: {leaked:?}"
        );
    } else {
        assert!(text.contains("P1"), "{text}");
        assert_eq!(json_cert["patient_ref"], "P1");
    }

    // No plaintext of any purged image anywhere in the store: the data directory, and the
    // bucket of a shared store.
    let mut runs = HashSet::new();
    for (_, _, b) in &p.originals {
        windows64(b, &mut runs);
    }
    let all = stored(&s);
    for (what, bytes) in &all {
        assert!(
            !bytes.windows(64).any(|w| runs.contains(w)),
            "plaintext of a purged image remains in {what}"
        );
        // No decodable image (preview or otherwise) in the store.
        assert!(
            image::load_from_memory(bytes).is_err(),
            "{what} decodes as an image"
        );
    }
    // The wrapped data key is gone: from the row, and from every file of an embedded store.
    assert_eq!(wrapped_key(&s, &p.consent), None);
    if !s.is_shared() {
        let key_runs: HashSet<Vec<u8>> = key_before.windows(32).map(<[u8]>::to_vec).collect();
        for (what, bytes) in &all {
            assert!(
                !bytes.windows(32).any(|w| key_runs.contains(w)),
                "wrapped data key still in {what}"
            );
        }
    }

    // The backup taken before can no longer be decrypted with the current keys.
    let store = open_lib(&s);
    let keys: Vec<String> = s
        .sql("SELECT id FROM data_key")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    for (sha, file) in &backup {
        let file = file.clone();
        let kid = sameframe::store::crypto::sealed_key_id(&file).expect("sealed");
        let kid_hex = sameframe::ids::hex(&kid);
        let err = store.data_key(&kid_hex).unwrap_err();
        assert!(err.to_string().contains("destroyed"), "{err}");
        let addr: [u8; 32] = sameframe::ids::unhex(sha).unwrap().try_into().unwrap();
        for k in &keys {
            if let Ok(key) = store.data_key(k) {
                assert!(sameframe::store::crypto::open_blob(file.clone(), &addr, &key).is_err());
            }
        }
    }
    drop(store);

    // The store is consistent; the other patient is untouched.
    s.ok(&["verify"]);
    s.ok(&["audit", "verify"]);
    assert_eq!(
        s.ok(&["capture", "list", "--patient", "P1"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let other = s.ok(&[
        "capture",
        "export",
        &keep.originals[0].0,
        "--out",
        s.path("p2.img").to_str().unwrap(),
    ]);
    assert_eq!(
        other["bytes"].as_u64().unwrap() as usize,
        keep.originals[0].2.len()
    );
    let log = s.ok(&["audit", "log", "--subject", &p.consent]);
    let actions: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.ends_with(&["consent.withdraw", "purge.commit", "purge.complete"]),
        "{actions:?}"
    );
    let complete = log.as_array().unwrap().last().unwrap();
    assert_eq!(
        complete["details"]["certificate_sha256"],
        out["certificate_sha256"]
    );

    // Already withdrawn: a clear error naming the certificate; nothing changes.
    let n = s.ok(&["audit", "log"]).as_array().unwrap().len();
    s.fails(
        &[
            "consent", "withdraw", &p.consent, "--scope", "all", "--reason", "again",
        ],
        &[&p.consent, "already withdrawn", "certificate"],
    );
    assert_eq!(s.ok(&["audit", "log"]).as_array().unwrap().len(), n);
}

#[test]
fn publication_withdrawal_keeps_the_clinical_record() {
    let s = TestStore::new();
    let p = patient_with_photos(&s, "P1", "clinical,publication", 2, 70);
    let cap = &p.originals[0].0;
    let pub_out = s.path("web.jpg");
    s.ok(&[
        "capture",
        "export",
        cap,
        "--out",
        pub_out.to_str().unwrap(),
        "--purpose",
        "publication",
    ]);
    let out = s.ok(&[
        "consent",
        "withdraw",
        &p.consent,
        "--scope",
        "publication",
        "--reason",
        "changed mind",
    ]);
    assert_eq!(out["scopes_withdrawn"], serde_json::json!(["publication"]));
    assert_eq!(out["certificate"]["purged"].as_array().unwrap().len(), 0);
    assert_eq!(
        out["certificate"]["outside_copies"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Publication exports are refused now; clinical use continues.
    s.fails(
        &[
            "capture",
            "export",
            cap,
            "--out",
            s.path("web2.jpg").to_str().unwrap(),
            "--purpose",
            "publication",
        ],
        &[&p.consent, "publication", "withdrawn"],
    );
    s.ok(&[
        "capture",
        "export",
        cap,
        "--out",
        s.path("chart.jpg").to_str().unwrap(),
    ]);
    let shown = s.ok(&["consent", "show", &p.consent]);
    let publication = shown["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == "publication")
        .unwrap()
        .clone();
    assert_eq!(publication["status"], "withdrawn");
    assert_eq!(publication["withdrawn_by"], "test-nurse");
    assert_eq!(publication["withdrawal_reason"], "changed mind");
    // New clinical captures are still allowed under this consent.
    let f = s.write("new.jpg", &images::jpeg(100, 80, 999));
    s.import(&f, "P1", &p.consent, &[]);
    s.ok(&["verify"]);
    s.ok(&["audit", "verify"]);

    s.fails(
        &[
            "consent",
            "withdraw",
            &p.consent,
            "--scope",
            "publication",
            "--reason",
            "again",
        ],
        &["already withdrawn"],
    );
    s.fails(
        &[
            "consent", "withdraw", &p.consent, "--scope", "teaching", "--reason", "x",
        ],
        &["does not include the teaching scope"],
    );
    s.fails(
        &[
            "consent",
            "withdraw",
            "con_ffffffffffffffff",
            "--scope",
            "all",
            "--reason",
            "x",
        ],
        &["unknown consent con_ffffffffffffffff"],
    );
    s.fails(
        &[
            "consent",
            "withdraw",
            &p.consent,
            "--scope",
            "publication",
            "--reason",
            "x",
            "--purge-clinical-record",
        ],
        &["only applies to --scope all"],
    );
}

#[test]
fn retention_keeps_originals_until_released() {
    let s = TestStore::new();
    let p = patient_with_photos(&s, "P1", "clinical,teaching", 2, 90);
    s.fails(
        &[
            "consent",
            "withdraw",
            &p.consent,
            "--scope",
            "all",
            "--reason",
            "x",
            "--purge-clinical-record",
        ],
        &["--confirm"],
    );
    assert_eq!(
        s.ok(&["consent", "show", &p.consent])["scopes"][0]["status"],
        "active",
        "nothing changed"
    );

    let out = s.ok(&[
        "consent",
        "withdraw",
        &p.consent,
        "--scope",
        "all",
        "--reason",
        "moved abroad",
    ]);
    let cert = &out["certificate"];
    assert_eq!(cert["originals_purged"], false);
    let retained: HashSet<_> = cert["retained"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "original")
        .map(|i| i["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        retained,
        p.originals
            .iter()
            .map(|o| o.1.clone())
            .collect::<HashSet<_>>()
    );
    assert!(
        cert["purged"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] == "thumbnail" || i["kind"] == "fingerprint")
    );
    // Fingerprints are derived image data: purged even when the originals are kept.
    assert!(
        cert["purged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "fingerprint")
    );
    for (cid, _, _) in &p.originals {
        let n = s.sql_one(&format!(
            "SELECT COUNT(*) FROM fingerprint WHERE capture_id = '{cid}'"
        ));
        assert_eq!(n.as_deref(), Some("0"), "fingerprint of {cid} kept");
    }
    // Purged derived data is not pending: no backfill or review makes it again.
    assert_eq!(s.ok(&["status"])["derived_pending"], 0);
    assert_eq!(s.ok(&["fingerprint", "backfill"])["computed"], 0);
    assert!(
        s.open_lib()
            .blobs()
            .list(sameframe::store::BlobKind::Thumb)
            .unwrap()
            .is_empty(),
        "thumbnails purged"
    );
    // The clinical record is readable (and verifiable) but no longer usable for new captures.
    let c = s.ok(&["capture", "show", &p.originals[0].0]);
    assert_eq!(c["sha256"].as_str().unwrap(), p.originals[0].1);
    s.ok(&["verify"]);
    let f = s.write("late.jpg", &images::jpeg(64, 64, 5));
    s.fails(
        &[
            "capture",
            "import",
            f.to_str().unwrap(),
            "--patient",
            "P1",
            "--consent",
            &p.consent,
            "--area",
            "face",
            "--view",
            "frontal",
        ],
        &["withdrawn"],
    );
    // Releasing the retained record later.
    let out = s.ok(&[
        "consent",
        "withdraw",
        &p.consent,
        "--scope",
        "all",
        "--reason",
        "retention period over",
        "--purge-clinical-record",
        "--confirm",
    ]);
    assert_eq!(out["certificate"]["originals_purged"], true);
    assert_eq!(out["certificate"]["retention_overridden"], true);
    assert_eq!(
        s.ok(&["capture", "list", "--patient", "P1"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    s.ok(&["verify"]);

    // With retention switched off, --scope all purges originals by itself.
    let q = patient_with_photos(&s, "P3", "clinical", 1, 120);
    s.ok(&["config", "set", "retention.keep_clinical_record", "false"]);
    let out = s.ok(&[
        "consent", "withdraw", &q.consent, "--scope", "all", "--reason", "request",
    ]);
    assert_eq!(out["certificate"]["originals_purged"], true);
    assert_eq!(out["certificate"]["retention_overridden"], false);
    s.fails(
        &["config", "set", "retention.keep_clinical_record", "maybe"],
        &["true or false"],
    );
}

#[test]
fn wrong_passphrase_or_missing_key_changes_nothing() {
    let s = TestStore::new();
    let p = patient_with_photos(&s, "P1", "clinical", 1, 3);
    let audit_len = s.ok(&["audit", "log"]).as_array().unwrap().len();
    let moved = s.path("elsewhere.key");
    std::fs::rename(&s.key, &moved).unwrap();
    s.fails(
        &[
            "consent",
            "withdraw",
            &p.consent,
            "--scope",
            "all",
            "--reason",
            "x",
            "--purge-clinical-record",
            "--confirm",
        ],
        &["key file", "not found"],
    );
    s.fails(
        &[
            "capture",
            "export",
            &p.originals[0].0,
            "--out",
            s.path("x").to_str().unwrap(),
        ],
        &["not found"],
    );
    util::write_private(&s.key, "00".repeat(32));
    s.fails(&["verify"], &["does not belong to the store"]);
    std::fs::rename(&moved, &s.key).unwrap();
    assert_eq!(
        s.ok(&["consent", "show", &p.consent])["scopes"][0]["status"],
        "active"
    );
    assert_eq!(s.ok(&["audit", "log"]).as_array().unwrap().len(), audit_len);
    s.ok(&["verify"]);

    // A passphrase store.
    let t = TestStore::uninitialised();
    let run = |args: &[&str], pass: &str| t.command_with_passphrase(args, pass).output().unwrap();
    assert!(
        run(
            &["init", "--kdf-memory-mib", "19", "--kdf-passes", "2"],
            "a long passphrase"
        )
        .status
        .success()
    );
    // Every command proves the key before it reads or changes anything.
    let none = run(&["patient", "add", "--ref", "Q"], "");
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("SAMEFRAME_PASSPHRASE"));
    let wrong = run(&["patient", "add", "--ref", "Q"], "not the passphrase");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    assert!(
        run(&["patient", "add", "--ref", "Q"], "a long passphrase")
            .status
            .success()
    );
    let c: Value = serde_json::from_slice(
        &run(
            &[
                "consent",
                "grant",
                "--patient",
                "Q",
                "--scope",
                "clinical",
                "--signed-by",
                "Q",
                "--signed-on",
                "2026-01-01",
            ],
            "a long passphrase",
        )
        .stdout,
    )
    .unwrap();
    let cid = c["consent_id"].as_str().unwrap();
    let f = t.write("q.jpg", &images::jpeg(64, 64, 1));
    assert!(
        run(
            &[
                "capture",
                "import",
                f.to_str().unwrap(),
                "--patient",
                "Q",
                "--consent",
                cid,
                "--area",
                "face",
                "--view",
                "frontal"
            ],
            "a long passphrase"
        )
        .status
        .success()
    );
    let bad = run(
        &[
            "consent",
            "withdraw",
            cid,
            "--scope",
            "all",
            "--reason",
            "x",
            "--purge-clinical-record",
            "--confirm",
        ],
        "not the passphrase",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("wrong passphrase"));
    let show: Value =
        serde_json::from_slice(&run(&["consent", "show", cid], "a long passphrase").stdout)
            .unwrap();
    assert_eq!(show["scopes"][0]["status"], "active");
    let none = run(&["verify"], "");
    assert!(String::from_utf8_lossy(&none.stderr).contains("SAMEFRAME_PASSPHRASE"));
}

/// SIGKILL at random points of a purge, 22 times; after each, every item is fully present or
/// fully purged, and a re-run completes it.
#[test]
fn sigkill_during_purge_then_rerun_completes() {
    let s = TestStore::new();
    let patients: Vec<Patient> = (0..22)
        .map(|i| {
            patient_with_photos(
                &s,
                &format!("K{i}"),
                "clinical,publication",
                4,
                1000 + i * 10,
            )
        })
        .collect();
    for p in &patients {
        let out = s
            .data
            .join("exports")
            .join(format!("{}.img", p.originals[0].0));
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        s.ok(&[
            "capture",
            "export",
            &p.originals[0].0,
            "--out",
            out.to_str().unwrap(),
        ]);
    }
    let withdraw = |c: &str| -> Vec<String> {
        [
            "consent",
            "withdraw",
            c,
            "--scope",
            "all",
            "--reason",
            "crash test",
            "--purge-clinical-record",
            "--confirm",
        ]
        .map(str::to_string)
        .to_vec()
    };
    // Measure one full purge to spread the kill points over it.
    let t0 = Instant::now();
    let w = withdraw(&patients[0].consent);
    s.ok(&w.iter().map(String::as_str).collect::<Vec<_>>());
    let full = t0.elapsed();
    let mut rng = images::Rng(7);
    let mut interrupted = 0;
    let mut resumed = 0;
    for (k, p) in patients[1..].iter().enumerate() {
        let args = withdraw(&p.consent);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = s
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(
            full.mul_f64(rng.unit() * 1.1)
                .max(Duration::from_micros(100)),
        );
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            interrupted += 1;
        }
        let _ = child.wait();

        // Right after the kill: each original is fully present or fully purged.
        {
            let store = open_lib(&s);
            for (cid, sha, bytes) in &p.originals {
                let row = store.capture(cid).ok();
                match row {
                    Some(_) => assert_eq!(
                        &store.read_blob(sha).unwrap(),
                        bytes,
                        "a present capture must read back"
                    ),
                    None => {
                        let file = std::path::PathBuf::from(
                            store
                                .blobs()
                                .location_of(&sameframe::store::BlobKey::Blob(sha.clone())),
                        );
                        assert!(
                            !file.exists() || store.read_blob(sha).is_err(),
                            "a purged capture is still readable"
                        );
                    }
                }
            }
        }
        // An interrupted withdrawal is not silent: status lists it and verify fails.
        let pending = s.ok(&["status"])["unfinished_withdrawals"]
            .as_array()
            .unwrap()
            .len();
        if pending > 0 {
            s.fails(&["verify"], &["unfinished withdrawal"]);
        }
        // Finish it: every other time with `consent resume` (when a job is pending), else by
        // running it again (which completes, or says it is already done).
        let again = if k % 2 == 1 && pending > 0 {
            vec!["consent", "resume"]
        } else {
            args.clone()
        };
        let (c, out) = s.run(&again);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            // `consent resume` lists what it finished.
            let v = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
            if v["resumed"] == true {
                resumed += 1;
            }
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("already withdrawn"), "{c:?}: {err}");
        }
        assert_eq!(
            s.ok(&[
                "capture",
                "list",
                "--patient",
                &format!(
                    "K{}",
                    patients
                        .iter()
                        .position(|q| q.consent == p.consent)
                        .unwrap()
                )
            ])
            .as_array()
            .unwrap()
            .len(),
            0
        );
        for (_, sha, _) in &p.originals {
            assert!(s.blob_raw(sha).is_none(), "{sha} is still stored");
        }
        let row = s.sql(&format!(
            "SELECT completed_at, certificate_sha256 FROM purge_job WHERE consent_id = '{}'",
            p.consent
        ));
        let (done, cert) = (row[0][0].clone(), row[0][1].clone());
        assert!(
            done.is_some() && cert.is_some(),
            "the job completed with a certificate"
        );
    }
    assert!(
        interrupted >= 8,
        "only {interrupted} purges were interrupted"
    );
    eprintln!(
        "{interrupted} of {} purges interrupted, {resumed} resumed mid-job",
        patients.len() - 1
    );
    assert!(
        resumed >= 3,
        "only {resumed} kills landed inside a job; the test does not reach the interesting points"
    );
    let (c, out) = s.run(&["verify"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r["corrupt"].as_array().unwrap().is_empty() && r["missing"].as_array().unwrap().is_empty(),
        "{c:?} {r}"
    );
    s.ok(&["gc", "--min-age", "0"]);
    s.ok(&["verify"]);
    s.ok(&["audit", "verify"]);
    // Each purge is certified exactly once in the audit chain.
    let log = s.ok(&["audit", "log", "--action", "purge.complete"]);
    assert_eq!(log.as_array().unwrap().len(), patients.len());
}

/// A plaintext store is migrated with one command, crash-safely. (Embedded only: a shared
/// store is encrypted from `init`, since its servers may only hold sealed data.)
#[test]
fn plaintext_store_migrates_to_encryption_crash_safely() {
    let s = TestStore::on(util::Backend::Embedded);
    let plain = |args: &[&str]| -> Value {
        let mut c = std::process::Command::new(util::bin());
        c.args(args)
            .args(["--json", "--data-dir"])
            .arg(&s.data)
            .env_remove("SAMEFRAME_KEY_FILE")
            .env_remove("SAMEFRAME_PASSPHRASE")
            .stdin(std::process::Stdio::null());
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    plain(&["init", "--no-encryption"]);
    plain(&["patient", "add", "--ref", "P"]);
    let c = plain(&[
        "consent",
        "grant",
        "--patient",
        "P",
        "--scope",
        "clinical",
        "--signed-by",
        "P",
        "--signed-on",
        "2026-01-01",
    ]);
    let cid = c["consent_id"].as_str().unwrap().to_string();
    let mut originals = Vec::new();
    for i in 0..12u64 {
        let bytes = images::jpeg(400, 300, 500 + i);
        let f = s.write(&format!("{i}.jpg"), &bytes);
        let out = plain(&[
            "capture",
            "import",
            f.to_str().unwrap(),
            "--patient",
            "P",
            "--consent",
            &cid,
            "--area",
            "scalp",
            "--view",
            "scalp_vertex",
            // With their previews and fingerprints: what the migration must seal.
            "--derive-now",
        ]);
        originals.push((out["sha256"].as_str().unwrap().to_string(), bytes));
    }
    let blob = |h: &str| s.data.join("blobs").join(&h[..2]).join(&h[2..]);
    assert_eq!(
        std::fs::read(blob(&originals[0].0)).unwrap(),
        originals[0].1,
        "plaintext before"
    );

    let mut rng = images::Rng(3);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut child = s
            .command(&["encrypt"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis((rng.unit() * 60.0) as u64));
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap();
        }
        let status = child.wait().unwrap();
        // Whatever the interruption, every capture reads back intact.
        let v = s.run(&["verify"]).1;
        let r: Value = serde_json::from_slice(&v.stdout).unwrap();
        assert!(
            r["corrupt"].as_array().unwrap().is_empty()
                && r["missing"].as_array().unwrap().is_empty(),
            "{r}"
        );
        if (!killed && status.success()) || attempts > 30 {
            break;
        }
    }
    let out = s.ok(&["encrypt"]);
    assert_eq!(out["sealed"], 0, "already complete");
    // A kill mid-write may leave a temporary file (an orphan, never a row without its blob);
    // gc removes it, as after an interrupted import.
    let gc = s.ok(&["gc", "--min-age", "0"]);
    for o in gc["removed"].as_array().unwrap() {
        let p = o["location"].as_str().unwrap();
        assert!(
            p.contains("blobs") || p.contains("cache"),
            "unexpected orphan {o}"
        );
    }
    let st = s.ok(&["status"]);
    assert_eq!(st["encryption"]["mode"], "keyfile");
    assert_eq!(st["encryption"]["migration_pending"], false);
    let r = s.ok(&["verify"]);
    assert!(r["unsealed"].as_array().unwrap().is_empty());
    let mut runs = HashSet::new();
    for (sha, bytes) in &originals {
        assert!(
            std::fs::read(blob(sha))
                .unwrap()
                .starts_with(sameframe::store::crypto::MAGIC)
        );
        windows64(bytes, &mut runs);
    }
    let leftovers: Vec<_> = files_with_runs(&s.files(), &runs);
    assert!(
        leftovers.is_empty(),
        "plaintext left after migration: {leftovers:?}"
    );
    // The reduced previews stored with fingerprints are sealed too, and still read.
    let db = rusqlite::Connection::open(s.data.join("sameframe.db")).unwrap();
    let smalls: Vec<Option<Vec<u8>>> = db
        .prepare("SELECT small FROM fingerprint")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(smalls.len(), originals.len());
    for small in &smalls {
        let small = small.as_deref().unwrap_or_default();
        assert!(
            small.starts_with(sameframe::store::crypto::MAGIC),
            "unsealed preview"
        );
    }
    drop(db);
    let caps = s.ok(&["capture", "list"]);
    for (i, c) in caps.as_array().unwrap().iter().enumerate() {
        let out = s.path(&format!("back{i}.jpg"));
        s.ok(&[
            "capture",
            "export",
            c["capture_id"].as_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let sha = sameframe::ids::sha256_hex(&std::fs::read(&out).unwrap());
        assert_eq!(sha, c["sha256"].as_str().unwrap());
        // Its resealed reduced preview still verifies a published copy.
        if i == 0 {
            let r = s.ok(&["review", out.to_str().unwrap()]);
            assert_eq!(
                r["images"][0]["sources"][0]["capture_id"], c["capture_id"],
                "{r}"
            );
        }
    }
}

#[test]
fn a_moved_store_purges_its_own_exports_and_nothing_outside_it() {
    let s = TestStore::new();
    let consent = s.patient_with_consent("MOVE-1", "clinical,teaching");
    let photo = s.write("m.jpg", &images::jpeg(320, 240, 41));
    let cap = s.import(&photo, "MOVE-1", &consent, &[]);
    let id = cap["capture_id"].as_str().unwrap();
    let inside = s.data.join("exports").join("lecture.jpg");
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    s.ok(&[
        "capture",
        "export",
        id,
        "--out",
        inside.to_str().unwrap(),
        "--purpose",
        "teaching",
    ]);
    // The store is restored elsewhere (a new disk, a restore from backup).
    let moved = TestStore::uninitialised();
    util::copy_dir(&s.data, &moved.data);
    std::fs::copy(&s.key, &moved.key).unwrap();
    let out = moved.ok(&[
        "consent",
        "withdraw",
        &consent,
        "--scope",
        "teaching",
        "--reason",
        "patient request",
    ]);
    let moved_copy = moved.data.join("exports").join("lecture.jpg");
    assert!(
        !moved_copy.exists(),
        "the moved store's export must be purged: {out}"
    );
    assert!(
        inside.exists(),
        "a file outside the data directory in use must never be deleted"
    );
}

/// Captures imported without their derived data, withdrawn with retention: the thumbnails a
/// screen made meanwhile are purged and listed, the others are marked, and no backfill or
/// review makes any of them again.
#[test]
fn deferred_derived_data_is_purged_and_never_made_again() {
    let s = TestStore::new();
    let consent = s.patient_with_consent("D1", "clinical,publication");
    let ids: Vec<String> = (0..3u64)
        .map(|i| {
            let f = s.write(&format!("d{i}.jpg"), &images::jpeg(480, 360, 300 + i));
            let out = s.import(&f, "D1", &consent, &[]);
            assert_eq!(out["derived_pending"], true);
            out["capture_id"].as_str().unwrap().to_string()
        })
        .collect();
    // Comparing two of them makes their thumbnails on the spot.
    s.ok(&["pair", &ids[0], &ids[1]]);
    let thumbs = || {
        s.open_lib()
            .blobs()
            .list(sameframe::store::BlobKind::Thumb)
            .unwrap()
            .len()
    };
    assert_eq!(thumbs(), 2);
    let out = s.ok(&[
        "consent",
        "withdraw",
        &consent,
        "--scope",
        "all",
        "--reason",
        "patient request",
    ]);
    let purged = out["certificate"]["purged"].as_array().unwrap();
    assert_eq!(
        purged.iter().filter(|i| i["kind"] == "thumbnail").count(),
        2,
        "{out}"
    );
    assert_eq!(thumbs(), 0);
    assert_eq!(s.ok(&["status"])["derived_pending"], 0);
    assert_eq!(s.ok(&["fingerprint", "backfill"])["computed"], 0);
    s.ok(&["audit", "verify"]);
}
