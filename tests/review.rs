//! Compliance review: a generated suite of published derivatives with exact expected sources,
//! 200 unrelated images, consent, pairing, edits, captions, take-downs, through the library and
//! the real binary.

#![allow(clippy::unwrap_used)]

mod util;

use std::collections::BTreeMap;

use sameframe::records::capture::ImportRequest;
use sameframe::records::confounders::ConfounderInput;
use sameframe::records::consent::NewConsent;
use sameframe::records::{Area, Scope, View};
use sameframe::review::matching;
use sameframe::store::Store;
use serde_json::Value;
use util::TestStore;
use util::published::*;

const TEXTURES: [&str; 5] = [
    "faces/astronaut.jpg",
    "textures/coffee.jpg",
    "textures/chelsea.jpg",
    "textures/rocket.jpg",
    "textures/brick.jpg",
];

struct Patient {
    before: (String, image::RgbImage),
    after: (String, image::RgbImage),
}

/// A store (opened through the library) with five patients, each a baseline and a later
/// session. Patient 3's consent has no publication scope.
fn library_store(t: &TestStore) -> (Store, Vec<Patient>) {
    t.ok(&["init"]);
    let store = t.open_lib();
    let mut patients = Vec::new();
    for (i, tex) in TEXTURES.iter().enumerate() {
        let reference = format!("R{i}");
        store.add_patient(&reference, None).unwrap();
        let scopes = if i == 3 {
            vec![Scope::Clinical]
        } else {
            vec![Scope::Clinical, Scope::Publication]
        };
        let consent = store
            .grant_consent(NewConsent {
                identifiable: false,
                patient_ref: &reference,
                scopes,
                signed_by: "patient",
                signed_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
                expires_on: None,
                document: None,
            })
            .unwrap()
            .id;
        let before = scene(tex, 100 + i as u64);
        let after = later_session(&before, 200 + i as u64);
        let mut ids = Vec::new();
        for (k, img) in [&before, &after].iter().enumerate() {
            let bytes = jpeg(img, 92);
            let mut req =
                ImportRequest::new(&bytes, "x", &reference, &consent, Area::Face, View::Frontal);
            let when = format!("2026-0{}-10T10:00:00", 3 + k);
            req.captured_at = Some(&when);
            let conf = [ConfounderInput {
                key: "makeup_present".into(),
                text: Some("foundation".into()),
            }];
            if k == 1 {
                req.confounders = conf.to_vec();
            }
            ids.push(store.import_capture(req).unwrap().capture.id);
        }
        patients.push(Patient {
            before: (ids[0].clone(), before),
            after: (ids[1].clone(), after),
        });
    }
    (store, patients)
}

#[test]
fn recall_on_every_transformation_and_no_false_match() {
    let t = TestStore::uninitialised();
    let (store, patients) = library_store(&t);
    let index = store.review_index().unwrap();
    assert_eq!(index.len(), 10);
    // (category, published image, expected sources in order)
    let mut cases: Vec<(&str, image::RgbImage, Vec<String>)> = Vec::new();
    let mut rng = sameframe::testkit::Rng(77);
    for p in &patients {
        for (id, img) in [&p.before, &p.after] {
            let expect = vec![id.clone()];
            cases.push((
                "resize",
                reencode(&resize(img, 660, 495), 85),
                expect.clone(),
            ));
            cases.push((
                "re-encode",
                reencode(&resize(img, 360, 270), 55),
                expect.clone(),
            ));
            cases.push((
                "watermark",
                reencode(&watermark(&resize(img, 800, 600), 3), 80),
                expect.clone(),
            ));
            cases.push((
                "brightness",
                reencode(&brightness(&resize(img, 700, 525), 1.2), 85),
                expect.clone(),
            ));
            cases.push((
                "brightness",
                reencode(&brightness(&resize(img, 700, 525), 0.8), 85),
                expect.clone(),
            ));
            cases.push((
                "crop",
                reencode(
                    &resize(&crop(img, 0.85, 0.82, rng.unit(), rng.unit()), 640, 480),
                    85,
                ),
                expect.clone(),
            ));
            cases.push((
                "crop",
                reencode(&crop(&resize(img, 900, 675), 0.7, 1.0, rng.unit(), 0.5), 85),
                expect.clone(),
            ));
            cases.push((
                "crop",
                reencode(
                    &crop(&resize(img, 900, 675), 1.0, 0.72, 0.5, rng.unit()),
                    85,
                ),
                expect.clone(),
            ));
            cases.push((
                "crop",
                reencode(
                    &crop(&resize(img, 800, 600), 0.75, 1.0, rng.unit(), 0.0),
                    80,
                ),
                expect.clone(),
            ));
            cases.push((
                "crop+watermark+brightness",
                reencode(
                    &watermark(&brightness(&crop(img, 0.8, 0.9, 0.3, 0.4), 1.15), 5),
                    75,
                ),
                expect.clone(),
            ));
        }
        let pair = vec![p.before.0.clone(), p.after.0.clone()];
        cases.push((
            "composite",
            reencode(
                &composite(&p.before.1, &p.after.1, 500, 14, false, true),
                85,
            ),
            pair.clone(),
        ));
        cases.push((
            "composite",
            reencode(
                &composite(&p.before.1, &p.after.1, 480, 0, false, false),
                85,
            ),
            pair.clone(),
        ));
        cases.push((
            "composite",
            reencode(&composite(&p.before.1, &p.after.1, 520, 10, true, true), 85),
            pair.clone(),
        ));
        let cropped_pair = composite(
            &crop(&p.before.1, 0.75, 1.0, 0.5, 0.5),
            &crop(&p.after.1, 0.75, 1.0, 0.5, 0.5),
            450,
            0,
            false,
            false,
        );
        cases.push(("composite", reencode(&cropped_pair, 80), pair));
    }
    for i in 0..200 {
        cases.push(("unrelated", unrelated(i), Vec::new()));
    }
    let mut stats: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut false_matches = Vec::new();
    let mut misses = Vec::new();
    for (n, (cat, img, expect)) in cases.iter().enumerate() {
        let q = matching::prepare(img);
        let got: Vec<String> = store
            .find_sources(&index, &q, img)
            .unwrap()
            .into_iter()
            .map(|m| m.capture_id)
            .collect();
        let e = stats.entry(cat).or_default();
        if expect.is_empty() {
            e.0 += 1;
            e.1 += usize::from(got.is_empty());
        } else {
            e.0 += expect.len();
            e.1 += expect
                .iter()
                .enumerate()
                .filter(|(k, id)| got.get(*k) == Some(id))
                .count();
        }
        for g in &got {
            if !expect.contains(g) {
                false_matches.push(format!("case {n} ({cat}): {g} not among {expect:?}"));
            }
        }
        if got != *expect {
            misses.push(format!(
                "case {n} ({cat}): expected {expect:?}, got {got:?}"
            ));
        }
    }
    for (cat, (total, ok)) in &stats {
        eprintln!(
            "{cat:<28} {ok}/{total} = {:.1} %",
            100.0 * *ok as f64 / *total as f64
        );
    }
    for m in &misses {
        eprintln!("  {m}");
    }
    assert!(
        false_matches.is_empty(),
        "false matches: {false_matches:#?}"
    );
    let rate = |cats: &[&str]| {
        let (t, o) = cats
            .iter()
            .filter_map(|c| stats.get(c))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        o as f64 / t as f64
    };
    assert!(
        rate(&["resize", "re-encode", "watermark", "brightness"]) >= 0.99,
        "resize / re-encode / watermark / brightness recall below 99 %"
    );
    assert!(
        rate(&["crop", "crop+watermark+brightness"]) >= 0.95,
        "crop recall below 95 %"
    );
    assert!(rate(&["composite"]) >= 0.95, "composite recall below 95 %");
    assert_eq!(rate(&["unrelated"]), 1.0);
}

