//! Publication copies made by the kit (`publish prepare`), through the real binary: refusals
//! with nothing written, no metadata left (exiftool), caption and burned-in note (tesseract),
//! de-identification, the C2PA manifest checked by an independent implementation (c2pa-python),
//! review of prepared, re-encoded and altered copies, and the take-down list after a
//! withdrawal. `scripts/test.sh` installs the tools and sets `SAMEFRAME_TEST_PUBLISH_TOOLS=required`:
//! then a missing tool fails the test instead of skipping its part.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use sameframe::publish::strip::header_segments;
use serde_json::Value;
use util::TestStore;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Whether an external tool answers; when it does not and the run requires it, fail.
fn tool(name: &str, probe: &[&str]) -> bool {
    let ok = Command::new(name)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("SAMEFRAME_TEST_PUBLISH_TOOLS").as_deref() != Ok("required"),
            "{name} is missing (scripts/setup-debian.sh installs it)"
        );
        eprintln!("notice: {name} is not installed; skipping its part of this test");
    }
    ok
}

fn python() -> Option<String> {
    let py = std::env::var("SAMEFRAME_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import c2pa"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("SAMEFRAME_TEST_PUBLISH_TOOLS").as_deref() != Ok("required"),
            "c2pa-python is missing (scripts/dicom-tools.sh installs it)"
        );
        eprintln!("notice: c2pa-python is not installed; skipping the independent manifest check");
        return None;
    }
    Some(py)
}

/// A store with a signing identity, patient P with a consent of `scopes` (recognisable when
/// `identifiable`), and the astronaut photo as a baseline with a brighter copy as follow-up
/// (sun exposure recorded). The baseline is imported from `before_file`. Returns (consent,
/// baseline, follow-up).
fn store_with_pair(
    s: &TestStore,
    scopes: &str,
    identifiable: bool,
    before_file: &Path,
) -> (String, String, String) {
    s.ok(&["publish", "keys", "init", "--clinic", "Example Clinic"]);
    s.ok(&["patient", "add", "--ref", "P-1"]);
    let mut grant = vec![
        "consent",
        "grant",
        "--patient",
        "P-1",
        "--scope",
        scopes,
        "--signed-by",
        "P-1",
        "--signed-on",
        "2026-01-05",
    ];
    if identifiable {
        grant.push("--identifiable");
    }
    let consent = s.ok(&grant)["consent_id"].as_str().unwrap().to_string();
    let before = s.import(
        before_file,
        "P-1",
        &consent,
        &["--captured-at", "2026-02-01T10:00:00"],
    );
    let img = image::open(fixture("faces/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let brighter = image::RgbImage::from_fn(img.width(), img.height(), |x, y| {
        image::Rgb(
            img.get_pixel(x, y)
                .0
                .map(|v| (f32::from(v) * 1.03).min(255.0) as u8),
        )
    });
    let after_file = s.path("after.jpg");
    brighter.save(&after_file).unwrap();
    let after = s.import(
        &after_file,
        "P-1",
        &consent,
        &[
            "--captured-at",
            "2026-04-01T10:00:00",
            "--confounder",
            "recent_sun_exposure=beach holiday",
        ],
    );
    let id = |v: &Value| v["capture_id"].as_str().unwrap().to_string();
    (consent, id(&before), id(&after))
}

fn publications(s: &TestStore) -> usize {
    s.ok(&["publish", "list"]).as_array().unwrap().len()
}

fn prepare(s: &TestStore, caps: &[&str], extra: &[&str]) -> Value {
    let mut a = vec!["publish", "prepare"];
    a.extend_from_slice(caps);
    a.extend_from_slice(extra);
    s.ok(&a)
}

