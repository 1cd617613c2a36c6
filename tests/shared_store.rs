//! Many writers, faults and bad configuration, on both backends where both apply: what a
//! clinic with several rooms does to its store, and what goes wrong on a network.
//!
//! Tests that need the shared servers skip with a notice when none were given, and fail when
//! the run asked for them (`scripts/test.sh` starts them and asks).

#![allow(clippy::unwrap_used)]

mod util;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::Value;
use util::{Backend, Servers, TestStore, images, import_args};

/// The embedded backend, and the shared one when servers are available.
fn backends(test: &str) -> Vec<Backend> {
    let mut out = vec![Backend::Embedded];
    if let Some(s) = Servers::required(test) {
        out.push(Backend::new_shared(s));
    }
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Captures of `patient` (JSON).
fn captures(s: &TestStore, patient: &str) -> Vec<Value> {
    s.ok(&["capture", "list", "--patient", patient])
        .as_array()
        .unwrap()
        .clone()
}

/// Each view's captures: exactly one baseline, every other capture a follow-up of it.
fn one_baseline_per_series(caps: &[Value]) {
    let mut series: HashMap<String, Vec<&Value>> = HashMap::new();
    for c in caps {
        series
            .entry(format!("{}/{}", c["area"], c["view"]))
            .or_default()
            .push(c);
    }
    for (view, cs) in series {
        let baselines: Vec<&&Value> = cs.iter().filter(|c| c["role"] == "baseline").collect();
        assert_eq!(baselines.len(), 1, "{view}: {} baselines", baselines.len());
        let b = baselines[0]["capture_id"].clone();
        for c in cs.iter().filter(|c| c["role"] != "baseline") {
            assert_eq!(
                c["baseline_id"], b,
                "{view}: a follow-up of another baseline"
            );
        }
    }
}

/// Three writers import 200 photos each into one series at the same time: every import that
/// said so is stored, nothing waits forever or fails on a lock, the audit chain is one chain,
/// and the series has one baseline.
#[test]
fn three_writers_two_hundred_imports_each() {
    for backend in backends("three_writers_two_hundred_imports_each") {
        let s = TestStore::on(backend);
        s.ok(&["init"]);
        let cid = s.patient_with_consent("W-1", "clinical");
        let files: Vec<Vec<String>> = (0..3u64)
            .map(|w| {
                (0..200u64)
                    .map(|i| {
                        let f = s.write(
                            &format!("w{w}-{i}.jpg"),
                            &images::jpeg(40, 30, w * 1000 + i),
                        );
                        f.display().to_string()
                    })
                    .collect()
            })
            .collect();
        let start = Arc::new(Barrier::new(3));
        let failures: Vec<String> = std::thread::scope(|sc| {
            let handles: Vec<_> = files
                .iter()
                .map(|mine| {
                    let (s, cid, start) = (&s, &cid, start.clone());
                    sc.spawn(move || {
                        start.wait();
                        let mut bad = Vec::new();
                        for f in mine {
                            let out = s
                                .command(&import_args(f, "W-1", cid, "frontal"))
                                .output()
                                .unwrap();
                            if !out.status.success() || text(&out).contains("locked") {
                                bad.push(format!("{f}: {}", text(&out)));
                            }
                        }
                        bad
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(
            failures.is_empty(),
            "{} imports failed: {failures:#?}",
            failures.len()
        );
        let caps = captures(&s, "W-1");
        assert_eq!(caps.len(), 600, "imports were lost");
        one_baseline_per_series(&caps);
        let v = s.ok(&["verify", "--in-flight", "0"]);
        assert_eq!(v["ok"], 600);
        let chain = s.ok(&["audit", "verify"]);
        assert_eq!(chain["ok"], true);
        // init, patient, consent, and one entry per import.
        assert_eq!(chain["entries"], 603);
    }
}

/// Several stations take the first photo of the same view at the same moment: one becomes the
/// baseline, the others follow it.
#[test]
fn racing_first_captures_make_one_baseline() {
    for backend in backends("racing_first_captures_make_one_baseline") {
        let s = TestStore::on(backend);
        s.ok(&["init"]);
        let cid = s.patient_with_consent("B-1", "clinical");
        let views = [
            "frontal",
            "oblique_left_45",
            "oblique_right_45",
            "lateral_left_90",
            "lateral_right_90",
        ];
        for (v, view) in views.iter().enumerate() {
            let files: Vec<String> = (0..4u64)
                .map(|k| {
                    s.write(
                        &format!("{view}-{k}.jpg"),
                        &images::jpeg(48, 36, 50 + v as u64 * 10 + k),
                    )
                    .display()
                    .to_string()
                })
                .collect();
            let children: Vec<_> = files
                .iter()
                .map(|f| {
                    s.command(&import_args(f, "B-1", &cid, view))
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for c in children {
                let out = c.wait_with_output().unwrap();
                assert!(out.status.success(), "{}", text(&out));
            }
        }
        let caps = captures(&s, "B-1");
        assert_eq!(caps.len(), 20);
        one_baseline_per_series(&caps);
        s.ok(&["audit", "verify"]);
    }
}

/// A withdrawal of everything races an import under the same consent: the photo ends up
/// either refused (with a message naming the consent, and nothing left behind) or stored and
/// then purged — never a surviving copy.
#[test]
fn a_withdrawal_racing_an_import_leaves_no_copy() {
    for backend in backends("a_withdrawal_racing_an_import_leaves_no_copy") {
        let s = TestStore::on(backend);
        s.ok(&["init"]);
        let mut refused = 0;
        let mut purged = 0;
        let mut rng = images::Rng(9);
        for round in 0..10u64 {
            let p = format!("R-{round}");
            let cid = s.patient_with_consent(&p, "clinical,publication");
            let f = s.write(
                &format!("r{round}.jpg"),
                &images::jpeg(900, 700, 7000 + round),
            );
            let f = f.display().to_string();
            let import = s
                .command(&import_args(&f, &p, &cid, "frontal"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis((rng.unit() * 120.0) as u64));
            let withdraw = s.run(&[
                "consent",
                "withdraw",
                &cid,
                "--scope",
                "all",
                "--reason",
                "race",
                "--purge-clinical-record",
                "--confirm",
            ]);
            assert!(withdraw.1.status.success(), "{}", text(&withdraw.1));
            let out = import.wait_with_output().unwrap();
            let said = text(&out);
            assert!(
                !said.contains("FOREIGN KEY")
                    && !said.contains("database error")
                    && !said.contains("panicked"),
                "{said}"
            );
            if out.status.success() {
                purged += 1;
            } else {
                refused += 1;
                assert!(said.contains(&cid), "the refusal names the consent: {said}");
            }
            assert!(
                captures(&s, &p).is_empty(),
                "round {round}: a capture survived its withdrawal"
            );
        }
        eprintln!("withdrawal races: {refused} imports refused, {purged} stored then purged");
        let v = s.ok(&["verify", "--in-flight", "0"]);
        assert!(v["orphans"].as_array().unwrap().is_empty(), "{v}");
        s.ok(&["audit", "verify"]);
    }
}

/// A shared store's withdrawal leaves no object of the consent in the bucket and no row of it
/// in the database, and its certificate lists exactly what was removed.
#[test]
fn purge_on_the_shared_store_removes_every_object_and_row() {
    let Some(servers) = Servers::required("purge_on_the_shared_store_removes_every_object_and_row")
    else {
        return;
    };
    let s = TestStore::on(Backend::new_shared(servers));
    s.ok(&["init"]);
    s.ok(&["patient", "add", "--ref", "S-1"]);
    let doc = s.write(
        "form.pdf",
        b"%PDF-1.4 signed consent form of S-1 .........................",
    );
    let c = s.ok(&[
        "consent",
        "grant",
        "--patient",
        "S-1",
        "--scope",
        "clinical,publication",
        "--signed-by",
        "S-1",
        "--signed-on",
        "2026-01-05",
        "--document",
        doc.to_str().unwrap(),
    ]);
    let cid = c["consent_id"].as_str().unwrap().to_string();
    let mut hashes = HashSet::new();
    for i in 0..4u64 {
        let f = s.write(&format!("s{i}.jpg"), &images::jpeg(200, 150, 300 + i));
        let out = s.ok(&import_args(f.to_str().unwrap(), "S-1", &cid, "frontal"));
        hashes.insert(out["sha256"].as_str().unwrap().to_string());
    }
    let keep = s.patient_with_consent("S-2", "clinical");
    let other = s.write("o.jpg", &images::jpeg(64, 64, 999));
    s.ok(&import_args(
        other.to_str().unwrap(),
        "S-2",
        &keep,
        "frontal",
    ));
    let before: HashSet<String> = s.objects().into_iter().map(|(l, _)| l).collect();
    let out = s.ok(&[
        "consent",
        "withdraw",
        &cid,
        "--scope",
        "all",
        "--reason",
        "erasure request",
        "--purge-clinical-record",
        "--confirm",
    ]);
    let after: HashSet<String> = s.objects().into_iter().map(|(l, _)| l).collect();
    let removed: HashSet<&String> = before.difference(&after).collect();
    // No object of the consent is left: its originals, its document, its previews.
    for (loc, _) in s.objects() {
        assert!(
            !hashes.iter().any(|h| loc.contains(h.as_str())),
            "{loc} is still in the bucket"
        );
    }
    // The certificate names each removed object where it was.
    let cert = &out["certificate"];
    let listed: HashSet<String> = cert["purged"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| ["original", "document", "thumbnail"].contains(&i["kind"].as_str().unwrap()))
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    let removed_objects: HashSet<String> = removed
        .iter()
        .filter(|l| !l.contains("/certificates/"))
        .map(|l| (*l).clone())
        .collect();
    assert_eq!(
        listed, removed_objects,
        "the certificate and the bucket disagree"
    );
    assert!(cert["objects_at"].as_str().unwrap().contains("S3 bucket"));
    assert!(
        cert["residual_copies"]
            .as_str()
            .unwrap()
            .contains("versions")
    );
    // No row of the consent's photos is left; its data key is destroyed.
    for q in [
        format!("SELECT COUNT(*) FROM capture WHERE consent_id = '{cid}'"),
        format!("SELECT COUNT(*) FROM blob WHERE consent_id = '{cid}'"),
        format!("SELECT COUNT(*) FROM data_key WHERE consent_id = '{cid}' AND wrapped IS NOT NULL"),
    ] {
        assert_eq!(s.sql_one(&q).as_deref(), Some("0"), "{q}");
    }
    // The certificate is kept in the bucket too, and the other patient is untouched.
    assert!(
        after
            .iter()
            .any(|l| l.ends_with(&format!("{}.json", cert["job_id"].as_str().unwrap())))
    );
    assert_eq!(captures(&s, "S-2").len(), 1);
    s.ok(&["verify", "--in-flight", "0"]);
    s.ok(&["audit", "verify"]);
}

/// Two stations on one shared store: each sees the other's captures as baselines, and a copy
/// one station exported into its own folder is deleted there when another station withdraws
/// the consent.
#[test]
fn two_stations_share_baselines_and_withdrawals() {
    let Some(servers) = Servers::required("two_stations_share_baselines_and_withdrawals") else {
        return;
    };
    let a = TestStore::on(Backend::new_shared(servers.clone()));
    a.ok(&["init"]);
    // Station B joins with its own folder and its own copy of the key file.
    let b = a.join();
    let joined = b.ok(&["status"]);
    assert_eq!(joined["store_id"], a.ok(&["status"])["store_id"]);
    assert_ne!(joined["station"], a.ok(&["status"])["station"]);

    let cid = a.patient_with_consent("T-1", "clinical,teaching");
    let first = a.write("t0.jpg", &images::jpeg(160, 120, 41));
    let base = a.ok(&import_args(
        first.to_str().unwrap(),
        "T-1",
        &cid,
        "frontal",
    ));
    assert_eq!(base["role"], "baseline");
    let second = b.write("t1.jpg", &images::jpeg(160, 120, 42));
    let follow = b.ok(&import_args(
        second.to_str().unwrap(),
        "t-1",
        &cid,
        "frontal",
    ));
    assert_eq!(follow["role"], "follow_up");
    assert_eq!(follow["baseline_id"], base["capture_id"]);
    let status = b.ok(&[
        "protocol",
        "status",
        "--patient",
        "T-1",
        "--protocol",
        "face",
    ]);
    assert_eq!(status["steps"][0]["baseline_id"], base["capture_id"]);

    // A exports into its own data directory; B withdraws teaching.
    let inside = a.data.join("exports").join("lecture.jpg");
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    a.ok(&[
        "capture",
        "export",
        base["capture_id"].as_str().unwrap(),
        "--out",
        inside.to_str().unwrap(),
        "--purpose",
        "teaching",
    ]);
    let w = b.ok(&[
        "consent", "withdraw", &cid, "--scope", "teaching", "--reason", "request",
    ]);
    let station_copies = w["certificate"]["station_copies"].as_array().unwrap();
    assert_eq!(station_copies.len(), 1, "{w}");
    assert!(inside.exists(), "B cannot reach A's disk");
    // A's next command deletes it, and the audit log says so.
    a.ok(&["status"]);
    assert!(
        !inside.exists(),
        "the copy on station A survived the withdrawal"
    );
    let sweep = a.ok(&["audit", "log", "--action", "purge.sweep"]);
    assert_eq!(sweep.as_array().unwrap().len(), 1);
    a.ok(&["verify", "--in-flight", "0"]);
}

/// What a wrong configuration says: the host or bucket it could not use (never a password),
/// a non-zero exit, and nothing half-created.
#[test]
fn bad_configuration_is_named_and_creates_nothing() {
    let Some(servers) = Servers::required("bad_configuration_is_named_and_creates_nothing") else {
        return;
    };
    let nothing_created = |t: &TestStore| {
        assert!(
            !t.data.join("sameframe.toml").exists() && !t.data.join("sameframe.db").exists(),
            "a failed init left a configuration behind"
        );
    };
    let shared = |db: &str, blob: &str, endpoint: &str| -> Vec<String> {
        vec![
            "--database-url".into(),
            db.into(),
            "--blob-url".into(),
            blob.into(),
            "--s3-endpoint".into(),
            endpoint.into(),
        ]
    };
    let init = |t: &TestStore, flags: &[String], password: &str| -> Output {
        let mut c = Command::new(util::bin());
        c.arg("init")
            .args(flags)
            .args(["--json", "--data-dir"])
            .arg(&t.data);
        if !flags.iter().any(|f| f == "--no-encryption") {
            c.arg("--key-file").arg(&t.key);
        }
        c.env_remove("SAMEFRAME_KEY_FILE")
            .env_remove("SAMEFRAME_PASSPHRASE")
            .env("SAMEFRAME_DATABASE_PASSWORD", password)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .stdin(std::process::Stdio::null());
        c.output().unwrap()
    };
    let db = servers.new_database();
    let bucket = format!("s3://{}/cfg{}", servers.bucket, util::unique());

    // An unreachable database.
    let t = TestStore::on(Backend::Embedded);
    let out = init(
        &t,
        &shared(
            "postgres://sameframe_test@127.0.0.1:1/x",
            &bucket,
            &servers.s3_endpoint,
        ),
        &servers.pg_password,
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("127.0.0.1:1") && said.contains("connect"),
        "{said}"
    );
    assert!(
        !said.contains(&servers.pg_password),
        "the password was printed"
    );
    nothing_created(&t);

    // Wrong credentials.
    let out = init(
        &t,
        &shared(&db, &bucket, &servers.s3_endpoint),
        "not-the-password",
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("password authentication failed") && said.contains("PostgreSQL"),
        "{said}"
    );
    assert!(
        !said.contains("not-the-password"),
        "the password was printed"
    );
    nothing_created(&t);

    // A password in the address is refused, and not echoed.
    let with_pw = db.replacen("sameframe_test@", "sameframe_test:hunter2@", 1);
    let out = init(
        &t,
        &shared(&with_pw, &bucket, &servers.s3_endpoint),
        &servers.pg_password,
    );
    assert!(!out.status.success());
    assert!(!text(&out).contains("hunter2"), "{}", text(&out));
    nothing_created(&t);

    // An unreachable bucket: the database is left without a store.
    let out = init(
        &t,
        &shared(&db, &bucket, "http://127.0.0.1:1"),
        &servers.pg_password,
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("S3 bucket") && said.contains("127.0.0.1:1"),
        "{said}"
    );
    nothing_created(&t);
    let mut c = servers.connect(&db);
    let tables: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'meta'",
            &[],
        )
        .unwrap()
        .get(0);
    if tables > 0 {
        let stores: i64 = c
            .query_one("SELECT COUNT(*) FROM meta", &[])
            .unwrap()
            .get(0);
        assert_eq!(stores, 0, "a failed init left a store in the database");
    }

    // A shared store must be encrypted.
    let mut flags = shared(&db, &bucket, &servers.s3_endpoint);
    flags.push("--no-encryption".into());
    let out = init(&t, &flags, &servers.pg_password);
    assert!(!out.status.success());
    assert!(text(&out).contains("must be encrypted"), "{}", text(&out));
    nothing_created(&t);

    // Now a real store; a second store may not take the same bucket prefix…
    let ok = init(
        &t,
        &shared(&db, &bucket, &servers.s3_endpoint),
        &servers.pg_password,
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let other_db = servers.new_database();
    let t2 = TestStore::on(Backend::Embedded);
    let out = init(
        &t2,
        &shared(&other_db, &bucket, &servers.s3_endpoint),
        &servers.pg_password,
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("S3 bucket") && said.contains("already"),
        "{said}"
    );
    nothing_created(&t2);
    // …and a station pointed at one store's database and another's objects refuses to open.
    let t3 = TestStore::on(Backend::Embedded);
    let bucket3 = format!("s3://{}/cfg{}", servers.bucket, util::unique());
    let made = init(
        &t3,
        &shared(&other_db, &bucket3, &servers.s3_endpoint),
        &servers.pg_password,
    );
    assert!(made.status.success(), "{}", text(&made));
    let cfg = std::fs::read_to_string(t3.data.join("sameframe.toml")).unwrap();
    let (_, prefix) = bucket.split_once("//").unwrap();
    let (_, prefix3) = bucket3.split_once("//").unwrap();
    std::fs::write(t3.data.join("sameframe.toml"), cfg.replace(prefix3, prefix)).unwrap();
    let mut c = Command::new(util::bin());
    c.args(["status", "--json", "--data-dir"])
        .arg(&t3.data)
        .arg("--key-file")
        .arg(&t3.key)
        .env("SAMEFRAME_DATABASE_PASSWORD", &servers.pg_password)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    let out = c.output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("holds the objects of store"),
        "{}",
        text(&out)
    );

    // A credentials file others can read is refused, naming it.
    let creds = t2.path("creds");
    std::fs::write(
        &creds,
        format!("database_password = \"{}\"\n", servers.pg_password),
    )
    .unwrap();
    let mut flags = shared(
        &servers.new_database(),
        &format!("s3://{}/cfg{}", servers.bucket, util::unique()),
        &servers.s3_endpoint,
    );
    flags.extend(["--credentials-file".into(), creds.display().to_string()]);
    let out = init(&t2, &flags, "");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("chmod 600") && text(&out).contains("creds"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(&servers.pg_password));
    nothing_created(&t2);

    // Joining with another store's key changes nothing.
    let joiner = TestStore::on(Backend::Embedded);
    std::fs::copy(&t2.key, &joiner.key).ok();
    crate_key(&joiner.key);
    let mut flags = shared(&db, &bucket, &servers.s3_endpoint);
    flags.push("--join".into());
    let out = init(&joiner, &flags, &servers.pg_password);
    assert!(!out.status.success());
    assert!(text(&out).contains("does not belong"), "{}", text(&out));
    nothing_created(&joiner);
}

/// A key file of another store.
fn crate_key(path: &Path) {
    let hex: String = (0..32)
        .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
        .collect();
    util::write_private(path, format!("{hex}\n"));
}

/// The database goes away while stations import (a crash, a cable pulled) and comes back:
/// each import either completed or failed naming the database, nothing is half-written that
/// `verify` and `gc` cannot account for, and importing again completes the set.
#[test]
fn the_database_going_away_mid_import_loses_nothing() {
    if Servers::required("the_database_going_away_mid_import_loses_nothing").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (servers, private) = Servers::private(&dir.path().join("servers"));
    let s = TestStore::on(Backend::new_shared(servers));
    s.ok(&["init"]);
    let cid = s.patient_with_consent("D-1", "clinical");
    let files: Vec<String> = (0..40u64)
        .map(|i| {
            s.write(&format!("d{i}.jpg"), &images::jpeg(900, 700, 800 + i))
                .display()
                .to_string()
        })
        .collect();
    let results: Vec<(bool, String)> = std::thread::scope(|sc| {
        let worker = sc.spawn(|| {
            files
                .iter()
                .map(|f| {
                    // Deriving at once keeps each import long enough for the outage to
                    // fall inside one.
                    let mut args = import_args(f, "D-1", &cid, "frontal");
                    args.push("--derive-now");
                    let out = s.command(&args).output().unwrap();
                    (out.status.success(), text(&out))
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(1500));
        private.stop_database();
        std::thread::sleep(Duration::from_millis(1500));
        private.start_database();
        worker.join().unwrap()
    });
    let failed: Vec<&String> = results.iter().filter(|r| !r.0).map(|r| &r.1).collect();
    assert!(
        !failed.is_empty(),
        "the database was never away during an import"
    );
    for f in &failed {
        assert!(f.contains("PostgreSQL") && f.contains("127.0.0.1"), "{f}");
        assert!(!f.contains("panicked"), "{f}");
    }
    eprintln!(
        "{} of {} imports failed while the database was away",
        failed.len(),
        files.len()
    );
    let stored = captures(&s, "D-1").len();
    assert_eq!(
        stored,
        results.iter().filter(|r| r.0).count(),
        "a reported import is missing"
    );
    // Blobs of the failed imports are orphans: reported, then removed.
    s.ok(&["gc", "--min-age", "0"]);
    s.ok(&["verify", "--in-flight", "0"]);
    for f in &files {
        s.ok(&import_args(f, "D-1", &cid, "frontal"));
    }
    assert_eq!(captures(&s, "D-1").len(), files.len());
    s.ok(&["verify", "--in-flight", "0"]);
    s.ok(&["audit", "verify"]);
}

/// The object store refuses to store a photo (a full disk, a denied write): the import fails
/// naming the bucket, and nothing of it is recorded.
#[test]
fn the_object_store_refusing_a_put_stores_nothing() {
    let Some(servers) = Servers::required("the_object_store_refusing_a_put_stores_nothing") else {
        return;
    };
    let upstream = servers
        .s3_endpoint
        .trim_start_matches("http://")
        .to_string();
    let proxy = util::proxy::Proxy::start(&upstream);
    let via_proxy = Servers {
        s3_endpoint: proxy.endpoint(),
        ..servers
    };
    let s = TestStore::on(Backend::new_shared(via_proxy));
    s.ok(&["init"]);
    let cid = s.patient_with_consent("O-1", "clinical");
    let f = s.write("o.jpg", &images::jpeg(320, 240, 77));
    proxy
        .refuse_blob_puts
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let err = s.fails(
        &import_args(f.to_str().unwrap(), "O-1", &cid, "frontal"),
        &["S3 bucket", "put object blobs/"],
    );
    assert!(
        proxy.refused.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "{err}"
    );
    assert!(captures(&s, "O-1").is_empty());
    assert_eq!(s.sql_one("SELECT COUNT(*) FROM blob").as_deref(), Some("0"));
    s.ok(&["verify", "--in-flight", "0"]);
    s.ok(&["audit", "verify"]);
    proxy
        .refuse_blob_puts
        .store(false, std::sync::atomic::Ordering::SeqCst);
    s.ok(&import_args(f.to_str().unwrap(), "O-1", &cid, "frontal"));
    assert_eq!(captures(&s, "O-1").len(), 1);
}

/// A store with what a clinic keeps: named patients, consents with signed forms, a visit,
/// captures with confounders and notes, an export, a publication, a partial withdrawal.
fn populate(s: &TestStore) -> String {
    s.ok(&["patient", "add", "--ref", "M-1", "--name", "Maria Example"]);
    let form = s.write(
        "m1.pdf",
        b"%PDF-1.4 consent form of M-1, signed ..........................",
    );
    let c = s.ok(&[
        "consent",
        "grant",
        "--patient",
        "M-1",
        "--scope",
        "clinical,teaching,publication",
        "--signed-by",
        "Maria Example",
        "--signed-on",
        "2026-01-05",
        "--document",
        form.to_str().unwrap(),
    ]);
    let cid = c["consent_id"].as_str().unwrap().to_string();
    let v = s.ok(&[
        "visit",
        "add",
        "--patient",
        "M-1",
        "--area",
        "face",
        "--product",
        "Profhilo",
        "--lot",
        "L2311",
    ]);
    let visit = v["visit_id"].as_str().unwrap().to_string();
    for i in 0..24u64 {
        let f = s.write(&format!("m{i}.jpg"), &images::jpeg(800, 600, 600 + i));
        let view = ["frontal", "oblique_left_45"][(i % 2) as usize];
        let mut args = import_args(f.to_str().unwrap(), "M-1", &cid, view);
        let note = format!("session {i}");
        args.extend([
            "--visit",
            &visit,
            "--confounder",
            "makeup_present=light",
            "--note",
            &note,
        ]);
        s.ok(&args);
    }
    // The visit's treatment record: a second lot, a map on the first photo, pain, an event.
    s.ok(&[
        "visit",
        "product",
        "add",
        &visit,
        "--product",
        "Skinvive",
        "--lot",
        "SV-88",
        "--expiry",
        "2099-12-31",
    ]);
    let first = s.ok(&["capture", "list", "--patient", "M-1"])[0]["capture_id"]
        .as_str()
        .unwrap()
        .to_string();
    let map = s.write(
        "map.json",
        br#"{"points": [{"x": 40, "y": 50, "lot": "SV-88", "depth": "intradermal", "technique": "nappage"}]}"#,
    );
    s.ok(&[
        "map",
        "set",
        "--visit",
        &visit,
        "--capture",
        &first,
        "--file",
        map.to_str().unwrap(),
    ]);
    s.ok(&["visit", "pain", &visit, "--score", "3"]);
    let other = s.patient_with_consent("M-2", "clinical,teaching");
    let f = s.write("m2.jpg", &images::jpeg(320, 240, 700));
    let cap = s.ok(&import_args(f.to_str().unwrap(), "M-2", &other, "frontal"));
    let inside = s.data.join("exports").join("m2.jpg");
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    s.ok(&[
        "capture",
        "export",
        cap["capture_id"].as_str().unwrap(),
        "--out",
        inside.to_str().unwrap(),
        "--purpose",
        "teaching",
    ]);
    // A photo of a real texture, and a published copy of it (smaller, re-encoded).
    let scene = util::published::scene("textures/brick.jpg", 5);
    let photo = s.write("scene.jpg", &util::published::jpeg(&scene, 92));
    s.ok(&import_args(
        photo.to_str().unwrap(),
        "M-2",
        &other,
        "oblique_left_45",
    ));
    let published = s.write(
        "published.jpg",
        &util::published::jpeg(&util::published::resize(&scene, 600, 450), 80),
    );
    s.ok(&[
        "publish",
        "record",
        published.to_str().unwrap(),
        "--channel",
        "website",
        "--url",
        "https://clinic.example/a",
    ]);
    s.ok(&[
        "consent",
        "withdraw",
        &other,
        "--scope",
        "teaching",
        "--reason",
        "changed their mind",
    ]);
    s.ok(&["config", "set", "retention.keep_clinical_record", "true"]);
    cid
}

/// What a store holds, as its commands show it.
fn snapshot(s: &TestStore) -> Value {
    let mut audit = s.ok(&["audit", "log"]).as_array().unwrap().clone();
    // The copy records itself at the end of both chains; the rest must be identical.
    audit.retain(|e| !e["action"].as_str().unwrap().starts_with("store.migrate"));
    serde_json::json!({
        "patients": s.ok(&["patient", "list"]),
        "consents": [s.ok(&["consent", "list", "--patient", "M-1"]), s.ok(&["consent", "list", "--patient", "M-2"])],
        "captures": s.ok(&["capture", "list"]),
        "publications": s.ok(&["publish", "list"]),
        "lot": s.ok(&["lot", "trace", "SV-88"]),
        "audit": audit,
    })
}

/// Run `migrate` from `from` into `to`, killing it at random moments a few times first; the
/// run that is let finish completes the copy and verifies it.
fn migrate_with_kills(from: &TestStore, to: &TestStore) -> Value {
    let mut args = vec![
        "migrate".to_string(),
        "--to".into(),
        to.data.display().to_string(),
    ];
    args.extend(to.backend.init_flags(&to.path("credentials")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut killed = 0;
    // Short waits first: each resumed run has less left to do, and may finish sooner.
    for wait_ms in [
        30u64, 40, 50, 60, 80, 100, 130, 170, 230, 300, 400, 600, 900,
    ] {
        let stderr_path = from.path("migrate.stderr");
        let mut child = from
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
        match child.try_wait().unwrap() {
            None => {
                child.kill().unwrap();
                killed += 1;
            }
            // A run that ended by itself must have ended well: a failure here is a defect (or a
            // server that refused the connection), not an interruption.
            Some(status) => assert!(
                status.success(),
                "migrate failed by itself after {wait_ms} ms: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            ),
        }
        let _ = child.wait();
        // A copy that is not finished refuses to open.
        if to.data.join("sameframe.toml").exists() && killed > 0 {
            let (_, out) = to.run(&["status"]);
            if !out.status.success() {
                assert!(
                    text(&out).contains("did not finish")
                        || text(&out).contains("no sameframe store"),
                    "{}",
                    text(&out)
                );
            }
        }
    }
    eprintln!("migrate killed {killed} times before the run that finished");
    assert!(killed >= 3, "migrate finished too fast to be interrupted");
    from.ok(&args)
}

/// `migrate` copies an embedded store into a shared one and back, surviving kills, with every
/// blob checked on arrival; each copy verifies, its audit chain is the same chain, and it holds
/// exactly what the original held.
#[test]
fn migrate_embedded_to_shared_and_back() {
    let Some(servers) = Servers::required("migrate_embedded_to_shared_and_back") else {
        return;
    };
    let src = TestStore::on(Backend::Embedded);
    src.ok(&["init"]);
    populate(&src);
    let before = snapshot(&src);

    let shared = TestStore::on(Backend::new_shared(servers));
    std::fs::copy(&src.key, &shared.key).unwrap();
    let out = migrate_with_kills(&src, &shared);
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(
        out["verify"]["records_damaged"].as_array().unwrap().len(),
        0
    );
    assert_eq!(out["audit"]["ok"], true);
    assert_eq!(snapshot(&shared), before, "the shared copy differs");
    let st = shared.ok(&["status"]);
    assert_eq!(st["shared"], true);
    assert_eq!(st["store_id"], src.ok(&["status"])["store_id"]);
    // The copy is a working store: it reviews, and a new capture follows the copied baseline.
    let review = shared.ok(&["review", src.path("published.jpg").to_str().unwrap()]);
    assert_eq!(
        review["images"][0]["sources"].as_array().unwrap().len(),
        1,
        "{review}"
    );
    let cid = shared.ok(&["consent", "list", "--patient", "M-1"])[0]["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = shared.write("new.jpg", &images::jpeg(320, 240, 900));
    let new = shared.ok(&import_args(f.to_str().unwrap(), "M-1", &cid, "frontal"));
    assert_eq!(new["role"], "follow_up");
    let after_import = snapshot(&shared);

    // And back into an embedded folder (a backup of the shared store).
    let back = TestStore::on(Backend::Embedded);
    std::fs::copy(&src.key, &back.key).unwrap();
    let out = migrate_with_kills(&shared, &back);
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(snapshot(&back), after_import, "the embedded copy differs");
    back.ok(&["verify", "--in-flight", "0"]);
    back.ok(&["audit", "verify"]);
    // A copy into a folder that holds a complete copy already of an older state is refused.
    let f = shared.write("newer.jpg", &images::jpeg(320, 240, 901));
    shared.ok(&import_args(f.to_str().unwrap(), "M-1", &cid, "frontal"));
    shared.fails(
        &["migrate", "--to", back.data.to_str().unwrap()],
        &["older copy"],
    );
}

/// A store without encryption is never copied onto the servers: they may only hold sealed
/// data.
#[test]
fn an_unencrypted_store_is_not_copied_to_a_server() {
    let Some(servers) = Servers::required("an_unencrypted_store_is_not_copied_to_a_server") else {
        return;
    };
    let plain = TestStore::on(Backend::Embedded);
    let out = plain
        .command_with_passphrase(&["init", "--no-encryption"], "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let target = TestStore::on(Backend::new_shared(servers));
    let mut args = vec![
        "migrate".to_string(),
        "--to".into(),
        target.data.display().to_string(),
    ];
    args.extend(target.backend.init_flags(&target.path("credentials")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = plain.command_with_passphrase(&args, "").output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("sameframe encrypt"), "{}", text(&out));
    assert!(!target.data.exists(), "a refused copy left a folder behind");
}

/// A database reached over TLS: its certificate is checked (a server the station cannot
/// verify is refused, saying how to give its CA), and with the CA given the store works.
#[test]
fn a_database_over_tls_is_verified() {
    if Servers::required("a_database_over_tls_is_verified").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    // A throwaway CA, and a server certificate for 127.0.0.1 signed by it.
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sameframe test CA",
    ]);
    ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        certs.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let (servers, _guard) = Servers::private_tls(&dir.path().join("servers"), &certs);
    // The server takes TLS only; its maintenance database is empty and holds the store.
    let db = format!("{}?sslmode=require", servers.pg);
    let blob = format!("s3://{}/tls{}", servers.bucket, util::unique());
    let s = TestStore::on(Backend::Embedded);
    let flags = |ca: bool| -> Vec<String> {
        let mut f = vec![
            "init".into(),
            "--database-url".into(),
            db.clone(),
            "--blob-url".into(),
            blob.clone(),
            "--s3-endpoint".into(),
            servers.s3_endpoint.clone(),
        ];
        if ca {
            f.extend([
                "--database-ca".into(),
                certs.join("ca.pem").display().to_string(),
            ]);
        }
        f
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = s.command(&args);
        servers.env(&mut c);
        c.output().unwrap()
    };
    let refused = run(&flags(false));
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains("PostgreSQL")
            && said.contains("certificate")
            && said.contains("--database-ca"),
        "{said}"
    );
    assert!(!s.data.join("sameframe.toml").exists());
    let made = run(&flags(true));
    assert!(made.status.success(), "{}", text(&made));
    let cid = {
        let mut c = s.command(&["patient", "add", "--ref", "TLS-1"]);
        servers.env(&mut c);
        assert!(c.output().unwrap().status.success());
        let mut c = s.command(&[
            "consent",
            "grant",
            "--patient",
            "TLS-1",
            "--scope",
            "clinical",
            "--signed-by",
            "T",
            "--signed-on",
            "2026-01-05",
        ]);
        servers.env(&mut c);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["consent_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let f = s.write("t.jpg", &images::jpeg(64, 48, 3));
    let mut c = s.command(&import_args(f.to_str().unwrap(), "TLS-1", &cid, "frontal"));
    servers.env(&mut c);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// A shared store made by the previous release (schema 1, no treatment records) is upgraded
/// once, under the write lock, when a station of this release opens it; nothing is lost.
#[test]
fn an_older_shared_schema_is_upgraded_on_open() {
    let Some(servers) = Servers::required("an_older_shared_schema_is_upgraded_on_open") else {
        return;
    };
    let backend = Backend::new_shared(servers.clone());
    let Backend::Shared { database_url, .. } = &backend else {
        unreachable!()
    };
    let s = TestStore::on(backend.clone());
    s.ok(&["init"]);
    s.ok(&["patient", "add", "--ref", "U-1"]);
    let visit = s.ok(&["visit", "add", "--patient", "U-1", "--area", "face"])["visit_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Back to schema 1, as the previous release left it.
    let mut db = servers.connect(database_url);
    db.batch_execute("DROP TABLE treatment; UPDATE sameframe_schema SET version = 1;")
        .unwrap();
    drop(db);
    let st = s.ok(&["status"]);
    assert_eq!(st["schema_version"], 2, "{st}");
    assert_eq!(st["counts"]["visits"], 1);
    s.ok(&["visit", "pain", &visit, "--score", "2"]);
    assert_eq!(
        s.ok(&["visit", "show", &visit])["treatment"]["pain"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.ok(&["audit", "verify"]);
}
