//! The records core through the real binary: every command, every refusal, verify, gc, the
//! audit chain, and crash safety under SIGKILL.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::TestStore;
use util::images::{self, Exif};

fn capture_count(s: &TestStore) -> usize {
    s.ok(&["capture", "list"]).as_array().unwrap().len()
}

/// Every blob object (and leftover) the store has, by location.
fn blob_files(s: &TestStore) -> Vec<String> {
    let store = s.open_lib();
    store
        .blobs()
        .list(sameframe::store::BlobKind::Blob)
        .unwrap()
        .into_iter()
        .map(|l| l.location)
        .collect()
}

#[test]
fn init_status_and_commands_need_a_store() {
    let s = TestStore::uninitialised();
    s.fails(
        &["patient", "add", "--ref", "P1"],
        &["no sameframe store", "sameframe init"],
    );
    let out = s.ok(&["init"]);
    assert_eq!(out["encryption"]["mode"], "keyfile");
    assert!(s.key.is_file(), "init creates the key file");
    s.fails(&["init"], &["already exists"]);
    let st = s.ok(&["status"]);
    assert_eq!(st["counts"]["patients"], 0);
    assert_eq!(st["settings"]["retention.keep_clinical_record"], "true");
}

#[test]
fn patients_consents_visits() {
    let s = TestStore::new();
    let p = s.ok(&[
        "patient",
        "add",
        "--ref",
        "MRN-001",
        "--name",
        "Ada Example",
    ]);
    assert!(p["patient_id"].as_str().unwrap().starts_with("pat_"));
    assert_eq!(p["ref"], "MRN-001");
    s.fails(
        &["patient", "add", "--ref", "MRN-001"],
        &["MRN-001", "already exists"],
    );
    s.fails(&["patient", "add", "--ref", "  "], &["empty"]);

    let doc = s.write("consent.pdf", b"%PDF-1.4 signed consent form");
    let c = s.ok(&[
        "consent",
        "grant",
        "--patient",
        "MRN-001",
        "--scope",
        "clinical,publication",
        "--signed-by",
        "Ada Example",
        "--signed-on",
        "2026-01-05",
        "--expires",
        "2099-12-31",
        "--document",
        doc.to_str().unwrap(),
    ]);
    let cid = c["consent_id"].as_str().unwrap();
    assert!(cid.starts_with("con_"));
    let scopes: Vec<_> = c["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["clinical", "publication"]);
    assert_eq!(c["document_sha256"].as_str().unwrap().len(), 64);
    let shown = s.ok(&["consent", "show", cid]);
    assert_eq!(shown["expires_on"], "2099-12-31");
    assert_eq!(shown["scopes"][0]["status"], "active");
    let list = s.ok(&["consent", "list", "--patient", "MRN-001"]);
    assert_eq!(list.as_array().unwrap().len(), 1);

    s.fails(
        &[
            "consent",
            "grant",
            "--patient",
            "NOPE",
            "--scope",
            "clinical",
            "--signed-by",
            "x",
            "--signed-on",
            "2026-01-01",
        ],
        &["unknown patient NOPE"],
    );
    s.fails(
        &[
            "consent",
            "grant",
            "--patient",
            "MRN-001",
            "--scope",
            "marketing",
            "--signed-by",
            "x",
            "--signed-on",
            "2026-01-01",
        ],
        &["marketing"],
    );
    s.fails(
        &[
            "consent",
            "grant",
            "--patient",
            "MRN-001",
            "--scope",
            "clinical",
            "--signed-by",
            "x",
            "--signed-on",
            "2026-13-01",
        ],
        &["not a date"],
    );
    s.fails(
        &[
            "consent",
            "grant",
            "--patient",
            "MRN-001",
            "--scope",
            "clinical",
            "--signed-by",
            "x",
            "--signed-on",
            "2026-02-01",
            "--expires",
            "2026-01-01",
        ],
        &["before the signing date"],
    );
    s.fails(
        &["consent", "show", "con_0000000000000000"],
        &["unknown consent con_0000000000000000"],
    );

    let v = s.ok(&[
        "visit",
        "add",
        "--patient",
        "MRN-001",
        "--area",
        "scalp",
        "--date",
        "2026-03-01",
        "--product",
        "Dermaheal HL",
        "--lot",
        "L2231",
        "--lot-expiry",
        "2027-05-01",
        "--technique",
        "nappage 4 mm",
        "--clinician",
        "Dr Who",
    ]);
    let vid = v["visit_id"].as_str().unwrap();
    assert_eq!(v["area"], "scalp");
    assert_eq!(v["warnings"].as_array().unwrap().len(), 0);
    let shown = s.ok(&["visit", "show", vid]);
    assert_eq!(shown["lot"], "L2231");
    // An expired lot is refused, with nothing recorded; with a reason it is recorded.
    let expired = [
        "visit",
        "add",
        "--patient",
        "MRN-001",
        "--area",
        "face",
        "--date",
        "2026-03-01",
        "--product",
        "X",
        "--lot",
        "L1",
        "--lot-expiry",
        "2026-01-01",
    ];
    s.fails(
        &expired,
        &["L1", "expired on 2026-01-01", "--expired-lot-reason"],
    );
    assert_eq!(
        s.ok(&["patient", "show", "MRN-001"])["visits"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let mut with_reason = expired.to_vec();
    with_reason.extend(["--expired-lot-reason", "recall list checked, lot cleared"]);
    let v2 = s.ok(&with_reason);
    assert_eq!(
        s.ok(&["visit", "product", "list", v2["visit_id"].as_str().unwrap()])[0]["product"]["expired_override"],
        "recall list checked, lot cleared"
    );
    s.fails(
        &["visit", "add", "--patient", "MRN-001", "--area", "elbow"],
        &["elbow"],
    );

    let show = s.ok(&["patient", "show", "MRN-001"]);
    assert_eq!(show["consents"].as_array().unwrap().len(), 1);
    assert_eq!(show["visits"].as_array().unwrap().len(), 2);
    let list = s.ok(&["patient", "list", "--search", "mrn"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn import_show_list_export_and_baselines() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("P1", "clinical");
    let v = s.ok(&["visit", "add", "--patient", "P1", "--area", "face"]);
    let vid = v["visit_id"].as_str().unwrap();

    let f1 = s.write(
        "before.jpg",
        &images::jpeg_with_exif(320, 240, 1, &Exif::default()),
    );
    let a = s.import(
        &f1,
        "P1",
        &cid,
        &[
            "--visit",
            vid,
            "--confounder",
            "makeup_present=light foundation",
            "--confounder",
            "recent_sun_exposure",
            "--note",
            "left cheek",
        ],
    );
    assert_eq!(a["role"], "baseline");
    assert_eq!(a["existing"], false);
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(
        a["sha256"].as_str().unwrap(),
        sameframe::ids::sha256_hex(&std::fs::read(&f1).unwrap())
    );
    let exif = &a["exif"];
    assert_eq!(exif["make"], "Canon");
    assert_eq!(exif["model"], "EOS R6");
    assert_eq!(exif["lens"], "RF100mm F2.8 L MACRO IS USM");
    assert_eq!(exif["f_number"], 8.0);
    assert_eq!(exif["exposure_time_s"], 0.008);
    assert_eq!(exif["iso"], 200);
    assert_eq!(exif["focal_length_mm"], 100.0);
    assert_eq!(exif["flash_fired"], true);
    assert_eq!(exif["white_balance"], "manual");
    assert_eq!(exif["orientation"], 1);
    assert_eq!(exif["capture_date"], "2026-03-14T09:30:00+01:00");
    assert_eq!(a["captured_at"], "2026-03-14T09:30:00+01:00");
    assert_eq!(a["captured_at_source"], "exif");
    assert_eq!(a["time_of_day"], "morning");
    let base_id = a["capture_id"].as_str().unwrap().to_string();

    // The second capture of the series follows the baseline.
    let f2 = s.write("after.png", &images::png(320, 240, 2));
    let b = s.import(&f2, "P1", &cid, &["--captured-at", "2026-04-14T15:00:00"]);
    assert_eq!(b["role"], "follow_up");
    assert_eq!(b["baseline_id"].as_str().unwrap(), base_id);
    assert_eq!(b["time_of_day"], "afternoon");
    // An explicit baseline works; a follow-up cannot be a baseline.
    let f3 = s.write("after2.tiff", &images::tiff(100, 80, 3));
    let c = s.import(&f3, "P1", &cid, &["--baseline", &base_id]);
    assert_eq!(c["baseline_id"].as_str().unwrap(), base_id);
    assert_eq!(c["format"], "tiff");
    let f4 = s.write("x.jpg", &images::jpeg(64, 64, 4));
    s.fails(
        &[
            "capture",
            "import",
            f4.to_str().unwrap(),
            "--patient",
            "P1",
            "--consent",
            &cid,
            "--area",
            "face",
            "--view",
            "frontal",
            "--baseline",
            b["capture_id"].as_str().unwrap(),
        ],
        &["cannot be the baseline", "follow-up"],
    );
    s.fails(
        &[
            "capture",
            "import",
            f4.to_str().unwrap(),
            "--patient",
            "P1",
            "--consent",
            &cid,
            "--area",
            "face",
            "--view",
            "lateral_left_90",
            "--baseline",
            &base_id,
        ],
        &["cannot be the baseline", "face/frontal"],
    );
    // Another view starts its own series.
    let lat = s.ok(&[
        "capture",
        "import",
        f4.to_str().unwrap(),
        "--patient",
        "P1",
        "--consent",
        &cid,
        "--area",
        "face",
        "--view",
        "lateral_left_90",
    ]);
    assert_eq!(lat["role"], "baseline");
    // --new-baseline starts a new course.
    let f5 = s.write("course2.jpg", &images::jpeg(64, 64, 5));
    let nb = s.import(&f5, "P1", &cid, &["--new-baseline"]);
    assert_eq!(nb["role"], "baseline");

    // Same bytes again: the existing capture.
    let again = s.import(&f1, "P1", &cid, &[]);
    assert_eq!(again["existing"], true);
    assert_eq!(again["capture_id"].as_str().unwrap(), base_id);
    // Same bytes for another patient: refused.
    let other = s.patient_with_consent("P2", "clinical");
    let (_, out) = s.run(&[
        "capture",
        "import",
        f1.to_str().unwrap(),
        "--patient",
        "P2",
        "--consent",
        &other,
        "--area",
        "face",
        "--view",
        "frontal",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another patient"));

    let shown = s.ok(&["capture", "show", &base_id]);
    let keys: Vec<_> = shown["confounders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["makeup_present", "recent_sun_exposure"]);
    assert_eq!(shown["confounders"][0]["text"], "light foundation");
    assert_eq!(shown["note"], "left cheek");
    assert_eq!(shown["visit_id"].as_str().unwrap(), vid);

    let list = s.ok(&["capture", "list", "--patient", "P1"]);
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert_eq!(s.ok(&["capture", "list"]).as_array().unwrap().len(), 5);

    // Export: identical bytes; refused for a use the consent lacks; no silent overwrite.
    let out = s.path("export.jpg");
    let e = s.ok(&[
        "capture",
        "export",
        &base_id,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(e["purpose"], "clinical");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&f1).unwrap());
    s.fails(
        &[
            "capture",
            "export",
            &base_id,
            "--out",
            out.to_str().unwrap(),
        ],
        &["exists"],
    );
    s.fails(
        &[
            "capture",
            "export",
            &base_id,
            "--out",
            s.path("pub.jpg").to_str().unwrap(),
            "--purpose",
            "publication",
        ],
        &[&cid, "publication", "not granted"],
    );
    assert!(!s.path("pub.jpg").exists());

    // Confounders can be filled after the sequence.
    let set = s.ok(&[
        "capture",
        "confounders",
        b["capture_id"].as_str().unwrap(),
        "--confounder",
        "skincare_change=new retinoid",
    ]);
    assert_eq!(set[0]["key"], "skincare_change");
}

#[test]
fn refusals_store_nothing() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("P1", "clinical");
    let ok = s.write("ok.jpg", &images::jpeg(200, 150, 9));
    s.import(&ok, "P1", &cid, &[]);
    let before_blobs = blob_files(&s);
    let n = capture_count(&s);

    let good = images::jpeg(300, 200, 10);
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "notes.txt",
            b"just some text, not an image".to_vec(),
            vec!["notes.txt", "not a JPEG, PNG or TIFF"],
        ),
        ("empty.jpg", Vec::new(), vec!["empty.jpg", "empty"]),
        (
            "truncated.jpg",
            good[..good.len() / 2].to_vec(),
            vec!["truncated.jpg", "truncated"],
        ),
        (
            "header-only.png",
            images::png(50, 50, 1)[..30].to_vec(),
            vec!["header-only.png"],
        ),
        (
            "huge.png",
            images::png_claiming(20_000, 20_000),
            vec!["huge.png", "400.0 MP", "limit"],
        ),
        ("zero.png", images::png_claiming(0, 10), vec!["zero.png"]),
        (
            "phone.heic",
            {
                let mut h = vec![0, 0, 0, 24];
                h.extend_from_slice(b"ftypheic00000000");
                h
            },
            vec!["phone.heic", "HEIC"],
        ),
    ];
    for (name, bytes, needles) in &cases {
        let f = s.write(name, bytes);
        s.fails(
            &[
                "capture",
                "import",
                f.to_str().unwrap(),
                "--patient",
                "P1",
                "--consent",
                &cid,
                "--area",
                "face",
                "--view",
                "frontal",
            ],
            needles,
        );
    }
    // A PNG with a damaged chunk (CRC mismatch).
    let mut bad_png = images::png(64, 64, 3);
    let mid = bad_png.len() / 2;
    bad_png[mid] ^= 0x55;
    let f = s.write("crc.png", &bad_png);
    s.fails(
        &[
            "capture",
            "import",
            f.to_str().unwrap(),
            "--patient",
            "P1",
            "--consent",
            &cid,
            "--area",
            "face",
            "--view",
            "frontal",
        ],
        &["crc.png", "corrupt"],
    );

    let img = s.write("good.jpg", &good);
    let g = img.to_str().unwrap();
    let base = [
        "capture", "import", g, "--area", "face", "--view", "frontal",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let other = s.patient_with_consent("P2", "clinical");
    let teaching_only = {
        let c = s.ok(&[
            "consent",
            "grant",
            "--patient",
            "P1",
            "--scope",
            "teaching",
            "--signed-by",
            "P1",
            "--signed-on",
            "2026-01-05",
        ]);
        c["consent_id"].as_str().unwrap().to_string()
    };
    let expired = {
        let c = s.ok(&[
            "consent",
            "grant",
            "--patient",
            "P1",
            "--scope",
            "clinical",
            "--signed-by",
            "P1",
            "--signed-on",
            "2020-01-05",
            "--expires",
            "2021-01-05",
        ]);
        c["consent_id"].as_str().unwrap().to_string()
    };
    let refusals: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            with(&["--patient", "NOPE", "--consent", &cid]),
            vec!["unknown patient NOPE".into()],
        ),
        (
            with(&["--patient", "P1", "--consent", "con_ffffffffffffffff"]),
            vec!["unknown consent con_ffffffffffffffff".into()],
        ),
        (
            with(&["--patient", "P1", "--consent", &other]),
            vec![other.clone(), "another patient".into()],
        ),
        (
            with(&["--patient", "P1", "--consent", &teaching_only]),
            vec![
                teaching_only.clone(),
                "clinical".into(),
                "not granted".into(),
            ],
        ),
        (
            with(&["--patient", "P1", "--consent", &expired]),
            vec![expired.clone(), "expired".into()],
        ),
        (
            with(&[
                "--patient",
                "P1",
                "--consent",
                &cid,
                "--visit",
                "vis_0123456789abcdef",
            ]),
            vec!["unknown visit vis_0123456789abcdef".into()],
        ),
        (
            with(&[
                "--patient",
                "P1",
                "--consent",
                &cid,
                "--baseline",
                "cap_0123456789abcdef",
            ]),
            vec!["unknown capture cap_0123456789abcdef".into()],
        ),
        (
            with(&[
                "--patient",
                "P1",
                "--consent",
                &cid,
                "--confounder",
                "full_moon",
            ]),
            vec!["full_moon".into(), "recent_sun_exposure".into()],
        ),
        (
            with(&[
                "--patient",
                "P1",
                "--consent",
                &cid,
                "--captured-at",
                "yesterday",
            ]),
            vec!["yesterday".into()],
        ),
    ];
    for (args, needles) in &refusals {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let n: Vec<&str> = needles.iter().map(String::as_str).collect();
        s.fails(&a, &n);
    }
    // A visit of another patient.
    let v = s.ok(&["visit", "add", "--patient", "P2", "--area", "face"]);
    s.fails(
        &a_vec(&with(&[
            "--patient",
            "P1",
            "--consent",
            &cid,
            "--visit",
            v["visit_id"].as_str().unwrap(),
        ])),
        &["another patient"],
    );

    assert_eq!(capture_count(&s), n, "a refusal stored a capture");
    assert_eq!(blob_files(&s), before_blobs, "a refusal left a blob");
    let verify = s.ok(&["verify"]);
    assert_eq!(verify["corrupt"].as_array().unwrap().len(), 0);
}

fn a_vec(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn malformed_exif_is_reported_but_the_image_imports() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("P1", "clinical");
    let f = s.write(
        "odd-exif.jpg",
        &images::jpeg_with_malformed_exif(120, 90, 5),
    );
    let (c, out) = s.run(&[
        "capture",
        "import",
        f.to_str().unwrap(),
        "--patient",
        "P1",
        "--consent",
        &cid,
        "--area",
        "face",
        "--view",
        "frontal",
    ]);
    assert!(
        out.status.success(),
        "{c:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["exif"].is_null());
    assert!(v["exif_error"].as_str().unwrap().contains("malformed EXIF"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("odd-exif.jpg") && err.contains("malformed EXIF"),
        "{err}"
    );
}

#[test]
fn clinic_confounder_checklist_is_data() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("P1", "clinical");
    let cal = s.data.join("calibration");
    std::fs::create_dir_all(&cal).unwrap();
    let mut text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/calibration/confounders.toml"
    ))
    .unwrap();
    text.push_str("\n[[confounder]]\nkey = \"pregnancy\"\nlabel = \"Pregnant or breastfeeding\"\n");
    std::fs::write(cal.join("confounders.toml"), text).unwrap();
    let f = s.write("a.jpg", &images::jpeg(64, 48, 1));
    let c = s.import(&f, "P1", &cid, &["--confounder", "pregnancy=24 weeks"]);
    assert_eq!(c["confounders"][0]["label"], "Pregnant or breastfeeding");
}

#[test]
fn verify_finds_flipped_and_deleted_blobs_and_gc_removes_orphans() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("P1", "clinical");
    let mut hashes = Vec::new();
    for i in 0..3 {
        let f = s.write(&format!("{i}.jpg"), &images::jpeg(96, 64, 100 + i));
        let c = s.import(&f, "P1", &cid, &[]);
        hashes.push(c["sha256"].as_str().unwrap().to_string());
    }
    let clean = s.ok(&["verify"]);
    assert_eq!(
        (clean["checked"].as_u64(), clean["ok"].as_u64()),
        (Some(3), Some(3))
    );

    if !s.is_shared() {
        let h = &hashes[0];
        let p0 = s.data.join("blobs").join(&h[..2]).join(&h[2..]);
        let perms = std::fs::metadata(&p0).unwrap().permissions();
        assert!(perms.readonly(), "blobs are read-only");
    }
    // Flip one byte of the first blob.
    let mut bytes = s.blob_raw(&hashes[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    s.blob_overwrite(&hashes[0], &bytes);
    // Delete the second.
    s.blob_delete(&hashes[1]);
    // An orphan: an object at an address no row names.
    s.blob_overwrite(&"e".repeat(64), b"stray");

    let (c, out) = s.run(&["verify"]);
    assert!(!out.status.success(), "verify must fail: {c:?}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["checked"], 3);
    assert_eq!(r["ok"], 1);
    assert_eq!(r["corrupt"][0]["sha256"].as_str().unwrap(), hashes[0]);
    assert_eq!(r["missing"][0]["sha256"].as_str().unwrap(), hashes[1]);
    // The stray file was written a moment ago: it could be an import under way, so it is
    // reported apart, not as an orphan…
    assert_eq!(r["orphans"].as_array().unwrap().len(), 0);
    assert_eq!(r["in_flight"].as_array().unwrap().len(), 1);
    // …unless the in-flight window is closed.
    let r: Value =
        serde_json::from_slice(&s.run(&["verify", "--in-flight", "0"]).1.stdout).unwrap();
    assert_eq!(r["orphans"].as_array().unwrap().len(), 1);
    // Each failed verify is in the audit chain.
    let log = s.ok(&["audit", "log", "--action", "verify."]);
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(
        log[0]["subjects"]["corrupt"][0].as_str().unwrap(),
        hashes[0]
    );

    let gc = s.ok(&["gc", "--min-age", "0"]);
    assert_eq!(gc["removed"].as_array().unwrap().len(), 1);
    let r = s.run(&["verify", "--in-flight", "0"]).1;
    let r: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(r["orphans"].as_array().unwrap().len(), 0);
}

#[test]
fn audit_chain_records_and_detects_edits() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("P1", "clinical");
    let f = s.write("a.jpg", &images::jpeg(64, 48, 1));
    let cap = s.import(&f, "P1", &cid, &[]);
    let out = s.path("e.jpg");
    s.ok(&[
        "capture",
        "export",
        cap["capture_id"].as_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let log = s.ok(&["audit", "log"]);
    let actions: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "store.init",
            "patient.create",
            "consent.grant",
            "capture.import",
            "capture.export"
        ]
    );
    for e in log.as_array().unwrap() {
        assert_eq!(e["actor"], "test-nurse");
    }
    // The patient's reference never appears in the audit chain; IDs do.
    assert!(!log.to_string().contains("\"P1\""));
    assert_eq!(log[3]["subjects"]["capture"], cap["capture_id"]);

    let ok = s.ok(&["audit", "verify"]);
    assert_eq!(ok["ok"], true);
    let head = ok["head_hash"].as_str().unwrap().to_string();
    s.ok(&["audit", "verify", "--expect-head", &head]);

    // Edit entry 3 behind sameframe's back.
    assert_eq!(
        s.sql_exec("UPDATE audit SET actor = 'mallory' WHERE seq = 3"),
        1
    );
    let (c, out) = s.run(&["audit", "verify"]);
    assert!(!out.status.success(), "{c:?}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["first_broken"]["seq"], 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("entry 3"));

    // Truncation is caught against a recorded head.
    let s2 = TestStore::new();
    s2.ok(&["patient", "add", "--ref", "A"]);
    let head = s2.ok(&["audit", "verify"])["head_hash"]
        .as_str()
        .unwrap()
        .to_string();
    s2.sql_exec("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)");
    // What the removed entry recorded is still there: the patient row no longer fits…
    s2.fails(&["audit", "verify"], &["not in the audit log"]);
    // …and the head recorded elsewhere is gone from the chain.
    let (_, out) = s2.run(&["audit", "verify", "--expect-head", &head]);
    assert!(!out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("not in the chain"),
        "{r}"
    );
}

#[test]
fn passphrase_store_and_wrong_passphrase() {
    let s = TestStore::uninitialised();
    let run = |args: &[&str], pass: &str| s.command_with_passphrase(args, pass).output().unwrap();
    let out = run(
        &["init", "--kdf-memory-mib", "19", "--kdf-passes", "2"],
        "short",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("too short"));
    assert!(
        !s.data.join("sameframe.db").exists() && !s.data.join("sameframe.toml").exists(),
        "a failed init leaves no store behind"
    );
    let out = run(
        &["init", "--kdf-memory-mib", "19", "--kdf-passes", "2"],
        "correct horse battery",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Patient text is sealed too: even a patient needs the store's key.
    let wrong = run(&["patient", "add", "--ref", "P1"], "irrelevant");
    assert!(
        !wrong.status.success(),
        "a wrong passphrase changed the store"
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    assert!(
        run(&["patient", "add", "--ref", "P1"], "correct horse battery")
            .status
            .success()
    );
    let out = run(
        &[
            "consent",
            "grant",
            "--patient",
            "P1",
            "--scope",
            "clinical",
            "--signed-by",
            "P",
            "--signed-on",
            "2026-01-01",
        ],
        "correct horse battery",
    );
    let cid: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cid = cid["consent_id"].as_str().unwrap();
    let f = s.write("a.jpg", &images::jpeg(64, 48, 1));
    let import = [
        "capture",
        "import",
        f.to_str().unwrap(),
        "--patient",
        "P1",
        "--consent",
        cid,
        "--area",
        "face",
        "--view",
        "frontal",
    ];
    let bad = run(&import, "wrong passphrase!!");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("wrong passphrase"));
    let good = run(&import, "correct horse battery");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let v = run(&["verify"], "correct horse battery");
    assert!(v.status.success());
}

/// A child import killed with SIGKILL at random points, 25 times: afterwards no corrupt or
/// missing blob and no row without its blob; gc clears the orphans.
#[test]
fn sigkill_during_import_never_leaves_a_row_without_its_blob() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("P1", "clinical");
    // A ~1.5 MP photo keeps each import busy for a while.
    let first = s.write("warm.jpg", &images::jpeg(1600, 1000, 999));
    let t0 = Instant::now();
    s.import(&first, "P1", &cid, &[]);
    let full = t0.elapsed();
    let mut rng = images::Rng(42);
    let mut killed = 0;
    for i in 0..25u64 {
        let f = s.write(&format!("k{i}.jpg"), &images::jpeg(1600, 1000, 1000 + i));
        let mut c = s.command(&[
            "capture",
            "import",
            f.to_str().unwrap(),
            "--patient",
            "P1",
            "--consent",
            &cid,
            "--area",
            "face",
            "--view",
            "frontal",
        ]);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let delay = full.mul_f64(rng.unit() * 1.2);
        std::thread::sleep(delay.max(Duration::from_micros(200)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            killed += 1;
        }
        let _ = child.wait();
    }
    assert!(
        killed >= 10,
        "only {killed} of 25 imports were interrupted; timing is off"
    );
    let (c, out) = s.run(&["verify"]);
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{c:?} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(r["corrupt"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["missing"].as_array().unwrap().len(), 0, "{r}");
    s.ok(&["gc", "--min-age", "0"]);
    let clean = s.ok(&["verify"]);
    assert_eq!(clean["checked"], clean["ok"]);
    s.ok(&["audit", "verify"]);
    // Every capture row reads back and matches its hash.
    for c in s.ok(&["capture", "list"]).as_array().unwrap() {
        let id = c["capture_id"].as_str().unwrap();
        let out = s.path(&format!("{id}.out"));
        s.ok(&["capture", "export", id, "--out", out.to_str().unwrap()]);
        assert_eq!(
            sameframe::ids::sha256_hex(&std::fs::read(&out).unwrap()),
            c["sha256"].as_str().unwrap()
        );
    }
}

#[test]
fn many_files_import_in_one_command_each_on_its_own() {
    let s = TestStore::new();
    let consent = s.patient_with_consent("B-1", "clinical");
    // Distinct photos, a duplicate, a truncated JPEG, a text file, a missing file.
    let mut files: Vec<PathBuf> = (0..6u64)
        .map(|i| s.write(&format!("p{i}.jpg"), &images::jpeg(640, 480, 900 + i)))
        .collect();
    let good = images::jpeg(640, 480, 950);
    files.insert(2, s.write("truncated.jpg", &good[..good.len() / 3]));
    files.insert(4, s.write("notes.jpg", b"not a photo at all"));
    files.insert(5, s.data.parent().unwrap().join("missing.jpg"));
    files.push(files[0].clone());
    let mut args = vec!["capture", "import"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    args.extend([
        "--patient",
        "B-1",
        "--consent",
        &consent,
        "--area",
        "face",
        "--view",
        "frontal",
    ]);
    let (c, out) = s.run(&args);
    assert!(
        !out.status.success(),
        "a failed file makes the batch fail: {c:?}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["files"].as_u64(), v["imported"].as_u64()),
        (Some(10), Some(6)),
        "{v}"
    );
    assert_eq!(
        (v["existing"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(3)),
        "{v}"
    );
    let results = v["results"].as_array().unwrap();
    // In the order given, each failure naming its file.
    for (r, name) in results.iter().zip(&names) {
        assert_eq!(r["file"], name.as_str());
    }
    for bad in [2, 4, 5] {
        assert_eq!(results[bad]["ok"], false, "{}", results[bad]);
        assert!(
            results[bad]["error"]
                .as_str()
                .unwrap()
                .contains(&names[bad]),
            "{}",
            results[bad]
        );
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated.jpg") && err.contains("notes.jpg"),
        "{err}"
    );
    // The first file started the series; the others follow it; nothing of the failures stored.
    let first = &results[0]["capture"];
    assert_eq!(first["role"], "baseline");
    for r in results[1..9].iter().filter(|r| r["ok"] == true) {
        assert_eq!(r["capture"]["baseline_id"], first["capture_id"], "{r}");
    }
    assert_eq!(results[9]["capture"]["existing"], true);
    assert_eq!(capture_count(&s), 6);
    // The previews and fingerprints were left for later, and are counted until made.
    assert_eq!(first["derived_pending"], true);
    assert_eq!(s.ok(&["status"])["derived_pending"], 6);
    assert_eq!(s.ok(&["verify"])["derived_pending"], 6);
    let made = s.ok(&["fingerprint", "backfill"]);
    assert_eq!(
        (
            made["computed"].as_u64(),
            made["failed"].as_array().map(Vec::len)
        ),
        (Some(6), Some(0))
    );
    assert_eq!(s.ok(&["status"])["derived_pending"], 0);
    // What backfill made is what an import that derives at once makes (the same pixels, in
    // a file with one more segment).
    let again = s.write(
        "again.jpg",
        &images::with_app1(&images::jpeg(640, 480, 903), b"Other\0 segment"),
    );
    let now = s.import(&again, "B-1", &consent, &["--derive-now", "--new-baseline"]);
    assert_eq!(now["derived_pending"], false);
    let lib = s.open_lib();
    let deferred_id = results[6]["capture"]["capture_id"].as_str().unwrap();
    let now_id = now["capture_id"].as_str().unwrap();
    assert_eq!(
        lib.fingerprint(deferred_id).unwrap().map(|f| f.phash),
        lib.fingerprint(now_id).unwrap().map(|f| f.phash)
    );
    drop(lib);
    s.ok(&["verify"]);
    s.ok(&["audit", "verify"]);
    // One capture time cannot stand for several photos.
    let mut timed = args.clone();
    timed.extend(["--captured-at", "2026-01-05T10:00:00"]);
    s.fails(&timed, &["--captured-at"]);
}