#[test]
fn refusals_name_their_subject_and_write_nothing() {
    let s = TestStore::new();
    let out = s.path("copy.jpg");
    let o = out.to_str().unwrap();
    s.ok(&["patient", "add", "--ref", "P-1"]);
    let c = s.ok(&[
        "consent",
        "grant",
        "--patient",
        "P-1",
        "--scope",
        "clinical,teaching",
        "--signed-by",
        "P-1",
        "--signed-on",
        "2026-01-05",
        "--identifiable",
    ])["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let cap = s.import(&fixture("faces/astronaut.jpg"), "P-1", &c, &[])["capture_id"]
        .as_str()
        .unwrap()
        .to_string();
    // No signing identity yet.
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "website",
            "--out",
            o,
        ],
        &["publish keys init"],
    );
    s.ok(&["publish", "keys", "init"]);
    s.fails(
        &["publish", "keys", "init"],
        &["already has one", "--replace"],
    );
    // The consent has no publication scope.
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "website",
            "--out",
            o,
        ],
        &[&c, "publication"],
    );
    // Unknown channel, capture, layout; an eye bar; an output in the data dir or of another kind.
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "tiktok",
            "--out",
            o,
        ],
        &["unknown channel", "website"],
    );
    s.fails(
        &[
            "publish",
            "prepare",
            "cap_nope",
            "--channel",
            "teaching",
            "--out",
            o,
        ],
        &["cap_nope"],
    );
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--deidentify",
            "eye-bar",
            "--out",
            o,
        ],
        &["not de-identification"],
    );
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--layout",
            "side-by-side",
            "--out",
            o,
        ],
        &["side-by-side", "1 capture"],
    );
    let inside = s.data.join("copy.jpg");
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--deidentify",
            "crop",
            "--zone",
            "perioral",
            "--out",
            inside.to_str().unwrap(),
        ],
        &["inside the data directory"],
    );
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--out",
            s.path("copy.gif").to_str().unwrap(),
        ],
        &[".jpg"],
    );
    let nowhere = s.path("no-such-folder").join("copy.jpg");
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--deidentify",
            "crop",
            "--zone",
            "perioral",
            "--out",
            nowhere.to_str().unwrap(),
        ],
        &["no-such-folder", "does not exist"],
    );
    // Teaching requires de-identification, and a face photo needs its zone named.
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--out",
            o,
        ],
        &["teaching channel requires de-identified", "--deidentify"],
    );
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--deidentify",
            "crop",
            "--out",
            o,
        ],
        &[&cap, "--zone", "cheeks"],
    );
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--deidentify",
            "crop",
            "--zone",
            "ears",
            "--out",
            o,
        ],
        &["unknown zone \"ears\""],
    );
    // A zone that keeps the whole face is not de-identification.
    let cal = s.path("cal");
    std::fs::create_dir_all(&cal).unwrap();
    let clinic = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("calibration/publication.toml"),
    )
    .unwrap()
        + "\n[zone.everything]\nwhole_frame = true\n";
    std::fs::write(cal.join("publication.toml"), clinic).unwrap();
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            "--channel",
            "teaching",
            "--deidentify",
            "mask",
            "--zone",
            "everything",
            "--calibration-dir",
            cal.to_str().unwrap(),
            "--out",
            o,
        ],
        &[&cap, "face", "still visible"],
    );
    // Another patient's capture in a pair.
    let c2 = s.patient_with_consent("P-2", "clinical,publication,teaching");
    let other = s.import(&fixture("textures/chelsea.jpg"), "P-2", &c2, &[])["capture_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.fails(
        &[
            "publish",
            "prepare",
            &cap,
            &other,
            "--channel",
            "teaching",
            "--deidentify",
            "crop",
            "--zone",
            "perioral",
            "--out",
            o,
        ],
        &[&other, "another patient"],
    );
    // Withdrawn and expired consents.
    s.ok(&[
        "consent",
        "withdraw",
        &c2,
        "--scope",
        "teaching",
        "--reason",
        "asked by phone",
        "--confirm",
    ]);
    s.fails(
        &[
            "publish",
            "prepare",
            &other,
            "--channel",
            "teaching",
            "--deidentify",
            "crop",
            "--out",
            o,
        ],
        &[&c2, "withdrawn"],
    );
    s.ok(&["patient", "add", "--ref", "P-3"]);
    let c3 = s.ok(&[
        "consent",
        "grant",
        "--patient",
        "P-3",
        "--scope",
        "clinical,publication",
        "--signed-by",
        "P-3",
        "--signed-on",
        "2026-01-05",
        "--expires",
        "2026-02-01",
        "--identifiable",
    ])["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Imported while the consent stood (the debug build's clock is moved back for it).
    let coffee = fixture("textures/coffee.jpg");
    let mut imp = s.command(&util::import_args(
        coffee.to_str().unwrap(),
        "P-3",
        &c3,
        "frontal",
    ));
    let done = imp.env("SAMEFRAME_TODAY", "2026-01-20").output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let old: Value = serde_json::from_slice(&done.stdout).unwrap();
    let old = old["capture_id"].as_str().unwrap().to_string();
    s.fails(
        &[
            "publish",
            "prepare",
            &old,
            "--channel",
            "website",
            "--out",
            o,
        ],
        &[&c3, "expired"],
    );
    assert!(!out.exists() && !s.path("copy.txt").exists());
    assert_eq!(publications(&s), 0);
}

