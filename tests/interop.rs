//! `sameframe export dicom` checked by real DICOM tools: dicom3tools' `dciodvfy` (no error),
//! dcmtk's `dcmdump` and `dcmj2pnm` (read and decode), and pydicom (the pixel data is the
//! stored original, byte for byte, or its lossless pixels). `scripts/test.sh` installs them
//! and sets `SAMEFRAME_TEST_DICOM_TOOLS=required`: then a missing tool fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use util::TestStore;
use util::images;

/// The tools, or None (with a notice) when they are not installed and not required.
fn tools(test: &str) -> Option<String> {
    let required = std::env::var("SAMEFRAME_TEST_DICOM_TOOLS").as_deref() == Ok("required");
    let python = std::env::var("SAMEFRAME_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let have = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = have("dciodvfy", &["-h"]) || Command::new("dciodvfy").output().is_ok();
    let ok = ok
        && have("dcmdump", &["--version"])
        && have(&python, &["-c", "import pydicom, PIL, numpy"]);
    match (ok, required) {
        (true, _) => Some(python),
        (false, true) => {
            panic!("{test}: dciodvfy, dcmtk or pydicom missing (scripts/dicom-tools.sh)")
        }
        (false, false) => {
            eprintln!(
                "notice: {test} skipped: DICOM tools not installed (scripts/test.sh installs them)"
            );
            None
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd).args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `dciodvfy`: every line starting with "Error" fails; warnings are printed.
fn validate(file: &Path) {
    let (_, text) = run("dciodvfy", &[file.to_str().unwrap()]);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("Error")).collect();
    for w in text.lines().filter(|l| l.starts_with("Warning")) {
        eprintln!("dciodvfy {}: {w}", file.display());
    }
    assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    let (ok, dump) = run("dcmdump", &[file.to_str().unwrap()]);
    assert!(ok, "dcmdump cannot read {}: {dump}", file.display());
    let png = file.with_extension("pnm");
    let (ok, text) = run("dcmj2pnm", &[file.to_str().unwrap(), png.to_str().unwrap()]);
    assert!(ok, "dcmj2pnm cannot decode {}: {text}", file.display());
}

/// pydicom's view of a file: the encapsulated fragment's SHA-256 (or the native pixels'), the
/// decoded pixels' SHA-256 and those of the original decoded by Pillow.
const PYDICOM: &str = r#"
import hashlib, io, json, sys
import pydicom
from pydicom.encaps import generate_frames
from PIL import Image
ds = pydicom.dcmread(sys.argv[1])
orig = open(sys.argv[2], 'rb').read()
out = {"sop": str(ds.SOPInstanceUID), "ts": str(ds.file_meta.TransferSyntaxUID),
       "patient_id": str(ds.PatientID), "modality": str(ds.Modality),
       "view": [str(i.CodeMeaning) for i in ds.get("ViewCodeSequence", [])],
       "region": [str(i.CodeMeaning) for i in ds.get("AnatomicRegionSequence", [])],
       "context": [str(i.TextValue) for i in ds.get("AcquisitionContextSequence", [])]}
if ds.file_meta.TransferSyntaxUID.is_compressed:
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    out["fragment_is_original"] = frame.rstrip(b"\0") == orig.rstrip(b"\0")
    decoded = Image.open(io.BytesIO(frame)).convert("RGB").tobytes()
    out["pixels_equal"] = decoded == Image.open(io.BytesIO(orig)).convert("RGB").tobytes()
else:
    arr = ds.pixel_array
    out["pixels_equal"] = arr.tobytes() == Image.open(io.BytesIO(orig)).convert("RGB").tobytes()
print(json.dumps(out))
"#;

fn pydicom(python: &str, dcm: &Path, original: &Path) -> Value {
    let (ok, text) = run(
        python,
        &[
            "-c",
            PYDICOM,
            dcm.to_str().unwrap(),
            original.to_str().unwrap(),
        ],
    );
    assert!(ok, "pydicom: {text}");
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// `capture import` of `file` for `patient` under `consent`, with `more` options.
fn import_args<'a>(
    file: &'a str,
    patient: &'a str,
    consent: &'a str,
    area: &'a str,
    view: &'a str,
    more: &[&'a str],
) -> Vec<&'a str> {
    let mut a = util::import_args_for(file, patient, consent, area, view);
    a.extend_from_slice(more);
    a
}

/// A patient with a visit and one capture of every view of the face and scalp protocols
/// (JPEG), and a PNG hands capture.
fn store_with_views(s: &TestStore) -> (String, Vec<(String, PathBuf)>) {
    let cid = s.patient_with_consent("D-0001", "clinical,publication");
    let visit = s.ok(&[
        "visit",
        "add",
        "--patient",
        "D-0001",
        "--area",
        "face",
        "--product",
        "Profhilo",
    ]);
    let visit = visit["visit_id"].as_str().unwrap().to_string();
    let mut caps = Vec::new();
    let views = [
        ("face", "frontal"),
        ("face", "oblique_left_45"),
        ("face", "oblique_right_45"),
        ("face", "lateral_left_90"),
        ("face", "lateral_right_90"),
        ("scalp", "scalp_vertex"),
        ("scalp", "scalp_frontal"),
        ("scalp", "scalp_crown"),
        ("neck", "frontal"),
        ("neck", "oblique_left_45"),
        ("neck", "oblique_right_45"),
        ("decollete", "frontal"),
        ("decollete", "oblique_left_45"),
        ("decollete", "oblique_right_45"),
        ("hands", "palmar"),
    ];
    for (i, (area, view)) in views.iter().enumerate() {
        let f = s.write(
            &format!("{area}+{view}.jpg"),
            &images::jpeg(320, 240, 700 + i as u64),
        );
        let c = s.ok(&import_args(
            f.to_str().unwrap(),
            "D-0001",
            &cid,
            area,
            view,
            &[
                "--visit",
                &visit,
                "--confounder",
                "makeup_present=light foundation",
            ],
        ));
        caps.push((c["capture_id"].as_str().unwrap().to_string(), f));
    }
    let f = s.write("hands.png", &images::png(300, 200, 799));
    let c = s.ok(&import_args(
        f.to_str().unwrap(),
        "D-0001",
        &cid,
        "hands",
        "dorsal",
        &[],
    ));
    caps.push((c["capture_id"].as_str().unwrap().to_string(), f));
    (cid, caps)
}

/// Every area and view exports a file `dciodvfy` finds no error in, that dcmtk reads and
/// decodes, whose pixel data pydicom finds equal to the stored original (a JPEG's bytes
/// unchanged); the same capture exported again gives the same UIDs.
#[test]
fn every_view_exports_a_valid_dicom_file_holding_the_original() {
    let Some(python) = tools("every_view_exports_a_valid_dicom_file_holding_the_original") else {
        return;
    };
    let s = TestStore::new();
    let (_, caps) = store_with_views(&s);
    let out = s.path("dicom");
    let r = s.ok(&[
        "export",
        "dicom",
        "--patient",
        "D-0001",
        "--out",
        out.to_str().unwrap(),
    ]);
    let files = r.as_array().unwrap();
    assert_eq!(files.len(), caps.len(), "{r}");
    for (id, original) in &caps {
        let e = files
            .iter()
            .find(|f| f["capture_id"] == id.as_str())
            .unwrap();
        let dcm = PathBuf::from(e["path"].as_str().unwrap());
        validate(&dcm);
        let p = pydicom(&python, &dcm, original);
        assert_eq!(p["pixels_equal"], true, "{id}: {p}");
        assert_eq!(p["patient_id"], "D-0001");
        assert_eq!(p["modality"], "XC");
        assert_eq!(p["sop"], e["sop_instance_uid"]);
        if original.extension().is_some_and(|x| x == "jpg") {
            assert_eq!(p["fragment_is_original"], true, "{id}: {p}");
            assert_eq!(e["encapsulated"], true);
            let sha = sameframe::ids::sha256_hex(&std::fs::read(original).unwrap());
            assert_eq!(e["pixel_sha256"].as_str().unwrap(), sha);
            // Views with a code in the calibration data carry it; every area has its region.
            let stem = original.file_stem().unwrap().to_str().unwrap();
            let view = stem.split('+').nth(1).unwrap();
            assert_eq!(
                p["view"].as_array().unwrap().is_empty(),
                ["scalp_crown", "palmar"].contains(&view),
                "{p}"
            );
            assert_eq!(p["region"].as_array().unwrap().len(), 1, "{p}");
            assert!(
                p["context"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t.as_str().unwrap().contains("light foundation")),
                "{p}"
            );
        }
    }
    // Stable UIDs: the same capture exported again, elsewhere.
    let again = s.ok(&[
        "export",
        "dicom",
        &caps[0].0,
        "--out",
        s.path("again").to_str().unwrap(),
    ]);
    let first = files
        .iter()
        .find(|f| f["capture_id"] == caps[0].0.as_str())
        .unwrap();
    for k in [
        "sop_instance_uid",
        "study_instance_uid",
        "series_instance_uid",
    ] {
        assert_eq!(again[0][k], first[k], "{k}");
    }
    // One study per visit: the face and scalp captures of the visit share it.
    assert_eq!(
        files[0]["study_instance_uid"],
        files[5]["study_instance_uid"]
    );
}

/// Bad requests write nothing and name what is wrong; copies are recorded, so a withdrawal
/// lists them; a withdrawn publication scope does not stop a clinical export.
#[test]
fn dicom_exports_refuse_what_they_must_and_are_listed_by_withdrawals() {
    let s = TestStore::new();
    let (cid, caps) = store_with_views(&s);
    let out = s.path("dicom");
    let o = out.to_str().unwrap();
    s.fails(
        &[
            "export",
            "dicom",
            &caps[0].0,
            "cap_0000000000000000",
            "--out",
            o,
        ],
        &["unknown capture cap_0000000000000000"],
    );
    assert!(
        !out.join(format!("{}.dcm", caps[0].0)).exists(),
        "a file was written"
    );
    s.ok(&["export", "dicom", &caps[0].0, "--out", o]);
    s.fails(
        &["export", "dicom", &caps[0].0, "--out", o],
        &["already exists", "--force"],
    );
    s.ok(&["export", "dicom", &caps[0].0, "--out", o, "--force"]);
    s.ok(&[
        "consent",
        "withdraw",
        &cid,
        "--scope",
        "publication",
        "--reason",
        "asked",
    ]);
    s.ok(&["export", "dicom", &caps[1].0, "--out", o]);
    // A use the consent no longer allows is refused, naming the consent.
    s.fails(
        &[
            "export",
            "dicom",
            &caps[2].0,
            "--out",
            o,
            "--purpose",
            "publication",
        ],
        &[cid.as_str(), "publication"],
    );
    assert!(!out.join(format!("{}.dcm", caps[2].0)).exists());
    let w = s.ok(&[
        "consent",
        "withdraw",
        &cid,
        "--scope",
        "all",
        "--reason",
        "erasure",
        "--purge-clinical-record",
        "--confirm",
    ]);
    let outside: Vec<String> = w["certificate"]["outside_copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    for c in [&caps[0].0, &caps[1].0] {
        assert!(
            outside.iter().any(|p| p.ends_with(&format!("{c}.dcm"))),
            "{c}.dcm not listed: {outside:?}"
        );
    }
    // Purged: exporting it again names it.
    s.fails(
        &["export", "dicom", &caps[0].0, "--out", o, "--force"],
        &[caps[0].0.as_str()],
    );
}

/// Parse a bundle with `fhir.resources` (R4B or R5 models): the structure is valid.
fn fhir_parses(python: &str, file: &Path, r5: bool) {
    let module = if r5 {
        "fhir.resources.bundle"
    } else {
        "fhir.resources.R4B.bundle"
    };
    let script = format!(
        "import json, sys\nfrom {module} import Bundle\nb = Bundle.model_validate(json.load(open(sys.argv[1])))\nprint(len(b.entry))"
    );
    let (ok, text) = run(python, &["-c", &script, file.to_str().unwrap()]);
    assert!(ok, "{} does not parse: {text}", file.display());
}

fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

/// The purposes a Consent permits, in either release.
fn permitted(consent: &Value, r5: bool) -> Vec<String> {
    let codes = |p: &Value| -> Vec<String> {
        p["purpose"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["code"].as_str().unwrap().to_string())
            .collect()
    };
    if r5 {
        consent["provision"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(codes)
            .collect()
    } else {
        consent["provision"]["provision"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == "permit")
            .flat_map(codes)
            .collect()
    }
}

/// Both bundles parse; the Consent's status and purposes follow the store before and after
/// withdrawals; photos carry their SHA-256, visits their products and lots, and no name.
#[test]
fn fhir_bundles_parse_and_follow_withdrawals() {
    let Some(python) = tools("fhir_bundles_parse_and_follow_withdrawals") else {
        return;
    };
    let has_fhir = run(&python, &["-c", "import fhir.resources"]).0;
    if !has_fhir {
        assert!(
            std::env::var("SAMEFRAME_TEST_DICOM_TOOLS").as_deref() != Ok("required"),
            "fhir.resources missing (scripts/dicom-tools.sh)"
        );
        return;
    }
    let s = TestStore::new();
    s.ok(&["patient", "add", "--ref", "F-0001", "--name", "Ada Example"]);
    let cid = s.ok(&[
        "consent",
        "grant",
        "--patient",
        "F-0001",
        "--scope",
        "clinical,teaching,publication",
        "--signed-by",
        "F-0001",
        "--signed-on",
        "2026-01-05",
        "--expires",
        "2030-01-05",
    ])["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let visit = s.ok(&[
        "visit",
        "add",
        "--patient",
        "F-0001",
        "--area",
        "face",
        "--product",
        "Profhilo",
        "--lot",
        "L2311",
    ])["visit_id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = s.write("f.jpg", &images::jpeg(320, 240, 901));
    let cap = s.ok(&import_args(
        f.to_str().unwrap(),
        "F-0001",
        &cid,
        "face",
        "frontal",
        &["--visit", &visit],
    ));
    let export = |name: &str, version: &str| -> Value {
        let out = s.path(name);
        s.ok(&[
            "export",
            "fhir",
            "--patient",
            "F-0001",
            "--fhir-version",
            version,
            "--out",
            out.to_str().unwrap(),
            "--force",
        ]);
        fhir_parses(&python, &out, version == "r5");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(!text.contains("Ada Example"), "the name is in the bundle");
        serde_json::from_str(&text).unwrap()
    };
    for (version, media) in [("r4b", "Media"), ("r5", "DocumentReference")] {
        let r5 = version == "r5";
        let b = export(&format!("before-{version}.json"), version);
        let consent = resources(&b, "Consent")[0];
        assert_eq!(consent["status"], "active");
        assert_eq!(
            permitted(consent, r5),
            ["TREAT", "TRAIN", "HMARKT"],
            "{consent}"
        );
        let photo = resources(&b, media)[0];
        assert!(
            photo["identifier"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["value"] == cap["sha256"]),
            "{photo}"
        );
        let procedure = resources(&b, "Procedure")[0];
        assert!(
            procedure.to_string().contains("Profhilo lot L2311"),
            "{procedure}"
        );
    }
    s.ok(&[
        "consent",
        "withdraw",
        &cid,
        "--scope",
        "publication",
        "--reason",
        "asked",
    ]);
    for version in ["r4b", "r5"] {
        let b = export(&format!("after-pub-{version}.json"), version);
        let consent = resources(&b, "Consent")[0];
        assert_eq!(consent["status"], "active");
        assert_eq!(
            permitted(consent, version == "r5"),
            ["TREAT", "TRAIN"],
            "{consent}"
        );
    }
    s.ok(&[
        "consent", "withdraw", &cid, "--scope", "all", "--reason", "erasure",
    ]);
    for version in ["r4b", "r5"] {
        let b = export(&format!("after-all-{version}.json"), version);
        let consent = resources(&b, "Consent")[0];
        assert_eq!(consent["status"], "inactive");
        assert!(permitted(consent, version == "r5").is_empty(), "{consent}");
    }
}

/// Rewrite a zip with python's zipfile: `edit` is a Python snippet over `files` (a dict of
/// name → bytes, in order).
fn rewrite_zip(src: &Path, dst: &Path, edit: &str) {
    let script = format!(
        "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfiles = {{n: z.read(n) for n in z.namelist()}}\n{edit}\nwith zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as o:\n    [o.writestr(n, b) for n, b in files.items()]\n"
    );
    let (ok, text) = run(
        "python3",
        &["-c", &script, src.to_str().unwrap(), dst.to_str().unwrap()],
    );
    assert!(ok, "{text}");
}

/// An audit pack holds the consent, the captures' records, the publications and take-downs,
/// the deletion certificate and the comparability of a published pair, and the audit chain
/// up to its head; `audit pack verify` passes it offline and names each kind of tampering.
#[test]
fn an_audit_pack_verifies_offline_and_catches_each_edit() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("A-0001", "clinical,publication");
    let before = s.write("b.jpg", &images::jpeg(320, 240, 501));
    let b = s.ok(&import_args(
        before.to_str().unwrap(),
        "A-0001",
        &cid,
        "face",
        "frontal",
        &["--captured-at", "2026-03-01T10:00:00"],
    ));
    s.ok(&[
        "publish",
        "record",
        before.to_str().unwrap(),
        "--channel",
        "website",
    ]);
    s.ok(&[
        "consent",
        "withdraw",
        &cid,
        "--scope",
        "publication",
        "--reason",
        "asked",
    ]);
    let pack = s.path("pack.zip");
    let r = s.ok(&[
        "audit",
        "pack",
        "--patient",
        "A-0001",
        "--out",
        pack.to_str().unwrap(),
    ]);
    let head = s.ok(&["audit", "verify"]);
    assert_eq!(r["head_hash"], head["head_hash"], "{r} {head}");
    let ok = s.ok(&["audit", "pack", "verify", pack.to_str().unwrap()]);
    assert_eq!(ok["ok"], true, "{ok}");
    // What it holds.
    let (_, list) = run(
        "python3",
        &[
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
            pack.to_str().unwrap(),
        ],
    );
    for want in [
        "README.txt",
        "manifest.json",
        "audit/chain.jsonl",
        "records/publications.json",
    ] {
        assert!(list.lines().any(|l| l == want), "{want} missing: {list}");
    }
    assert!(
        list.lines()
            .any(|l| l.starts_with("certificates/") && l.ends_with(".json")),
        "{list}"
    );
    assert!(list.contains(&format!(
        "records/captures/{}.json",
        b["capture_id"].as_str().unwrap()
    )));
    assert!(!list.contains("photos/"), "photos without --include-photos");
    s.fails(
        &[
            "audit",
            "pack",
            "--patient",
            "A-0001",
            "--out",
            pack.to_str().unwrap(),
        ],
        &["already exists"],
    );
    // Each edit is named.
    let cases = [
        (
            "changed",
            "k = [n for n in files if n.startswith('records/consents/')][0]\nfiles[k] = files[k].replace(b'withdrawn', b'active   ')",
            "changed",
        ),
        (
            "removed",
            "k = [n for n in files if n.startswith('records/captures/')][0]\ndel files[k]",
            "removed",
        ),
        ("added", "files['records/extra.json'] = b'{}'", "added"),
        (
            "reordered",
            "lines = files['audit/chain.jsonl'].split(b'\\n')\nlines[0], lines[1] = lines[1], lines[0]\nfiles['audit/chain.jsonl'] = b'\\n'.join(lines)",
            "follows entry",
        ),
    ];
    for (name, edit, said) in cases {
        let bad = s.path(&format!("{name}.zip"));
        rewrite_zip(&pack, &bad, edit);
        let out = s
            .command(&["audit", "pack", "verify", bad.to_str().unwrap()])
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{name}: passed: {all}");
        assert!(all.contains(said), "{name}: {all}");
    }
}