/// A published image with a flat band across its middle (a divider drawn over one photo, or
/// flat background) is split at the band like a composite; when both sides are the same
/// capture, it is that one capture, placed over the whole image, not over one side.
#[test]
fn a_flat_band_across_one_photo_is_not_a_composite() {
    let t = TestStore::uninitialised();
    let (store, patients) = library_store(&t);
    let index = store.review_index().unwrap();
    let (id, img) = &patients[1].before;
    let mut published = resize(img, 800, 600);
    for y in 0..600 {
        for x in 376..408 {
            published.put_pixel(x, y, image::Rgb([240, 240, 236]));
        }
    }
    let published = reencode(&published, 85);
    let q = matching::prepare(&published);
    assert_eq!(
        q.gutters.len(),
        2,
        "the band reads as a gutter: {:?}",
        q.gutters
    );
    let found = store.find_sources(&index, &q, &published).unwrap();
    let ids: Vec<&str> = found.iter().map(|m| m.capture_id.as_str()).collect();
    assert_eq!(ids, [id.as_str()]);
    assert!(
        found[0].panel[2] >= 700 && found[0].panel[3] >= 520,
        "placed over {:?}, not the whole 800×600 image",
        found[0].panel
    );
}

/// A real portrait photo (when `../shared/fixtures` is present), cropped and shown at another
/// aspect ratio, re-encoded at quality 70: traced to its capture, and the stretch is not taken
/// for local edits (it was when edits were registered with a similarity).
#[test]
fn a_real_photo_cropped_and_stretched_is_traced_and_not_flagged() {
    let Some(shared) = util::shared_fixtures() else {
        return;
    };
    let photo = shared.join("faces/biden.jpg");
    let Ok(img) = image::open(&photo) else {
        eprintln!("notice: {} is absent; skipping", photo.display());
        return;
    };
    let img = img.to_rgb8();
    let s = TestStore::new();
    let cid = s.patient_with_consent("R9", "clinical,publication");
    let file = s.write("portrait.jpg", &jpeg(&img, 92));
    let cap = s.import(&file, "R9", &cid, &["--captured-at", "2026-03-10T10:00:00"]);
    let published = resize(&crop(&img, 0.8, 0.8, 0.5, 0.3), 400, 820);
    let path = s.path("pub");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("stretched.jpg"), jpeg(&published, 70)).unwrap();
    std::fs::write(path.join("stretched.txt"), "Individual results vary.").unwrap();
    let r = s.ok(&["review", path.to_str().unwrap()]);
    let st = image_report(&r, "stretched.jpg");
    assert_eq!(st["sources"][0]["capture_id"], cap["capture_id"], "{st}");
    assert_eq!(st["verdict"], "pass", "{st}");
}

/// A consent that has expired since the capture was taken: the review fails the published
/// image, naming the consent and its last day. (The capture is imported, and the first review
/// run, on days the consent covered: debug builds take the date from `SAMEFRAME_TODAY`.)
#[test]
fn a_consent_expired_since_the_capture_fails_publication() {
    let s = TestStore::new();
    s.ok(&["patient", "add", "--ref", "R7"]);
    let on = |day: &str, args: &[&str]| -> Value {
        let mut c = s.command(args);
        c.env("SAMEFRAME_TODAY", day);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{:?}: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let granted = on(
        "2026-01-05",
        &[
            "consent",
            "grant",
            "--patient",
            "R7",
            "--scope",
            "clinical,publication",
            "--signed-by",
            "R7",
            "--signed-on",
            "2026-01-05",
            "--expires",
            "2026-02-28",
        ],
    );
    let cid = granted["consent_id"].as_str().unwrap().to_string();
    let img = scene(TEXTURES[2], 107);
    let file = s.write("r7.jpg", &jpeg(&img, 92));
    let cap = on(
        "2026-02-01",
        &[
            "capture",
            "import",
            file.to_str().unwrap(),
            "--patient",
            "R7",
            "--consent",
            &cid,
            "--area",
            "face",
            "--view",
            "frontal",
            "--captured-at",
            "2026-02-01T10:00:00",
        ],
    );
    let web = write_jpeg(&s, "pub", "web.jpg", &resize(&img, 640, 480));
    let review = |day: &str, more: &[&str]| {
        let r = on(day, &[&["review", web.to_str().unwrap()], more].concat());
        let report = image_report(&r, "web.jpg").clone();
        assert_eq!(
            report["sources"][0]["capture_id"], cap["capture_id"],
            "{report}"
        );
        report
    };
    let before = review("2026-02-10", &[]);
    assert!(
        has(&before, "consent", "info", "allows publication"),
        "{before}"
    );
    // 18 days before it expires (the warning window is 30 days), and no caption at all.
    assert!(
        has(&before, "consent", "warn", "expires on 2026-02-28"),
        "{before}"
    );
    assert!(has(&before, "caption", "warn", "no caption"), "{before}");
    assert_eq!(before["verdict"], "warn", "{before}");
    s.ok(&["config", "set", "review.consent_expiry_warning_days", "7"]);
    // Captions kept in a folder of their own, by the image's name.
    let captions = s.path("captions");
    std::fs::create_dir_all(&captions).unwrap();
    std::fs::write(captions.join("web.txt"), "Smoother skin, results may vary.").unwrap();
    let captioned = review("2026-02-10", &["--caption-dir", captions.to_str().unwrap()]);
    assert_eq!(captioned["caption"], "Smoother skin, results may vary.");
    assert!(
        !has(&captioned, "caption", "warn", "variability"),
        "{captioned}"
    );
    assert_eq!(captioned["verdict"], "pass", "{captioned}");

    let after = review("2026-03-01", &[]);
    assert!(has(&after, "consent", "fail", &cid), "{after}");
    assert!(
        has(&after, "consent", "fail", "expired after 2026-02-28"),
        "{after}"
    );
    assert_eq!(after["verdict"], "fail", "{after}");
}

fn write_jpeg(s: &TestStore, dir: &str, name: &str, img: &image::RgbImage) -> std::path::PathBuf {
    let d = s.path(dir);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, jpeg(img, 88)).unwrap();
    p
}

/// Baseline ID, follow-up ID, consent ID, and the two photos.
type CliPatient = (String, String, String, image::RgbImage, image::RgbImage);

/// The CLI store: the same five patients imported through the binary.
fn cli_store() -> (TestStore, Vec<CliPatient>) {
    let s = TestStore::new();
    let mut out = Vec::new();
    for (i, tex) in TEXTURES.iter().enumerate().take(4) {
        let r = format!("R{i}");
        let scopes = if i == 3 {
            "clinical"
        } else {
            "clinical,publication"
        };
        let cid = s.patient_with_consent(&r, scopes);
        let before = scene(tex, 100 + i as u64);
        let after = later_session(&before, 200 + i as u64);
        let fb = s.write(&format!("{r}-b.jpg"), &jpeg(&before, 92));
        let fa = s.write(&format!("{r}-a.jpg"), &jpeg(&after, 92));
        let b = s.import(&fb, &r, &cid, &["--captured-at", "2026-03-10T10:00:00"]);
        let a = s.import(
            &fa,
            &r,
            &cid,
            &[
                "--captured-at",
                "2026-05-10T11:00:00",
                "--confounder",
                "makeup_present=foundation",
            ],
        );
        out.push((
            b["capture_id"].as_str().unwrap().to_string(),
            a["capture_id"].as_str().unwrap().to_string(),
            cid,
            before,
            after,
        ));
    }
    (s, out)
}