#[test]
fn a_pair_below_the_minimum_grade_is_refused_unless_overridden_with_a_reason() {
    let s = TestStore::new();
    let (c, before, _) = store_with_pair(
        &s,
        "clinical,publication",
        true,
        &fixture("faces/astronaut.jpg"),
    );
    let other = s.import(
        &fixture("textures/rocket.jpg"),
        "P-1",
        &c,
        &["--captured-at", "2026-05-01T10:00:00"],
    )["capture_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.path("pair.jpg");
    let o = out.to_str().unwrap();
    let err = s.fails(
        &[
            "publish",
            "prepare",
            &before,
            &other,
            "--channel",
            "website",
            "--out",
            o,
        ],
        &["grade", "below the clinic's minimum C", "--override-grade"],
    );
    assert!(
        err.contains(&format!("{other}: the follow-up")),
        "the reasons name the follow-up: {err}"
    );
    assert!(!out.exists());
    assert_eq!(publications(&s), 0);
    let p = prepare(
        &s,
        &[&before, &other],
        &[
            "--channel",
            "website",
            "--out",
            o,
            "--override-grade",
            "teaching the difference",
        ],
    );
    assert_eq!(p["grade_override"], "teaching the difference");
    let log = s.ok(&["audit", "log"]).to_string();
    assert!(
        log.contains("teaching the difference"),
        "the override is audited"
    );
}

/// Every tag exiftool finds, as group:name.
fn exif_tags(file: &Path) -> Vec<String> {
    let out = Command::new("exiftool")
        .args(["-j", "-a", "-G1", "-u"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].as_object().unwrap().keys().cloned().collect()
}

/// The groups a metadata-free copy may show: the file itself, and the manifest (JUMBF, with
/// its CBOR and salt boxes).
const ALLOWED_GROUPS: &[&str] = &[
    "SourceFile",
    "ExifTool",
    "System",
    "File",
    "Composite",
    "JUMBF",
    "CBOR",
    "Jpeg2000",
];

#[test]
fn a_prepared_pair_has_no_metadata_a_caption_a_legible_note_and_a_verifiable_manifest() {
    let s = TestStore::new();
    let has_exiftool = tool("exiftool", &["-ver"]);
    // Give the baseline every kind of metadata before it is imported.
    let source = s.path("before.jpg");
    std::fs::copy(fixture("faces/astronaut.jpg"), &source).unwrap();
    if has_exiftool {
        let st = Command::new("exiftool")
            .args([
                "-overwrite_original",
                "-Make=Canon",
                "-Model=EOS R5",
                "-SerialNumber=SN-12345",
                "-Software=Studio 9",
                "-GPSLatitude=48.85",
                "-GPSLatitudeRef=N",
                "-GPSLongitude=2.35",
                "-GPSLongitudeRef=E",
                "-XMP:Creator=Dr Example",
                "-IPTC:Keywords=patient",
                "-Comment=patient P-1",
                "-DateTimeOriginal=2026:02:01 10:00:00",
            ])
            .arg(&source)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let (_, before, after) = store_with_pair(&s, "clinical,publication", true, &source);
    let out = s.path("pair.jpg");
    let p = prepare(
        &s,
        &[&after, &before],
        &["--channel", "social", "--out", out.to_str().unwrap()],
    );
    assert_eq!(p["layout"], "side-by-side");
    assert_eq!(p["grade"], "C");
    assert_eq!(
        p["captures"][0]["capture_id"],
        before.as_str(),
        "oldest first"
    );
    assert_eq!(p["captures"][0]["label"], "before");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        sameframe::ids::sha256_hex(&bytes),
        p["sha256"].as_str().unwrap()
    );
    let img = image::load_from_memory(&bytes).unwrap();
    assert!(img.width() <= 1080 && img.height() <= 1080, "social size");
    // The caption: dates, the clinic's note, the disclosure.
    let caption = std::fs::read_to_string(s.path("pair.txt")).unwrap();
    for needle in [
        "BEFORE - 2026-02-01",
        "AFTER - 2026-04-01",
        "Individual results vary",
        "Recent sun exposure",
        "beach holiday",
    ] {
        assert!(caption.contains(needle), "{needle:?} in {caption}");
    }
    if has_exiftool {
        for tag in exif_tags(&out) {
            let group = tag.split(':').next().unwrap();
            assert!(
                ALLOWED_GROUPS.contains(&group),
                "metadata left in the copy: {tag}"
            );
        }
    }
    // The burned-in note and labels, read back by OCR.
    if tool("tesseract", &["--version"]) {
        let o = Command::new("tesseract")
            .arg(&out)
            .arg("-")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_lowercase();
        for needle in ["individual results vary", "before", "after"] {
            assert!(text.contains(needle), "OCR lacks {needle:?}: {text}");
        }
    }
    // Independent verification of the manifest.
    if let Some(py) = python() {
        let ca = s.path("ca.pem");
        s.ok(&["publish", "keys", "export-ca", ca.to_str().unwrap()]);
        let state = |file: &Path, ca: Option<&Path>| -> String {
            let script = r#"
import json, sys, c2pa
path = sys.argv[1]
ctx = None
if len(sys.argv) > 2:
    settings = c2pa.Settings.from_json(json.dumps({"trust": {"user_anchors": open(sys.argv[2]).read()}, "verify": {"verify_trust": True}}))
    ctx = c2pa.Context(settings)
with open(path, "rb") as f:
    r = c2pa.Reader("image/jpeg", f, context=ctx) if ctx else c2pa.Reader("image/jpeg", f)
    m = json.loads(r.json())
active = m["manifests"][m["active_manifest"]]
titles = [i.get("title") for i in active.get("ingredients", [])]
print(json.dumps({"state": m.get("validation_state"), "ingredients": titles}))
"#;
            let mut c = Command::new(&py);
            c.args(["-c", script]).arg(file);
            if let Some(ca) = ca {
                c.arg(ca);
            }
            let o = c.output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            let t = v["ingredients"].to_string();
            assert!(t.contains(&before) && t.contains(&after), "ingredients {t}");
            v["state"].as_str().unwrap().to_string()
        };
        assert_eq!(state(&out, None), "Valid");
        assert_eq!(state(&out, Some(&ca)), "Trusted");
        let altered = s.path("altered.jpg");
        std::fs::write(&altered, alter_one_byte(&bytes)).unwrap();
        assert_eq!(state(&altered, Some(&ca)), "Invalid");
    }
}

/// The copy with one byte of a quantisation table changed: it still decodes, to slightly
/// different pixels. The table is found by walking the segments (the manifest's bytes can hold
/// the marker's two bytes by chance).
fn alter_one_byte(jpeg: &[u8]) -> Vec<u8> {
    let at = segment(jpeg, 0xDB).start;
    let mut b = jpeg.to_vec();
    b[at + 10] = b[at + 10].wrapping_add(1);
    b
}

/// Where the first segment with `marker` is, among the segments before the scan.
fn segment(jpeg: &[u8], marker: u8) -> std::ops::Range<usize> {
    header_segments(jpeg)
        .into_iter()
        .find(|(m, _)| *m == marker)
        .unwrap_or_else(|| panic!("no {marker:X} segment before the scan"))
        .1
}

fn review(s: &TestStore, files: &[&Path]) -> Vec<Value> {
    let mut a = vec!["review".to_string()];
    a.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    s.ok(&args)["images"].as_array().unwrap().clone()
}

fn sources(img: &Value) -> Vec<String> {
    img["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["capture_id"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(img: &'a Value, kind: &str) -> Option<&'a Value> {
    img["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
}

#[test]
fn review_traces_prepared_copies_by_manifest_and_catches_altered_and_false_ones() {
    let s = TestStore::new();
    let (_, before, after) = store_with_pair(
        &s,
        "clinical,publication",
        true,
        &fixture("faces/astronaut.jpg"),
    );
    // The follow-up is the baseline's pixels, a little brighter: a look-alike the manifest
    // tells apart.
    let pair = s.path("pair.jpg");
    let single = s.path("single.jpg");
    let stacked = s.path("stacked.png");
    prepare(
        &s,
        &[&before, &after],
        &["--channel", "website", "--out", pair.to_str().unwrap()],
    );
    prepare(
        &s,
        &[&after],
        &["--channel", "website", "--out", single.to_str().unwrap()],
    );
    prepare(
        &s,
        &[&before, &after],
        &[
            "--channel",
            "print",
            "--layout",
            "stacked",
            "--out",
            stacked.to_str().unwrap(),
        ],
    );
    // A social network's copy: resized, re-encoded, the manifest gone.
    let social = s.path("social.jpg");
    let img = image::open(&pair).unwrap();
    img.resize(
        img.width() * 2 / 3,
        img.height() * 2 / 3,
        image::imageops::FilterType::Triangle,
    )
    .save(&social)
    .unwrap();
    std::fs::copy(s.path("pair.txt"), s.path("social.txt")).unwrap();
    // Altered after signing.
    let altered = s.path("altered.jpg");
    std::fs::write(&altered, alter_one_byte(&std::fs::read(&pair).unwrap())).unwrap();
    std::fs::copy(s.path("pair.txt"), s.path("altered.txt")).unwrap();
    let r = review(&s, &[&pair, &single, &stacked, &social, &altered]);
    for (img, want) in r
        .iter()
        .zip([vec![&before, &after], vec![&after], vec![&before, &after]])
    {
        assert_eq!(
            sources(img),
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{img}"
        );
        let f =
            finding(img, "provenance").unwrap_or_else(|| panic!("no provenance finding: {img}"));
        assert_eq!(f["severity"], "info", "{img}");
        assert!(
            f["message"].as_str().unwrap().contains("the pixels agree"),
            "{f}"
        );
        assert!(
            finding(img, "caption").is_none(),
            "the kit's caption passes: {img}"
        );
    }
    assert_eq!(sources(&r[3]).len(), 2, "{}", r[3]);
    assert!(
        finding(&r[3], "provenance").is_none(),
        "no manifest left: {}",
        r[3]
    );
    let f = finding(&r[4], "provenance").unwrap();
    assert_eq!(f["severity"], "fail");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("altered after signing"),
        "{f}"
    );
    assert_eq!(r[4]["verdict"], "fail");
}

#[test]
fn a_manifest_naming_a_capture_the_pixels_do_not_show_is_a_finding() {
    let s = TestStore::new();
    let (_, before, _) = store_with_pair(
        &s,
        "clinical,publication",
        true,
        &fixture("faces/astronaut.jpg"),
    );
    // Sign another photo with this clinic's own identity, claiming the baseline.
    let store = s.open_lib();
    let id = store.signing_identity().unwrap().unwrap();
    let cap = store.capture(&before).unwrap();
    drop(store);
    let img = image::open(fixture("textures/rocket.jpg"))
        .unwrap()
        .to_rgb8();
    let jpeg = sameframe::publish::strip::jpeg(&img, 90).unwrap();
    let claim = sameframe::publish::provenance::ProvenanceClaim {
        store_id: s.ok(&["status"])["store_id"].as_str().unwrap().to_string(),
        publication_id: "pub_forged".into(),
        channel: "website".into(),
        scope: "publication".into(),
        layout: "single".into(),
        captures: vec![sameframe::publish::provenance::ClaimedCapture {
            capture_id: cap.id.clone(),
            sha256: cap.sha256.clone(),
            label: "single".into(),
            taken: "2026-02-01".into(),
            panel: [0, 0, img.width(), img.height()],
            crop: [0, 0, cap.width, cap.height],
        }],
        consents: vec![cap.consent_id.clone()],
        checked_on: "2026-11-30".into(),
        grade: None,
        grade_override: None,
        deidentified: None,
        actions: vec![sameframe::publish::provenance::ClaimedAction {
            action: "c2pa.opened".into(),
            description: "opened".into(),
            capture_id: Some(cap.id.clone()),
        }],
    };
    use sameframe::publish::provenance::ProvenanceSigner;
    let signed = sameframe_interop::provenance::ClinicSigner::new(id)
        .sign(&sameframe::publish::provenance::ToSign {
            image: &jpeg,
            format: "image/jpeg",
            title: "forged.jpg",
            claim: &claim,
        })
        .unwrap();
    let forged = s.write("forged.jpg", &signed);
    let r = review(&s, &[&forged]);
    let f = finding(&r[0], "provenance").unwrap();
    assert_eq!(f["severity"], "fail", "{}", r[0]);
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!("manifest says {before}, pixels do not match")),
        "{f}"
    );
}

#[test]
fn de_identification_crops_to_or_masks_around_the_treated_zone() {
    let s = TestStore::new();
    let (_, before, _) = store_with_pair(
        &s,
        "clinical,publication,teaching",
        false,
        &fixture("faces/astronaut.jpg"),
    );
    let o = s.path("plain.jpg");
    s.fails(
        &[
            "publish",
            "prepare",
            &before,
            "--channel",
            "website",
            "--out",
            o.to_str().unwrap(),
        ],
        &[
            "does not allow the patient to be recognisable",
            "--deidentify",
        ],
    );
    let original = image::open(fixture("faces/astronaut.jpg")).unwrap();
    let crop = s.path("crop.jpg");
    let p = prepare(
        &s,
        &[&before],
        &[
            "--channel",
            "website",
            "--deidentify",
            "crop",
            "--zone",
            "perioral",
            "--out",
            crop.to_str().unwrap(),
        ],
    );
    let c = &p["captures"][0]["crop"];
    let (cw, ch) = (c[2].as_u64().unwrap() as u32, c[3].as_u64().unwrap() as u32);
    assert!(
        cw < original.width() / 2 && ch < original.height() / 3,
        "a crop to the mouth: {c}"
    );
    assert!(p["deidentified"].as_str().unwrap().contains("perioral"));
    let mask = s.path("mask.png");
    let p = prepare(
        &s,
        &[&before],
        &[
            "--channel",
            "teaching",
            "--deidentify",
            "mask",
            "--zone",
            "cheeks",
            "--out",
            mask.to_str().unwrap(),
            "--no-burn-in",
        ],
    );
    let panel = &p["captures"][0]["panel"];
    let [x, y, w, h] = [0, 1, 2, 3].map(|i| panel[i].as_u64().unwrap() as u32);
    assert_eq!(
        (w, h),
        (original.width(), original.height()),
        "a mask keeps the frame"
    );
    let m = image::open(&mask).unwrap().to_rgb8();
    let grey = (y..y + h)
        .flat_map(|yy| (x..x + w).map(move |xx| (xx, yy)))
        .filter(|&(xx, yy)| m.get_pixel(xx, yy).0 == [128, 128, 128])
        .count();
    let share = grey as f64 / f64::from(w * h);
    assert!(share > 0.8 && share < 0.995, "masked share {share}");
    // The eyes and the mouth are masked; the cheeks are not.
    let store = s.open_lib();
    let img = store.capture_image(&before).unwrap().to_rgb8();
    let lm = sameframe::analysis::pose::face::models()
        .unwrap()
        .face(&img)
        .unwrap()
        .unwrap();
    let at = |i: usize| {
        m.get_pixel(x + lm.points[i][0] as u32, y + lm.points[i][1] as u32)
            .0
    };
    assert_eq!(at(13), [128, 128, 128], "upper lip masked");
    assert_eq!(at(159), [128, 128, 128], "right eye masked");
    assert_ne!(at(50), [128, 128, 128], "right cheek shown");
    assert_ne!(at(280), [128, 128, 128], "left cheek shown");
    // The copy records what was done.
    let list = s.ok(&["publish", "list"]);
    assert!(
        list.to_string()
            .contains("masked outside the treated zone cheeks"),
        "{list}"
    );
}

#[test]
fn a_withdrawal_lists_prepared_copies_for_take_down_with_channel_and_hash() {
    let s = TestStore::new();
    let (consent, before, after) = store_with_pair(
        &s,
        "clinical,publication",
        true,
        &fixture("faces/astronaut.jpg"),
    );
    let out = s.path("web.jpg");
    let p = prepare(
        &s,
        &[&before, &after],
        &["--channel", "website", "--out", out.to_str().unwrap()],
    );
    // The copy's records are bound to the audit chain like every other row.
    s.ok(&["verify"]);
    s.ok(&["audit", "verify"]);
    let w = s.ok(&[
        "consent",
        "withdraw",
        &consent,
        "--scope",
        "publication",
        "--reason",
        "asked in clinic",
        "--confirm",
    ]);
    // The copy on this station's disk is listed for deletion (once per capture it holds).
    let copies: Vec<&str> = w["certificate"]["outside_copies"]
        .as_array()
        .unwrap_or_else(|| panic!("{w}"))
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert_eq!(copies.len(), 2, "{w}");
    assert!(copies.iter().all(|p| p.ends_with("web.jpg")), "{copies:?}");
    let list = s.ok(&["takedown", "list", "--open"]);
    let t = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["takedown_id"] == p["publication_id"])
        .unwrap_or_else(|| panic!("prepared copy not listed: {list}"));
    assert_eq!(t["channel"], "website");
    assert_eq!(t["file_sha256"], p["sha256"]);
    assert_eq!(t["file_name"], "web.jpg");
    // And the consent no longer allows a new copy.
    s.fails(
        &[
            "publish",
            "prepare",
            &before,
            "--channel",
            "website",
            "--out",
            s.path("again.jpg").to_str().unwrap(),
        ],
        &[&consent, "withdrawn"],
    );
}

#[test]
fn the_clinic_can_import_its_own_certificate_chain() {
    if !tool("openssl", &["version"]) {
        return;
    }
    let s = TestStore::new();
    let d = s.dir.path();
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    // A throwaway CA and a leaf it issues for signing (C2PA refuses a self-signed leaf).
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ca.key",
    ]);
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-sha256",
        "-days",
        "30",
        "-subj",
        "/CN=Test Clinic CA/O=Test Clinic",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "leaf.ec",
    ]);
    run(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "leaf.ec", "-out", "leaf.key",
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        "leaf.key",
        "-subj",
        "/CN=Test Clinic signing/O=Test Clinic",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(d.join("ext.cnf"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nauthorityKeyIdentifier=keyid\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        "ext.cnf",
        "-out",
        "leaf.pem",
    ]);
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(d.join("leaf.pem")).unwrap(),
        std::fs::read_to_string(d.join("ca.pem")).unwrap()
    );
    std::fs::write(d.join("chain.pem"), chain).unwrap();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    // A lone self-signed certificate is refused.
    s.fails(
        &[
            "publish",
            "keys",
            "init",
            "--cert",
            &p("ca.pem"),
            "--key",
            &p("ca.key"),
        ],
        &["self-signed", "--ca"],
    );
    let v = s.ok(&[
        "publish",
        "keys",
        "init",
        "--cert",
        &p("chain.pem"),
        "--key",
        &p("leaf.key"),
    ]);
    assert_eq!(v["origin"], "imported");
    assert!(
        v["subject"]
            .as_str()
            .unwrap()
            .contains("Test Clinic signing"),
        "{v}"
    );
    let shown = s.ok(&["publish", "keys", "show"]);
    assert_eq!(shown["certificate_sha256"], v["certificate_sha256"]);
    assert!(
        !shown.to_string().contains("PRIVATE KEY"),
        "the key is never shown"
    );
    let log = s.ok(&["audit", "log"]).to_string();
    assert!(!log.contains("PRIVATE KEY"), "the key is never audited");
}