fn image_report<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["file"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in {r}"))
}

fn has(report: &Value, kind: &str, severity: &str, needle: &str) -> bool {
    report["findings"].as_array().unwrap().iter().any(|f| {
        f["kind"] == kind
            && f["severity"] == severity
            && f["message"].as_str().unwrap().contains(needle)
    })
}

#[test]
fn review_checks_consent_pairing_disclosures_edits_and_captions() {
    let (s, caps) = cli_store();
    let (b0, a0, _, before0, after0) = &caps[0];
    // A before/after composite with a boastful caption.
    write_jpeg(
        &s,
        "pub",
        "compare.jpg",
        &composite(before0, after0, 500, 12, false, true),
    );
    std::fs::write(
        s.path("pub").join("compare.txt"),
        "Amazing skin booster results, guaranteed!",
    )
    .unwrap();
    // Patient 3 never consented to publication.
    write_jpeg(&s, "pub", "no-consent.jpg", &resize(&caps[3].3, 600, 450));
    // Whole-frame colour grading: allowed.
    let small = resize(&caps[1].3, 900, 675);
    let graded = image::RgbImage::from_fn(900, 675, |x, y| {
        let p = small.get_pixel(x, y).0;
        image::Rgb([
            (f32::from(p[0]) * 1.1).min(255.0) as u8,
            p[1],
            (f32::from(p[2]) * 0.88) as u8,
        ])
    });
    write_jpeg(&s, "pub", "graded.jpg", &graded);
    // A crop shown at another aspect ratio (a stretch): allowed.
    write_jpeg(
        &s,
        "pub",
        "stretched.jpg",
        &resize(&crop(before0, 0.6, 0.95, 0.5, 0.5), 400, 560),
    );
    // Local retouching: a smoothed patch on the after photo.
    let mut retouched = resize(&caps[2].4, 900, 675);
    let patch = image::imageops::crop_imm(&retouched, 380, 260, 160, 140).to_image();
    image::imageops::replace(
        &mut retouched,
        &image::imageops::blur(&patch, 5.0),
        380,
        260,
    );
    write_jpeg(&s, "pub", "retouched.jpg", &retouched);
    // Unreadable files are reported and skipped.
    std::fs::write(
        s.path("pub").join("broken.jpg"),
        &jpeg(&before0.clone(), 80)[..500],
    )
    .unwrap();
    // Cut off inside its pixel data: a decoder would still paint the top of it, grey below.
    let whole = jpeg(after0, 80);
    std::fs::write(s.path("pub").join("cut.jpg"), &whole[..whole.len() * 2 / 3]).unwrap();
    std::fs::write(s.path("pub").join("notes.pdf"), b"%PDF-1.4 not an image").unwrap();
    // Something that is not from the clinic.
    write_jpeg(&s, "pub", "stock.jpg", &unrelated(1));

    let html = s.path("report.html");
    let r = s.ok(&[
        "review",
        s.path("pub").to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    assert_eq!(r["summary"]["images"], 9);
    assert_eq!(r["summary"]["unreadable"], 3);

    let c = image_report(&r, "compare.jpg");
    let srcs: Vec<&str> = c["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["capture_id"].as_str().unwrap())
        .collect();
    assert_eq!(srcs, [b0.as_str(), a0.as_str()], "{c}");
    assert_eq!(c["sources"][0]["patient_ref"], "R0");
    assert_eq!(c["sources"][0]["panel"].as_array().unwrap().len(), 4);
    assert!(has(c, "consent", "info", "allows publication"));
    assert!(has(c, "pairing", "info", "before"));
    assert!(
        c["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "comparability"),
        "{c}"
    );
    assert!(has(c, "disclosure", "info", "Make-up"), "{c}");
    assert!(has(c, "caption", "warn", "variability"), "{c}");
    assert!(has(c, "caption", "fail", "guaranteed"), "{c}");
    assert!(has(c, "disclosure", "warn", "does not disclose"), "{c}");
    assert_eq!(c["verdict"], "fail");

    let n = image_report(&r, "no-consent.jpg");
    assert!(has(n, "consent", "fail", &caps[3].2), "{n}");
    assert!(has(n, "consent", "fail", "publication"), "{n}");

    let g = image_report(&r, "graded.jpg");
    assert!(!has(g, "edit", "fail", ""), "colour grading flagged: {g}");
    let st = image_report(&r, "stretched.jpg");
    assert_eq!(st["sources"][0]["capture_id"], b0.as_str(), "{st}");
    assert!(
        !has(st, "edit", "fail", ""),
        "a stretched crop flagged as edited: {st}"
    );

    let t = image_report(&r, "retouched.jpg");
    let edit = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "edit" && f["severity"] == "fail")
        .unwrap_or_else(|| panic!("retouching not flagged: {t}"));
    assert!(
        edit["message"].as_str().unwrap().contains("box 1"),
        "{edit}"
    );
    let boxed = &t["edits"][0];
    assert_eq!(boxed["severity"], "fail", "{t}");
    assert!(boxed["bbox"][2].as_u64().unwrap() > 0, "{t}");
    assert_eq!(t["verdict"], "fail");

    // An image of the clinic's with no source has no consent evidence: a failure, until it is
    // marked as not a patient photo; a third party's image with no source is a warning.
    let st = image_report(&r, "stock.jpg");
    assert!(st["sources"].as_array().unwrap().is_empty());
    assert!(has(st, "source", "fail", "no consent evidence"), "{st}");
    assert!(
        st["action"].as_str().unwrap().contains("--not-patient"),
        "{st}"
    );
    let stock = s.path("pub").join("stock.jpg");
    let stock = stock.to_str().unwrap();
    let third = s.ok(&["review", stock, "--third-party"]);
    assert!(
        has(&third["images"][0], "source", "warn", "no source"),
        "{third}"
    );
    s.ok(&[
        "publish",
        "record",
        stock,
        "--channel",
        "website",
        "--not-patient",
        "--note",
        "licensed stock, agency ref 1234",
    ]);
    let marked = s.ok(&["review", stock]);
    assert!(
        has(
            &marked["images"][0],
            "source",
            "info",
            "not a patient photo"
        ),
        "{marked}"
    );
    assert_eq!(marked["images"][0]["verdict"], "pass", "{marked}");
    // A patient photo cannot be marked as stock.
    s.fails(
        &[
            "publish",
            "record",
            s.path("pub").join("graded.jpg").to_str().unwrap(),
            "--channel",
            "website",
            "--not-patient",
        ],
        &["it is a patient photo"],
    );
    for f in ["broken.jpg", "cut.jpg", "notes.pdf"] {
        assert!(has(image_report(&r, f), "file", "warn", "skipped"), "{f}");
    }
    assert!(has(
        image_report(&r, "cut.jpg"),
        "file",
        "warn",
        "truncated"
    ));
    // The HTML report shows each image beside its sources, and is tracked as a copy.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("compare.jpg")
            && page.contains(b0.as_str())
            && page.contains("data:image/jpeg;base64,")
    );
    assert!(page.contains("badge fail") && page.contains("guaranteed"));
    let exports: i64 = s
        .sql_one("SELECT COUNT(*) FROM export WHERE purpose = 'review'")
        .unwrap()
        .parse()
        .unwrap();
    assert!(exports >= 4);
    // --fail-on turns the verdict into an exit status.
    s.fails(
        &[
            "review",
            s.path("pub").join("compare.jpg").to_str().unwrap(),
            "--fail-on",
            "fail",
        ],
        &[],
    );
}

#[test]
fn withdrawal_after_publication_lists_and_flags_take_downs() {
    let (s, caps) = cli_store();
    let (b1, _, cid1, before1, _) = &caps[1];
    let web = write_jpeg(&s, "web", "hero.jpg", &resize(before1, 700, 525));
    let rec = s.ok(&[
        "publish",
        "record",
        web.to_str().unwrap(),
        "--channel",
        "clinic website",
        "--url",
        "https://clinic.example/results",
        "--date",
        "2026-06-01",
    ]);
    assert_eq!(rec["sources"][0]["capture_id"].as_str().unwrap(), b1);
    s.fails(
        &[
            "publish",
            "record",
            write_jpeg(&s, "web", "stock.jpg", &unrelated(3))
                .to_str()
                .unwrap(),
            "--channel",
            "x",
        ],
        &["no stored capture matches"],
    );
    let before = s.ok(&["review", web.to_str().unwrap()]);
    let hero = image_report(&before, "hero.jpg");
    assert_ne!(hero["verdict"], "fail", "{hero}");

    let w = s.ok(&[
        "consent",
        "withdraw",
        cid1,
        "--scope",
        "publication",
        "--reason",
        "asked by phone",
    ]);
    let t = &w["takedown"][0];
    assert_eq!(t["channel"], "clinic website");
    assert_eq!(t["url"], "https://clinic.example/results");
    assert_eq!(t["date"], "2026-06-01");
    assert_eq!(
        t["file_sha256"].as_str().unwrap(),
        sameframe::ids::sha256_hex(&std::fs::read(&web).unwrap())
    );
    assert_eq!(w["certificate"]["takedown"][0]["channel"], "clinic website");

    let after = s.ok(&["review", web.to_str().unwrap()]);
    let img = image_report(&after, "hero.jpg");
    assert_eq!(img["verdict"], "fail");
    assert!(has(img, "consent", "fail", "withdrawn"), "{img}");
    assert!(has(img, "takedown", "fail", "clinic website"), "{img}");
    let list = s.ok(&["publish", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn pair_certificate_and_fingerprint_backfill() {
    let (s, caps) = cli_store();
    let (b0, a0, ..) = &caps[0];
    let g = s.ok(&["pair", b0, a0]);
    assert!(["A", "B", "C", "D", "F"].contains(&g["grade"].as_str().unwrap()));
    assert!(g["pose_score"].is_number(), "{g}");
    assert!(
        g["aspects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["aspect"] == "confounders")
    );
    assert!(g["time_of_day_delta_hours"].as_f64().unwrap() > 0.5);
    // Different patients cannot be a pair.
    let bad = s.ok(&["pair", b0, &caps[1].0]);
    assert_eq!(bad["grade"], "F");
    s.fails(
        &["pair", b0, "cap_0000000000000000"],
        &["unknown capture cap_0000000000000000"],
    );

    // Captures whose fingerprint is missing (deferred at import) or outdated (an older
    // recipe) are counted by status and verify, fingerprinted by `fingerprint backfill`…
    let published = s.write("b0-published.jpg", &jpeg(&resize(&caps[0].3, 700, 525), 85));
    let forget = || {
        s.sql_exec(&format!(
            "DELETE FROM fingerprint WHERE capture_id <> '{}'",
            caps[1].0
        ));
        s.sql_exec("UPDATE fingerprint SET version = 1");
    };
    forget();
    assert_eq!(s.ok(&["status"])["derived_pending"], 8);
    assert_eq!(s.ok(&["verify"])["derived_pending"], 8);
    let r = s.ok(&["fingerprint", "backfill"]);
    assert_eq!(r["computed"], 8);
    let again = s.ok(&["fingerprint", "backfill"]);
    assert_eq!(again["computed"], 0);
    assert_eq!(again["already"], 8);
    assert_eq!(s.ok(&["status"])["derived_pending"], 0);
    // …or by the review itself before it matches, so a published copy is never missed.
    forget();
    let after = s.ok(&["review", published.to_str().unwrap()]);
    assert_eq!(after["summary"]["derived_before_review"], 8, "{after}");
    assert_eq!(after["summary"]["captures_to_backfill"], 0, "{after}");
    assert_eq!(after["images"][0]["sources"][0]["capture_id"], b0.as_str());
}

#[test]
fn reduced_previews_are_stored_sealed_and_backfilled() {
    use sameframe::analysis::fingerprint;
    let t = TestStore::uninitialised();
    let (store, patients) = library_store(&t);
    let ids: Vec<&String> = patients
        .iter()
        .flat_map(|p| [&p.before.0, &p.after.0])
        .collect();
    // What import stored is what the thumbnail gives when it is reduced on the fly.
    for id in &ids {
        let on_the_fly = fingerprint::small_preview_of_jpeg(&store.thumbnail(id).unwrap()).unwrap();
        let stored = store.small_preview(id).unwrap();
        assert_eq!(stored.dimensions(), (128, 96), "{id}");
        assert!(stored == on_the_fly, "{id}: stored preview differs");
    }
    // In an encrypted store the row holds no plaintext pixels.
    let sealed = sameframe::ids::unhex(
        &t.sql_one(&format!(
            "SELECT small FROM fingerprint WHERE capture_id = '{}'",
            ids[0]
        ))
        .unwrap(),
    )
    .unwrap();
    let plain = fingerprint::encode_small(&store.small_preview(ids[0]).unwrap());
    let row = &plain[4 + 48 * 128..4 + 49 * 128];
    assert!(
        !sealed.windows(row.len()).any(|w| w == row),
        "plaintext row in the database"
    );

    // Rows from before previews were stored fall back to the thumbnail, and backfill fills them.
    t.sql_exec(&format!(
        "UPDATE fingerprint SET small = NULL WHERE capture_id = '{}'",
        ids[1]
    ));
    let want = store.small_preview(ids[1]).unwrap();
    assert_eq!(store.fingerprints_to_backfill().unwrap(), 1);
    let r = store.backfill_fingerprints(2, &|_, _| {}).unwrap();
    assert_eq!((r.computed, r.failed.len()), (1, 0));
    assert_eq!(store.fingerprints_to_backfill().unwrap(), 0);
    let filled = t.sql_one(&format!(
        "SELECT small FROM fingerprint WHERE capture_id = '{}'",
        ids[1]
    ));
    assert!(filled.is_some());
    assert!(store.small_preview(ids[1]).unwrap() == want);

    // A stored preview that does not decode is an error naming the capture, not a panic.
    // (A blob literal both SQLite and PostgreSQL read.)
    let bad = if t.is_shared() {
        "'\\x0102'::bytea"
    } else {
        "x'0102'"
    };
    t.sql_exec(&format!(
        "UPDATE fingerprint SET small = {bad} WHERE capture_id = '{}'",
        ids[2]
    ));
    let e = store.small_preview(ids[2]).unwrap_err().to_string();
    assert!(e.contains(ids[2].as_str()), "{e}");
}

/// The review index reads a compact copy of each fingerprint's indexed part, which the
/// repositories keep in step with the fingerprint: on import, when a fingerprint is rewritten
/// (backfill), and when it is deleted (a purge).
#[test]
fn the_index_copy_follows_every_fingerprint_write() {
    let t = TestStore::uninitialised();
    let (store, patients) = library_store(&t);
    let count = |sql: &str| -> i64 { t.sql_one(sql).unwrap().parse().unwrap() };
    let in_step = || {
        count(
            "SELECT COUNT(*) FROM fingerprint f JOIN fingerprint_index i USING (capture_id)
             WHERE i.phash = f.phash AND i.dhash = f.dhash
               AND i.keypoints = substr(f.keypoints, 1, 384)
               AND i.descriptors = substr(f.descriptors, 1, 1536)",
        )
    };
    assert_eq!(count("SELECT COUNT(*) FROM fingerprint_index"), 10);
    assert_eq!(in_step(), 10);
    // A stale fingerprint with other descriptors, then recomputed by backfill.
    let id = &patients[2].after.0;
    let mut stale = store.read(|r| r.fingerprint(id)).unwrap().unwrap();
    stale.version = 1;
    stale.descriptors = vec![0; stale.descriptors.len()];
    store.write(|tx| tx.put_fingerprint(&stale)).unwrap();
    assert_eq!(in_step(), 10);
    let zeros = if t.is_shared() {
        "SELECT COUNT(*) FROM fingerprint_index WHERE descriptors = decode(repeat('00', 1536), 'hex')"
    } else {
        "SELECT COUNT(*) FROM fingerprint_index WHERE descriptors = zeroblob(1536)"
    };
    assert_eq!(count(zeros), 1);
    store.backfill_fingerprints(2, &|_, _| {}).unwrap();
    assert_eq!(in_step(), 10);
    assert_eq!(count(zeros), 0);
    // The review traces that capture again from the rewritten copy.
    let index = store.review_index().unwrap();
    let img = reencode(&resize(&patients[2].after.1, 660, 495), 85);
    let q = matching::prepare(&img);
    let found = store.find_sources(&index, &q, &img).unwrap();
    assert_eq!(
        found.first().map(|m| m.capture_id.as_str()),
        Some(id.as_str())
    );
    // Deleted with its fingerprint (as a purge deletes it, leaving a tombstone), and not
    // made again by the next review.
    let consent_id = store.capture(id).unwrap().consent_id;
    store
        .write(|tx| {
            tx.delete_fingerprint(id)?;
            tx.insert_tombstone(&sameframe::store::repo::TombstoneRow {
                kind: "fingerprint".into(),
                sha256: None,
                subject_id: Some(id.clone()),
                consent_id: consent_id.clone(),
                job_id: "job_test".into(),
                purged_at: sameframe::timefmt::now_utc(),
                purged_by: "test".into(),
                reason: "withdrawal".into(),
            })
        })
        .unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM fingerprint_index"), 9);
    assert_eq!(store.review_index().unwrap().len(), 9);
    assert_eq!(store.fingerprints_to_backfill().unwrap(), 0);
}

/// Run a command on a given day (debug builds take the date from `SAMEFRAME_TODAY`).
fn on_day(s: &TestStore, day: &str, args: &[&str]) -> std::process::Output {
    let mut c = s.command(args);
    c.env("SAMEFRAME_TODAY", day);
    c.output().unwrap()
}

fn on_day_ok(s: &TestStore, day: &str, args: &[&str]) -> Value {
    let out = on_day(s, day, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A folder of the clinic's publications with a violation of each kind planted: every image
/// gets the verdict the rules give it, with its reason and one line saying what to do, and the
/// honest image passes.
#[test]
fn each_planted_violation_gets_the_verdict_the_rules_give_it() {
    let (s, caps) = cli_store();
    let (_, _, _, before0, after0) = &caps[0];
    let pubdir = "planted";
    let caption = |name: &str, text: &str| {
        std::fs::write(s.path(pubdir).join(name), text).unwrap();
    };
    // Honest: before on the left, after on the right, captioned, make-up disclosed.
    write_jpeg(
        &s,
        pubdir,
        "honest.jpg",
        &composite(before0, after0, 500, 12, false, false),
    );
    caption(
        "honest.txt",
        "Skin booster, 2 sessions. Individual results vary. Make-up (foundation) worn in the after photo.",
    );
    // Swapped: the later photo shown first.
    write_jpeg(
        &s,
        pubdir,
        "swapped.jpg",
        &composite(after0, before0, 500, 12, false, false),
    );
    caption(
        "swapped.txt",
        "Individual results vary. Make-up (foundation) worn.",
    );
    // No caption at all.
    let (_, _, _, before1, after1) = &caps[1];
    write_jpeg(
        &s,
        pubdir,
        "uncaptioned.jpg",
        &composite(before1, after1, 500, 12, true, false),
    );
    // Not comparable: the follow-up is another view (a major difference: grade D).
    let (b2, _, cid2, before2, _) = &caps[2];
    let other_view = later_session(before2, 777);
    let f = s.write("R2-oblique.jpg", &jpeg(&other_view, 92));
    let f = f.to_str().unwrap();
    let mut args = util::import_args(f, "R2", cid2, "oblique_left_45");
    args.extend(["--captured-at", "2026-06-01T10:00:00"]);
    let oblique = s.ok(&args);
    write_jpeg(
        &s,
        pubdir,
        "unmatched-views.jpg",
        &composite(before2, &other_view, 500, 12, false, false),
    );
    caption("unmatched-views.txt", "Individual results vary.");
    // No publication consent (R3 consented to clinical use only).
    write_jpeg(&s, pubdir, "no-consent.jpg", &resize(&caps[3].3, 600, 450));
    caption("no-consent.txt", "Individual results vary.");

    let html = s.path("planted.html");
    let r = s.ok(&[
        "review",
        s.path(pubdir).to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    let verdict = |name: &str| {
        image_report(&r, name)["verdict"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let honest = image_report(&r, "honest.jpg");
    assert_ne!(verdict("honest.jpg"), "fail", "{honest}");
    assert!(
        has(honest, "pairing", "info", "before: left panel"),
        "{honest}"
    );
    assert_eq!(honest["sources"][0]["position"], "left");

    let swapped = image_report(&r, "swapped.jpg");
    assert!(
        has(swapped, "pairing", "warn", "the left panel"),
        "{swapped}"
    );
    assert!(has(swapped, "pairing", "warn", "later photo"), "{swapped}");
    assert!(
        has(swapped, "pairing", "warn", "taken 2026-05-10"),
        "{swapped}"
    );

    let uncaptioned = image_report(&r, "uncaptioned.jpg");
    assert!(
        has(uncaptioned, "caption", "warn", "no caption"),
        "{uncaptioned}"
    );
    assert_eq!(
        uncaptioned["sources"][0]["position"], "top",
        "{uncaptioned}"
    );

    let views = image_report(&r, "unmatched-views.jpg");
    let ids: Vec<&str> = views["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["capture_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [b2.as_str(), oblique["capture_id"].as_str().unwrap()],
        "{views}"
    );
    assert!(
        has(views, "comparability", "fail", "fails from D"),
        "{views}"
    );
    assert_eq!(verdict("unmatched-views.jpg"), "fail");
    assert!(
        views["action"].as_str().unwrap().contains("not comparable"),
        "{views}"
    );
    // No broken sentences in the reasons: no empty clause, no capture-time hints.
    for f in views["findings"].as_array().unwrap() {
        let m = f["message"].as_str().unwrap();
        assert!(
            !m.contains(": ;") && !m.ends_with(": ") && !m.contains("tilt it"),
            "{m}"
        );
    }

    let no_consent = image_report(&r, "no-consent.jpg");
    assert_eq!(verdict("no-consent.jpg"), "fail");
    assert_eq!(
        no_consent["action"],
        "take down: no publication consent for R3 (not granted)"
    );

    // The clinic's tolerances decide the grade that fails: the honest pair passes the default
    // (fails from D), and fails a clinic that fails its grade.
    let grade = honest["pair_grade"].as_str().unwrap().to_string();
    assert!(grade.as_str() < "D", "{honest}");
    let cal = s.path("strict-cal");
    std::fs::create_dir_all(&cal).unwrap();
    let tol = std::fs::read_to_string("calibration/tolerances.toml").unwrap();
    std::fs::write(
        cal.join("tolerances.toml"),
        tol.replace(
            "published_fail_grade = \"D\"",
            &format!("published_fail_grade = \"{grade}\""),
        ),
    )
    .unwrap();
    let strict = s.ok(&[
        "--calibration-dir",
        cal.to_str().unwrap(),
        "review",
        s.path(pubdir).join("honest.jpg").to_str().unwrap(),
    ]);
    assert!(
        has(
            &strict["images"][0],
            "comparability",
            "fail",
            &format!("fails from {grade}")
        ),
        "{strict}"
    );

    // The report: worst first, a summary linking to each image, info folded away, edits boxed.
    let page = std::fs::read_to_string(&html).unwrap();
    let first_pass = page.find("class=\"card pass\"").unwrap_or(page.len());
    let first_warn = page.find("class=\"card warn\"").unwrap();
    let first_fail = page.find("class=\"card fail\"").unwrap();
    assert!(
        first_fail < first_warn && first_warn < first_pass,
        "not worst first"
    );
    assert!(page.contains("href=\"#img-0\"") && page.contains("id=\"img-0\""));
    assert!(page.contains("<details>"));
    assert!(page.contains("take down: no publication consent for R3"));
    assert!(!page.contains("distance"), "raw numbers belong in the JSON");
}

/// A withdrawal a regulator would accept: the take-down list holds only what the withdrawal
/// covers (a teaching use the consent still allows stays off it), each take-down is tracked to
/// done with evidence, the certificate lists every copy the store knows and every kept item
/// with its rule, a re-run points to the certificate, and the exact file of an erased
/// patient's publication is still caught by the review.
#[test]
fn withdrawal_takedowns_certificates_and_an_erased_patients_publication() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("E1", "clinical,teaching,publication");
    let before = scene(TEXTURES[0], 501);
    let after = later_session(&before, 502);
    let fb = s.write("E1-b.jpg", &jpeg(&before, 92));
    let fa = s.write("E1-a.jpg", &jpeg(&after, 92));
    let b = s.import(&fb, "E1", &cid, &["--captured-at", "2026-03-10T10:00:00"]);
    let a = s.import(&fa, "E1", &cid, &["--captured-at", "2026-05-10T10:00:00"]);
    let (b, a) = (
        b["capture_id"].as_str().unwrap(),
        a["capture_id"].as_str().unwrap(),
    );
    let day = "2026-06-10";
    // Copies: an export outside the data directory, a teaching export, a review report.
    let outside = s.path("outbox").join("for-referral.jpg");
    std::fs::create_dir_all(outside.parent().unwrap()).unwrap();
    on_day_ok(
        &s,
        day,
        &["capture", "export", b, "--out", outside.to_str().unwrap()],
    );
    let slides = s.path("slides.jpg");
    on_day_ok(
        &s,
        day,
        &[
            "capture",
            "export",
            a,
            "--out",
            slides.to_str().unwrap(),
            "--purpose",
            "teaching",
        ],
    );
    let web = write_jpeg(
        &s,
        "web",
        "hero.jpg",
        &composite(&before, &after, 500, 12, false, false),
    );
    let report = s.path("review.html");
    on_day_ok(
        &s,
        day,
        &[
            "review",
            web.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    // Uses: the website, a printed brochure, and teaching slides.
    let web_s = web.to_str().unwrap();
    let publish = |file: &std::path::Path, more: &[&str]| -> String {
        let args = [&["publish", "record", file.to_str().unwrap()], more].concat();
        on_day_ok(&s, day, &args)["publication_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let site = publish(
        &web,
        &[
            "--channel",
            "clinic website",
            "--url",
            "https://clinic.example/r",
        ],
    );
    let brochure_file = write_jpeg(&s, "print", "brochure.jpg", &resize(&before, 640, 480));
    let brochure = publish(&brochure_file, &["--channel", "spring brochure (print)"]);
    let lecture_file = write_jpeg(&s, "teach", "lecture.jpg", &resize(&after, 640, 480));
    let lecture = publish(
        &lecture_file,
        &["--channel", "lecture slides", "--purpose", "teaching"],
    );
    // An auditor's pack of the website's before/after holds the pair's comparability.
    let pack = s.path("site-pack.zip");
    s.ok(&[
        "audit",
        "pack",
        "--publication",
        &site,
        "--out",
        pack.to_str().unwrap(),
    ]);
    let listing = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile, json; z = zipfile.ZipFile(sys.argv[1]); print(json.loads(z.read(sys.argv[2]))['grade'])",
            pack.to_str().unwrap(),
            &format!("comparability/{site}.json"),
        ])
        .output()
        .unwrap();
    let grade = String::from_utf8_lossy(&listing.stdout).trim().to_string();
    assert!(
        ["A", "B", "C", "D", "F"].contains(&grade.as_str()),
        "no comparability in the pack: {grade} {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    assert_eq!(
        s.ok(&["audit", "pack", "verify", pack.to_str().unwrap()])["ok"],
        true
    );

    // Publication withdrawn: the website and the brochure come down; the lecture stays.
    let withdraw = |more: &[&str]| {
        let args = [&["consent", "withdraw", cid.as_str()], more].concat();
        on_day(&s, day, &args)
    };
    let json = |out: std::process::Output| -> Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let w = json(withdraw(&[
        "--scope",
        "publication",
        "--reason",
        "asked by email",
    ]));
    let listed: Vec<&str> = w["takedown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["publication_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{w}");
    assert!(
        listed.contains(&site.as_str())
            && listed.contains(&brochure.as_str())
            && !listed.contains(&lecture.as_str())
    );
    let kept = w["certificate"]["retained"].as_array().unwrap();
    assert!(
        kept.iter()
            .any(|i| i["kind"] == "publication" && i["subject_id"] == lecture.as_str()),
        "{w}"
    );
    for i in kept {
        assert!(
            i["detail"].as_str().unwrap().starts_with("kept"),
            "a kept item without its rule: {i}"
        );
    }
    let open = on_day_ok(&s, day, &["takedown", "list", "--open"]);
    assert_eq!(open.as_array().unwrap().len(), 2, "{open}");
    for t in open.as_array().unwrap() {
        assert_eq!(t["due"], "2026-07-10", "{t}");
        assert_eq!(t["status"], "open");
    }
    let print = open
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["takedown_id"] == brochure.as_str())
        .unwrap();
    assert!(
        print["instruction"]
            .as_str()
            .unwrap()
            .contains("printed matter"),
        "{print}"
    );
    assert_eq!(print["file_name"], "brochure.jpg");
    // Overdue after the due day, in `status` too.
    let st = on_day_ok(&s, "2026-07-11", &["status"]);
    assert_eq!(st["takedowns_open"], 2);
    assert_eq!(st["takedowns_overdue"].as_array().unwrap().len(), 2, "{st}");
    assert_eq!(
        on_day_ok(&s, day, &["status"])["takedowns_overdue"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Closed with evidence, audited; never twice; never without evidence.
    let shot = s.write("removed.png", b"a screenshot of the page without the image");
    let done = on_day_ok(
        &s,
        day,
        &[
            "takedown",
            "done",
            &site,
            "--evidence",
            shot.to_str().unwrap(),
        ],
    );
    assert_eq!(done["status"], "done");
    assert_eq!(
        done["evidence_sha256"].as_str().unwrap(),
        sameframe::ids::sha256_hex(b"a screenshot of the page without the image")
    );
    s.fails(&["takedown", "done", &site, "--note", "again"], &["closed"]);
    s.fails(&["takedown", "done", &brochure], &["--evidence"]);
    s.fails(
        &["takedown", "done", "pub_0000000000000000", "--note", "x"],
        &["unknown publication or take-down pub_0000000000000000"],
    );
    on_day_ok(
        &s,
        day,
        &[
            "takedown",
            "done",
            &brochure,
            "--note",
            "print run recalled by the agency, 40 copies destroyed",
        ],
    );
    assert!(
        on_day_ok(&s, day, &["takedown", "list", "--open"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let log = s.ok(&["audit", "log"]);
    assert_eq!(
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "takedown.done")
            .count(),
        2
    );
    // A finished withdrawal run again says so, and where its certificate is.
    let again = withdraw(&["--scope", "publication", "--reason", "again"]);
    let msg = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && msg.contains("already withdrawn") && msg.contains("certificate"),
        "{msg}"
    );

    // Every copy the store recorded, before the erasure.
    let exports: Vec<String> = s
        .sql_one(if s.is_shared() {
            "SELECT string_agg(id, ',') FROM export"
        } else {
            "SELECT group_concat(id) FROM export"
        })
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    assert!(exports.len() >= 4, "{exports:?}");
    // Erasure: everything withdrawn, the clinical record released.
    let erased = json(withdraw(&[
        "--scope",
        "all",
        "--reason",
        "erasure request",
        "--purge-clinical-record",
        "--confirm",
    ]));
    let cert = &erased["certificate"];
    let listed: std::collections::HashSet<&str> =
        ["purged", "outside_copies", "station_copies", "retained"]
            .iter()
            .flat_map(|k| cert[k].as_array().unwrap())
            .filter_map(|i| i["subject_id"].as_str())
            .collect();
    for e in &exports {
        assert!(
            listed.contains(e.as_str()),
            "copy {e} missing from the certificate: {cert}"
        );
    }
    assert!(
        cert["outside_copies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["path"].as_str().unwrap().ends_with("review.html")),
        "{cert}"
    );
    let retained: Vec<&str> = cert["retained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    for k in ["patient_record", "consent_record", "audit_log"] {
        assert!(
            retained.contains(&k),
            "{k} not listed as kept: {retained:?}"
        );
    }
    let patient = cert["retained"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "patient_record")
        .unwrap();
    assert!(
        patient["detail"].as_str().unwrap().contains("E1"),
        "{patient}"
    );
    let text = std::fs::read_to_string(erased["certificate_text"].as_str().unwrap()).unwrap();
    assert!(
        text.contains("RETAINED")
            && text.contains("clinical-record retention")
            && !text.contains("RETAINED — what is kept, under which rule, for how long (0)"),
        "{text}"
    );

    // The exact file of the website publication is still online: caught, and said what to do.
    let r = s.ok(&["review", web_s]);
    let img = &r["images"][0];
    assert!(img["sources"].as_array().unwrap().is_empty(), "{img}");
    assert_eq!(img["verdict"], "fail", "{img}");
    assert!(has(img, "takedown", "fail", "withdrawn"), "{img}");
    assert!(
        img["action"].as_str().unwrap().starts_with("take down"),
        "{img}"
    );
    assert!(
        has(img, "takedown", "fail", "was closed on"),
        "the closed take-down is named: {img}"
    );
}

/// A follow-up that is the baseline's pixels moved (rotated, scaled, shifted, a gain change,
/// noise, re-encoded) is flagged when its derived data is made — at import, or by the backfill
/// a deferred import leaves — audited, and failed by `pair`; a new photo of the patient on
/// another day, and a burst frame of the same sitting, are not.
#[test]
fn a_follow_up_made_from_the_baselines_pixels_is_flagged() {
    let s = TestStore::new();
    let consent = s.patient_with_consent("G-1", "clinical");
    let shared = util::shared_fixtures();
    let face = |n: &str| -> Option<std::path::PathBuf> {
        shared
            .as_ref()
            .map(|d| d.join("faces").join(n))
            .filter(|p| p.is_file())
    };
    let base_file = face("obama.jpg").unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faces/astronaut.jpg")
    });
    let base_img = image::open(&base_file).unwrap().to_rgb8();
    let baseline = s.import(
        &base_file,
        "G-1",
        &consent,
        &["--captured-at", "2026-01-10T10:00:00", "--derive-now"],
    );
    let bid = baseline["capture_id"].as_str().unwrap().to_string();
    let copy = |seed: u64, th: f64, sc: f64| {
        let mut w = sameframe::testkit::warp_similarity(&base_img, 9.0, -6.0, th, sc, [0, 0, 0]);
        let mut rng = sameframe::testkit::Rng(seed);
        for p in w.pixels_mut() {
            p.0 =
                p.0.map(|v| (f64::from(v) * 1.04 + rng.gauss() * 2.0).clamp(0.0, 255.0) as u8);
        }
        jpeg(&w, 90)
    };
    // Imported with its derived data at once: flagged in the answer.
    let f1 = s.write("copy1.jpg", &copy(1, 4.8, 0.92));
    let out = s.import(
        &f1,
        "G-1",
        &consent,
        &["--captured-at", "2026-03-10T10:00:00", "--derive-now"],
    );
    let flag = &out["copy_of"];
    assert_eq!(flag["capture_id"], bid.as_str(), "{out}");
    assert!(
        (flag["rotation_deg"].as_f64().unwrap() - 4.8).abs() < 0.3,
        "{flag}"
    );
    assert!(
        (flag["scale"].as_f64().unwrap() - 0.92).abs() < 0.01,
        "{flag}"
    );
    assert!(
        out["warnings"].to_string().contains("not a new photo"),
        "{out}"
    );
    let g = s.ok(&["pair", &bid, out["capture_id"].as_str().unwrap()]);
    assert!(g.to_string().contains("not a new photo"), "{g}");
    assert_ne!(g["grade"], "A");
    // Imported deferred: flagged when the backfill makes its derived data.
    let f2 = s.write("copy2.jpg", &copy(2, -3.0, 1.06));
    let out2 = s.import(
        &f2,
        "G-1",
        &consent,
        &["--captured-at", "2026-05-10T10:00:00"],
    );
    let id2 = out2["capture_id"].as_str().unwrap().to_string();
    assert!(out2.get("copy_of").is_none());
    s.ok(&["fingerprint", "backfill"]);
    let shown = s.ok(&["capture", "show", &id2]);
    assert_eq!(shown["copy_of"]["capture_id"], bid.as_str(), "{shown}");
    let log = s.ok(&["audit", "log", "--action", "capture.copy_of"]);
    assert_eq!(log.as_array().unwrap().len(), 2, "{log}");
    // A burst frame of the baseline's sitting (same day) is not a follow-up copy.
    let f3 = s.write("burst.jpg", &copy(3, 0.5, 1.0));
    let burst = s.import(
        &f3,
        "G-1",
        &consent,
        &["--captured-at", "2026-01-10T10:00:05", "--derive-now"],
    );
    assert!(burst.get("copy_of").is_none(), "{burst}");
    // A new photo of the same person in another session is not a copy.
    if let Some(other) = face("obama2.jpg") {
        let new = s.import(
            &other,
            "G-1",
            &consent,
            &["--captured-at", "2026-07-10T10:00:00", "--derive-now"],
        );
        assert!(new.get("copy_of").is_none(), "{new}");
    }
    s.ok(&["audit", "verify"]);
}

/// The synthetic sittings the review tests use are new photos to the copy check (their fine
/// detail is out of register, as in real sessions), and the same scenes moved rigidly are
/// copies: the margins either side of the threshold, measured on 512-px previews.
#[test]
fn synthetic_sittings_are_new_photos_and_moved_pixels_are_copies() {
    use sameframe::analysis::copy_check::measure;
    use sameframe::records::copies::COPY_DETAIL;
    let preview = |img: &image::RgbImage| {
        let img = image::load_from_memory(&jpeg(img, 90)).unwrap().to_rgb8();
        image::imageops::thumbnail(&img, 512, 512 * img.height() / img.width())
    };
    let (mut sittings, mut copies) = (Vec::new(), Vec::new());
    for (i, tex) in TEXTURES.iter().enumerate() {
        let base = scene(tex, i as u64);
        let later = later_session(&base, 100 + i as u64);
        let moved = sameframe::testkit::warp_similarity(&base, 7.0, -4.0, 1.2, 0.98, [40, 40, 40]);
        let m = |b: &image::RgbImage| {
            measure(&preview(&base), &preview(b)).map(|m| m.detail_correlation)
        };
        sittings.push(m(&later).unwrap_or(0.0));
        copies.push(m(&moved).unwrap());
    }
    eprintln!("detail correlation: sittings {sittings:.3?}, moved copies {copies:.3?}");
    assert!(
        sittings.iter().all(|&c| c < COPY_DETAIL - 0.05),
        "{sittings:?}"
    );
    assert!(copies.iter().all(|&c| c > COPY_DETAIL + 0.2), "{copies:?}");
}

/// Look-alike captures of one patient: the baseline, a burst frame of its sitting, two
/// follow-ups that are the baseline's pixels moved (rotated, scaled, shifted, with a gain
/// change and noise), and two real later photos. Each is published alone and in pairs,
/// resized and re-encoded; every panel must name its capture exactly, or say it cannot tell
/// among candidates that include the right one — never a confident wrong name.
#[test]
fn look_alike_captures_are_named_exactly_or_with_their_doubt() {
    let s = TestStore::new();
    let consent = s.patient_with_consent("L-1", "clinical,publication");
    let shared = util::shared_fixtures();
    let face = |n: &str| {
        shared
            .as_ref()
            .map(|d| d.join("faces").join(n))
            .filter(|p| p.is_file())
            .map(|p| image::open(p).unwrap().to_rgb8())
    };
    let base = face("obama.jpg").unwrap_or_else(|| fixture("faces/astronaut.jpg"));
    let moved = |seed: u64, dx: f64, dy: f64, th: f64, sc: f64, gain: f64| {
        let mut w = sameframe::testkit::warp_similarity(&base, dx, dy, th, sc, [0, 0, 0]);
        let mut rng = sameframe::testkit::Rng(seed);
        for p in w.pixels_mut() {
            p.0 =
                p.0.map(|v| (f64::from(v) * gain + rng.gauss() * 2.0).clamp(0.0, 255.0) as u8);
        }
        w
    };
    let later = |name: &str, seed: u64| {
        face(name)
            .map(|img| {
                resize(
                    &img,
                    base.width(),
                    base.width() * img.height() / img.width(),
                )
            })
            .unwrap_or_else(|| later_session(&base, seed))
    };
    let captures: Vec<(&str, &str, image::RgbImage)> = vec![
        ("baseline", "2026-01-10T10:00:00", base.clone()),
        (
            "burst",
            "2026-01-10T10:00:04",
            moved(1, 3.0, -2.0, 0.3, 1.0, 1.0),
        ),
        (
            "copy1",
            "2026-03-10T10:00:00",
            moved(2, 9.0, -6.0, 4.8, 0.92, 1.04),
        ),
        (
            "copy2",
            "2026-05-10T10:00:00",
            moved(3, -7.0, 5.0, -3.0, 1.06, 0.96),
        ),
        ("later1", "2026-07-10T10:00:00", later("obama2.jpg", 71)),
        ("later2", "2026-09-10T10:00:00", later("obama3.jpg", 72)),
    ];
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    for (name, at, img) in &captures {
        let f = s.write(&format!("{name}.jpg"), &jpeg(img, 92));
        let out = s.import(&f, "L-1", &consent, &["--captured-at", at, "--derive-now"]);
        ids.insert(name, out["capture_id"].as_str().unwrap().to_string());
    }
    let img_of = |n: &str| &captures.iter().find(|c| c.0 == n).unwrap().2;
    // Published: each alone (1280 px wide, JPEG 80) and pairs side by side.
    let mut expected: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, _, img) in &captures {
        let file = format!("single_{name}.jpg");
        let small = resize(img, 1280, 1280 * img.height() / img.width());
        write_jpeg(&s, "web", &file, &reencode(&small, 80));
        expected.push((file, vec![name]));
    }
    for (a, b) in [
        ("baseline", "copy1"),
        ("baseline", "copy2"),
        ("burst", "copy1"),
        ("copy1", "copy2"),
        ("baseline", "later1"),
        ("later1", "later2"),
    ] {
        let file = format!("pair_{a}_{b}.jpg");
        let pair = composite(img_of(a), img_of(b), 640, 12, false, false);
        write_jpeg(&s, "web", &file, &reencode(&pair, 82));
        expected.push((file, vec![a, b]));
    }
    let r = s.ok(&["review", s.path("web").to_str().unwrap()]);
    let (mut exact, mut doubt, mut wrong) = (0, Vec::new(), Vec::new());
    for (file, truth) in &expected {
        let rep = image_report(&r, file);
        let sources = rep["sources"].as_array().unwrap();
        assert_eq!(sources.len(), truth.len(), "{file}: {rep}");
        for (src, want) in sources.iter().zip(truth) {
            let named = src["capture_id"].as_str().unwrap();
            let also: Vec<&str> = src["could_also_be"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
                .unwrap_or_default();
            let want_id = ids[want].as_str();
            let label = |id: &str| {
                ids.iter()
                    .find(|(_, v)| *v == id)
                    .map(|(k, _)| *k)
                    .unwrap_or("?")
            };
            if named == want_id && also.is_empty() {
                exact += 1;
            } else if named == want_id || also.contains(&want_id) {
                doubt.push(format!(
                    "{file}: {want} among {}, {:?}",
                    label(named),
                    also.iter().map(|a| label(a)).collect::<Vec<_>>()
                ));
                assert!(
                    has(rep, "source", "warn", "cannot tell which capture"),
                    "{file}: doubt without a finding: {rep}"
                );
            } else {
                wrong.push(format!(
                    "{file}: {want} named {} (also {:?})",
                    label(named),
                    also.iter().map(|a| label(a)).collect::<Vec<_>>()
                ));
            }
        }
    }
    eprintln!(
        "look-alikes: {exact} panels named exactly; cannot tell: {doubt:#?}; wrong: {wrong:#?}"
    );
    assert!(wrong.is_empty(), "confident wrong names: {wrong:#?}");
    // Real photos of separate sessions are told apart: doubt is kept for look-alikes.
    for file in [
        "single_later1.jpg",
        "single_later2.jpg",
        "pair_later1_later2.jpg",
    ] {
        assert!(
            !doubt.iter().any(|d| d.starts_with(file)),
            "{file}: {doubt:#?}"
        );
    }
}