/// The signed copy's APP11 segments (its C2PA manifest) put into `jpeg` after its SOI, as an
/// editor that keeps the manifest would save an edited copy.
fn with_manifest_of(signed: &[u8], jpeg: &[u8]) -> Vec<u8> {
    let app11: Vec<u8> = header_segments(signed)
        .into_iter()
        .filter(|(m, _)| *m == 0xEB)
        .flat_map(|(_, r)| signed[r].to_vec())
        .collect();
    assert!(!app11.is_empty(), "the signed copy has a manifest");
    let mut out = jpeg[..2].to_vec();
    out.extend(app11);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn every_prepared_variant_is_traced_and_every_altered_one_is_flagged() {
    let s = TestStore::new();
    let (_, before, after) = store_with_pair(
        &s,
        "clinical,publication,teaching",
        true,
        &fixture("faces/astronaut.jpg"),
    );
    let variants: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![&before], vec!["--channel", "website"]),
        (vec![&after], vec!["--channel", "social"]),
        (vec![&before, &after], vec!["--channel", "website"]),
        (
            vec![&before, &after],
            vec!["--channel", "social", "--layout", "stacked"],
        ),
        (
            vec![&before, &after],
            vec!["--channel", "print", "--no-burn-in"],
        ),
        (
            vec![&before, &after],
            vec![
                "--channel",
                "teaching",
                "--deidentify",
                "crop",
                "--zone",
                "perioral",
            ],
        ),
        (
            vec![&before, &after],
            vec![
                "--channel",
                "teaching",
                "--deidentify",
                "mask",
                "--zone",
                "cheeks",
            ],
        ),
        (
            vec![&after],
            vec![
                "--channel",
                "teaching",
                "--deidentify",
                "crop",
                "--zone",
                "forehead",
            ],
        ),
    ];
    let mut files = Vec::new();
    let mut altered = Vec::new();
    for (i, (caps, args)) in variants.iter().enumerate() {
        let out = s.path(&format!("v{i}.jpg"));
        let mut a = args.clone();
        a.extend(["--out", out.to_str().unwrap()]);
        let p = prepare(&s, caps, &a);
        assert_eq!(p["captures"].as_array().unwrap().len(), caps.len());
        // Two ways of altering it after signing: a byte of the file, and a local edit of
        // the pixels saved by an editor that keeps the manifest.
        let signed = std::fs::read(&out).unwrap();
        let byte = s.path(&format!("v{i}-byte.jpg"));
        std::fs::write(&byte, alter_one_byte(&signed)).unwrap();
        let mut img = image::load_from_memory(&signed).unwrap().to_rgb8();
        let [x, y, w, h] =
            [0, 1, 2, 3].map(|k| p["captures"][0]["panel"][k].as_u64().unwrap() as u32);
        for yy in y + h / 3..y + h / 2 {
            for xx in x + w / 3..x + w / 2 {
                img.put_pixel(xx, yy, image::Rgb([250, 200, 180]));
            }
        }
        let mut edited = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut edited, 90)
            .encode_image(&img)
            .unwrap();
        let local = s.path(&format!("v{i}-edit.jpg"));
        std::fs::write(&local, with_manifest_of(&signed, &edited)).unwrap();
        files.push((out, caps.iter().map(|c| c.to_string()).collect::<Vec<_>>()));
        altered.push(byte);
        altered.push(local);
    }
    let paths: Vec<&Path> = files.iter().map(|(f, _)| f.as_path()).collect();
    let r = review(&s, &paths);
    for (img, (_, want)) in r.iter().zip(&files) {
        assert_eq!(&sources(img), want, "{img}");
        let f = finding(img, "provenance").unwrap();
        assert_eq!(f["severity"], "info", "{img}");
    }
    let paths: Vec<&Path> = altered.iter().map(PathBuf::as_path).collect();
    let r = review(&s, &paths);
    for img in &r {
        let f = finding(img, "provenance").unwrap_or_else(|| panic!("not flagged: {img}"));
        assert_eq!(f["severity"], "fail", "{img}");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .contains("altered after signing"),
            "{f}"
        );
    }
    eprintln!(
        "prepared copies traced by their manifest: {}/{}; altered copies flagged: {}/{}",
        files.len(),
        files.len(),
        r.len(),
        altered.len()
    );
}

#[test]
fn a_malformed_or_foreign_manifest_is_a_finding_not_a_crash() {
    let s = TestStore::new();
    let (_, before, _) = store_with_pair(
        &s,
        "clinical,publication",
        true,
        &fixture("faces/astronaut.jpg"),
    );
    let out = s.path("copy.jpg");
    prepare(
        &s,
        &[&before],
        &["--channel", "website", "--out", out.to_str().unwrap()],
    );
    let signed = std::fs::read(&out).unwrap();
    // The manifest's boxes cut, garbled, or replaced by random bytes.
    let app11 = segment(&signed, 0xEB).start;
    let mut files = Vec::new();
    for (i, damage) in [7usize, 40, 200, 1000].iter().enumerate() {
        let mut b = signed.clone();
        for k in 0..16 {
            let at = app11 + 4 + damage + k * 13;
            if at < b.len() {
                b[at] = b[at].wrapping_mul(31).wrapping_add(k as u8);
            }
        }
        files.push(s.write(&format!("garbled{i}.jpg"), &b));
    }
    // Signed by another clinic's identity.
    let other = TestStore::new();
    let (_, theirs, _) = store_with_pair(
        &other,
        "clinical,publication",
        true,
        &fixture("faces/astronaut.jpg"),
    );
    let foreign = s.path("foreign.jpg");
    let o = other.ok(&[
        "publish",
        "prepare",
        &theirs,
        "--channel",
        "website",
        "--out",
        foreign.to_str().unwrap(),
    ]);
    assert!(o["sha256"].is_string());
    files.push(foreign);
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let r = review(&s, &paths);
    assert_eq!(r.len(), files.len());
    for img in &r[..4] {
        let f = finding(img, "provenance").unwrap_or_else(|| panic!("{img}"));
        assert_eq!(f["severity"], "fail", "{img}");
    }
    let f = finding(&r[4], "provenance").unwrap();
    assert_eq!(f["severity"], "warn", "{}", r[4]);
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("not by this clinic's certificate"),
        "{f}"
    );
}
