//! The treatment record through the real binary: products and lots (expired refused), the area
//! map drawn on a baseline and carried onto warped follow-ups, lot trace, skin response, pain,
//! outcome, adverse events, refusals with nothing written, withdrawal and purge, and the visit
//! summary rendered by headless Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use image::RgbImage;
use sameframe::testkit::warp_similarity;
use serde_json::{Value, json};
use util::TestStore;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A 1080p frontal face: the shared fixtures' real 1080p photo, else the bundled astronaut
/// scaled up.
fn face_1080p() -> RgbImage {
    if let Some(shared) = util::shared_fixtures() {
        let p = shared.join("faces/obama-1080p.jpg");
        if p.is_file() {
            return image::open(p).unwrap().to_rgb8();
        }
    }
    let img = image::open(fixture("faces/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    image::imageops::resize(&img, 1440, 1080, image::imageops::FilterType::CatmullRom)
}

fn save_jpeg(s: &TestStore, name: &str, img: &RgbImage) -> PathBuf {
    let p = s.path(name);
    img.save(&p).unwrap();
    p
}

fn id(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

/// Patient P-1 with a clinical+publication consent, a face visit on 2026-02-01 with two
/// products, and the baseline imported at it. Returns (consent, visit, baseline).
fn treated(s: &TestStore, base: &Path) -> (String, String, String) {
    let consent = s.patient_with_consent("P-1", "clinical,publication");
    let visit = id(
        &s.ok(&[
            "visit",
            "add",
            "--patient",
            "P-1",
            "--area",
            "face",
            "--date",
            "2026-02-01",
            "--product",
            "Profhilo",
            "--lot",
            "L2311",
            "--lot-expiry",
            "2027-01-31",
        ]),
        "visit_id",
    );
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
        "2026-12-31",
        "--quantity",
        "1",
        "--unit",
        "ml",
    ]);
    let b = s.import(
        base,
        "P-1",
        &consent,
        &["--visit", &visit, "--captured-at", "2026-02-01T10:00:00"],
    );
    (consent, visit, id(&b, "capture_id"))
}

/// `visit product add` of a lot and its expiry.
fn add_product(s: &TestStore, visit: &str, product: &str, lot: &str, expiry: &str) -> Value {
    s.ok(&[
        "visit",
        "product",
        "add",
        visit,
        "--product",
        product,
        "--lot",
        lot,
        "--expiry",
        expiry,
    ])
}

/// `map set` of `map` on `capture` for `visit`.
fn set_map(s: &TestStore, visit: &str, capture: &str, map: &Value) -> Value {
    let file = s.write("map.json", map.to_string().as_bytes());
    s.ok(&[
        "map",
        "set",
        "--visit",
        visit,
        "--capture",
        capture,
        "--file",
        file.to_str().unwrap(),
    ])
}

fn map_json(points: &[[f64; 2]]) -> Value {
    json!({
        "zones": [{"zone": "cheeks", "polygon": [[500.0, 500.0], [700.0, 480.0], [720.0, 700.0], [520.0, 720.0]]}],
        "points": points.iter().enumerate().map(|(i, p)| json!({
            "x": p[0], "y": p[1], "zone": "cheeks",
            "lot": if i % 2 == 0 { "L2311" } else { "SV-88" },
            "depth": "intradermal", "technique": "microbolus", "volume_ml": 0.05, "gauge": "32G"
        })).collect::<Vec<_>>()
    })
}

/// Where the test warp puts a baseline point (see `warp_similarity`: continuous pixel
/// coordinates, pixel centres at +0.5).
fn warped(p: [f64; 2], w: u32, h: u32, (dx, dy, th, s): (f64, f64, f64, f64)) -> [f64; 2] {
    let c = [f64::from(w) / 2.0, f64::from(h) / 2.0];
    let (ct, st) = (th.to_radians().cos(), th.to_radians().sin());
    let (u, v) = (p[0] + 0.5 - c[0], p[1] + 0.5 - c[1]);
    [
        c[0] + s * (ct * u + st * v) + dx - 0.5,
        c[1] + s * (-st * u + ct * v) + dy - 0.5,
    ]
}

#[test]
fn a_map_drawn_on_the_baseline_lands_on_the_same_skin_in_warped_follow_ups() {
    let s = TestStore::new();
    let base = face_1080p();
    let (w, h) = base.dimensions();
    let (consent, visit, baseline) = treated(&s, &save_jpeg(&s, "base.jpg", &base));
    // Points over the whole face region and towards the corners.
    let pts: Vec<[f64; 2]> = (0..12)
        .map(|i| {
            let a = f64::from(i) * 0.52;
            [
                f64::from(w) * (0.5 + 0.3 * a.cos()),
                f64::from(h) * (0.5 + 0.3 * a.sin()),
            ]
        })
        .collect();
    let set = set_map(&s, &visit, &baseline, &map_json(&pts));
    assert_eq!(set["kind"], "map");
    assert_eq!(set["points"].as_array().unwrap().len(), 12);
    assert_eq!(set["points"][1]["product"], "Skinvive");

    let warps = [
        (25.0, -18.0, 3.0, 0.95),
        (-40.0, 30.0, -4.5, 1.06),
        (12.0, 8.0, 1.5, 1.0),
        (0.0, 0.0, 0.0, 0.92),
    ];
    let mut worst: f64 = 0.0;
    for (k, t) in warps.iter().enumerate() {
        let mut f = warp_similarity(&base, t.0, t.1, t.2, t.3, [40, 40, 40]);
        for p in f.pixels_mut() {
            p.0 = p.0.map(|v| (f64::from(v) * 1.04).min(255.0) as u8);
        }
        let file = save_jpeg(&s, &format!("follow-{k}.jpg"), &f);
        let date = format!("2026-0{}-01T10:00:00", k + 3);
        let fu = id(
            &s.import(&file, "P-1", &consent, &["--captured-at", &date]),
            "capture_id",
        );
        let shown = s.ok(&["map", "show", "--capture", &fu]);
        assert_eq!(shown["drawn_on"], baseline.as_str());
        for (i, p) in pts.iter().enumerate() {
            let truth = warped(*p, w, h, *t);
            let got = &shown["points"][i];
            let err = (got["x"].as_f64().unwrap() - truth[0])
                .hypot(got["y"].as_f64().unwrap() - truth[1]);
            worst = worst.max(err);
            assert!(
                err <= 2.0,
                "warp {t:?}, point {i}: {err:.2} px off ({got} vs {truth:?})"
            );
        }
    }
    eprintln!(
        "map transfer: worst error {worst:.3} px over {} points",
        12 * warps.len()
    );
    // The baseline itself shows the map where it was drawn.
    let own = s.ok(&["map", "show", "--capture", &baseline]);
    assert_eq!(own["points"][0]["x"].as_f64().unwrap(), pts[0][0]);
    // SVG and PNG files; an existing output is refused.
    let svg = s.path("map.svg");
    let png = s.path("map.png");
    s.ok(&[
        "map",
        "show",
        "--capture",
        &baseline,
        "--svg",
        svg.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(text.matches("class=\"point\"").count(), 12);
    assert!(text.contains("data-zone=\"cheeks\""));
    assert!(image::open(&png).is_ok());
    s.fails(
        &[
            "map",
            "show",
            "--capture",
            &baseline,
            "--svg",
            svg.to_str().unwrap(),
        ],
        &["already exists"],
    );
}

fn rows(s: &TestStore, table: &str) -> usize {
    s.sql(&format!("SELECT COUNT(*) FROM {table}"))[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn refusals_are_clear_and_write_nothing() {
    let s = TestStore::new();
    let img = image::open(fixture("faces/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let (_, visit, baseline) = treated(&s, &save_jpeg(&s, "base.jpg", &img));
    s.ok(&["patient", "add", "--ref", "P-2"]);
    let other_consent = id(
        &s.ok(&[
            "consent",
            "grant",
            "--patient",
            "P-2",
            "--scope",
            "clinical",
            "--signed-by",
            "P-2",
            "--signed-on",
            "2026-01-05",
        ]),
        "consent_id",
    );
    let other = id(
        &s.import(&fixture("textures/coffee.jpg"), "P-2", &other_consent, &[]),
        "capture_id",
    );
    let before = (rows(&s, "treatment"), rows(&s, "audit"));
    let map = |v: Value| s.write("m.json", v.to_string().as_bytes());
    let set = |f: &Path, cap: &str| -> Vec<String> {
        vec![
            "map".into(),
            "set".into(),
            "--visit".into(),
            visit.clone(),
            "--capture".into(),
            cap.into(),
            "--file".into(),
            f.to_str().unwrap().into(),
        ]
    };
    let fails = |args: Vec<String>, needles: &[&str]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        s.fails(&a, needles);
    };
    // Expired lot; pain outside 0–10; bad GAIS; unknown response; unknown visit.
    fails(
        vec![
            "visit".into(),
            "product".into(),
            "add".into(),
            visit.clone(),
            "--product".into(),
            "X".into(),
            "--lot".into(),
            "OLD-1".into(),
            "--expiry".into(),
            "2026-01-31".into(),
        ],
        &["OLD-1", "expired on 2026-01-31", "--expired-lot-reason"],
    );
    for score in ["11", "-1"] {
        fails(
            vec![
                "visit".into(),
                "pain".into(),
                visit.clone(),
                "--score".into(),
                score.into(),
            ],
            &[score, "0–10"],
        );
    }
    fails(
        vec![
            "visit".into(),
            "outcome".into(),
            visit.clone(),
            "--patient-gais".into(),
            "7".into(),
        ],
        &["GAIS"],
    );
    fails(
        vec![
            "visit".into(),
            "response".into(),
            visit.clone(),
            "--finding".into(),
            "rash=mild".into(),
        ],
        &["rash", "erythema"],
    );
    fails(
        vec![
            "visit".into(),
            "pain".into(),
            "vis_nope".into(),
            "--score".into(),
            "3".into(),
        ],
        &["vis_nope"],
    );
    // Map point outside the image, another patient's capture, unknown zone, unknown product.
    let p = |x: f64, lot: &str| json!({"x": x, "y": 100.0, "lot": lot, "depth": "intradermal", "technique": "bolus"});
    fails(
        set(&map(json!({"points": [p(5000.0, "L2311")]})), &baseline),
        &["injection point 1", "outside", &baseline],
    );
    fails(
        set(&map(json!({"points": [p(10.0, "L2311")]})), &other),
        &[&other, "another patient"],
    );
    fails(
        set(
            &map(json!({"zones": [{"zone": "elbow", "polygon": [[1,1],[2,2],[3,1]]}]})),
            &baseline,
        ),
        &["elbow", "cheeks"],
    );
    fails(
        set(&map(json!({"points": [p(10.0, "NOPE")]})), &baseline),
        &["NOPE", "L2311"],
    );
    fails(
        set(
            &map(
                json!({"points": [{"x": 10.0, "y": 10.0, "lot": "L2311", "depth": "deep", "technique": "bolus"}]}),
            ),
            &baseline,
        ),
        &["depth", "intradermal"],
    );
    fails(
        set(&s.write("bad.json", b"{not json"), &baseline),
        &["bad.json"],
    );
    // An adverse event naming a lot not used at the visit.
    fails(
        vec![
            "adverse".into(),
            "add".into(),
            "--visit".into(),
            visit.clone(),
            "--onset".into(),
            "2026-02-02".into(),
            "--description".into(),
            "nodule".into(),
            "--severity".into(),
            "mild".into(),
            "--lot".into(),
            "L9".into(),
        ],
        &["lot L9", "not recorded"],
    );
    assert_eq!(
        (rows(&s, "treatment"), rows(&s, "audit")),
        before,
        "a refusal wrote something"
    );
    // With a reason, the expired lot is recorded and the override audited.
    s.ok(&[
        "visit",
        "product",
        "add",
        &visit,
        "--product",
        "X",
        "--lot",
        "OLD-1",
        "--expiry",
        "2026-01-31",
        "--expired-lot-reason",
        "batch checked against the recall list",
    ]);
    let log = s.ok(&["audit", "log"]);
    assert!(
        log.to_string()
            .contains("batch checked against the recall list"),
        "{log}"
    );
}

#[test]
fn lot_trace_finds_every_use_and_nothing_else() {
    let s = TestStore::new();
    let lots = ["L2311", "L231", "L2311A", "M-7"];
    let mut truth: Vec<(String, String)> = Vec::new(); // (visit, lot) uses of L2311
    let mut visits_with_point: Vec<String> = Vec::new();
    for p in 0..6 {
        let r = format!("P-{p}");
        let consent = s.patient_with_consent(&r, "clinical");
        for v in 0..3 {
            let lot = lots[(p + v) % lots.len()];
            let date = format!("2026-0{}-1{p}", v + 2);
            let visit = id(
                &s.ok(&[
                    "visit",
                    "add",
                    "--patient",
                    &r,
                    "--area",
                    "face",
                    "--date",
                    &date,
                ]),
                "visit_id",
            );
            add_product(&s, &visit, "Booster", lot, "2027-06-30");
            if lot == "L2311" {
                truth.push((visit.clone(), r.clone()));
            }
            // Every other visit also used L2311 on one map point, beside its own lot.
            if v == 1 && lot != "L2311" {
                add_product(&s, &visit, "Booster", "l2311 ", "2027-06-30");
                let img = util::images::jpeg(320, 240, (p * 10 + v) as u64);
                let f = s.write(&format!("c{p}{v}.jpg"), &img);
                let cap = id(
                    &s.import(&f, &r, &consent, &["--visit", &visit]),
                    "capture_id",
                );
                let m = json!({"points": [
                    {"x": 10.0, "y": 10.0, "lot": lot, "depth": "intradermal", "technique": "bolus"},
                    {"x": 20.0, "y": 20.0, "lot": "l2311", "depth": "intradermal", "technique": "bolus"}
                ]});
                set_map(&s, &visit, &cap, &m);
                truth.push((visit.clone(), r.clone()));
                visits_with_point.push(visit);
            }
        }
    }
    let t = s.ok(&["lot", "trace", "L2311"]);
    let mut got: Vec<(String, String)> = t["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (id(u, "visit_id"), id(u, "patient_ref")))
        .collect();
    got.sort();
    truth.sort();
    assert_eq!(got, truth, "{t}");
    for u in t["uses"].as_array().unwrap() {
        let v = id(u, "visit_id");
        let points = u["map_points"].as_array().unwrap();
        if visits_with_point.contains(&v) {
            assert_eq!(points.len(), 1, "{u}");
            assert_eq!(points[0]["point"], 2);
            assert_eq!(u["captures"].as_array().unwrap().len(), 1);
        } else {
            assert!(points.is_empty());
        }
    }
    assert_eq!(t["patients"].as_u64().unwrap() as usize, {
        let mut p: Vec<&String> = truth.iter().map(|(_, r)| r).collect();
        p.sort();
        p.dedup();
        p.len()
    });
    // A lot used nowhere: an empty answer, not an error.
    assert_eq!(s.ok(&["lot", "trace", "ZZZ"])["visits"], 0);
}

#[test]
fn response_pain_outcome_and_adverse_events_are_recorded_and_shown() {
    let s = TestStore::new();
    let img = image::open(fixture("faces/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let (_, visit, baseline) = treated(&s, &save_jpeg(&s, "base.jpg", &img));
    let (c, out) = s.run(&[
        "visit",
        "response",
        &visit,
        "--finding",
        "erythema=mild",
        "--finding",
        &format!("blanching=moderate:{baseline}"),
        "--note",
        "settled in 10 min",
    ]);
    assert!(out.status.success(), "{c:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARNING") && err.contains("vascular occlusion"),
        "{err}"
    );
    s.ok(&["visit", "pain", &visit, "--score", "4", "--when", "during"]);
    s.ok(&[
        "visit",
        "pain",
        &visit,
        "--score",
        "2",
        "--when",
        "end",
        "--comment",
        "ok",
    ]);
    s.ok(&[
        "visit",
        "outcome",
        &visit,
        "--patient-gais",
        "much improved",
        "--clinician-gais",
        "3",
        "--satisfaction",
        "8",
        "--text",
        "smoother cheeks",
    ]);
    let ae = s.ok(&[
        "adverse",
        "add",
        "--visit",
        &visit,
        "--onset",
        "2026-02-03",
        "--description",
        "nodule at cheek",
        "--severity",
        "moderate",
        "--action",
        "massage, review in 1 week",
        "--escalated",
        "--lot",
        "L2311",
        "--capture",
        &baseline,
    ]);
    assert_eq!(ae["kind"], "adverse");
    let shown = s.ok(&["visit", "show", &visit]);
    let t = &shown["treatment"];
    assert_eq!(t["products"].as_array().unwrap().len(), 2);
    assert_eq!(t["pain"].as_array().unwrap().len(), 2);
    assert_eq!(t["responses"][0][1]["findings"][1]["severity"], "moderate");
    assert_eq!(t["outcomes"][0][1]["patient_gais"], 2);
    assert!(
        t["outcomes"][0][1]["success_definition"]
            .as_str()
            .unwrap()
            .contains("Success")
    );
    let list = s.ok(&["adverse", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["lot"], "L2311");
    assert_eq!(list[0]["escalated"], true);
    // A second response replaces the first.
    s.ok(&["visit", "response", &visit, "--finding", "erythema=none"]);
    let shown = s.ok(&["visit", "show", &visit]);
    assert_eq!(shown["treatment"]["responses"].as_array().unwrap().len(), 1);
    // The records are sealed and bound to the audit chain: verify is clean.
    let v = s.ok(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn withdrawal_removes_maps_responses_and_outcomes_only_with_the_clinical_record() {
    for purge in [false, true] {
        let s = TestStore::new();
        let img = image::open(fixture("faces/astronaut.jpg"))
            .unwrap()
            .to_rgb8();
        let (consent, visit, baseline) = treated(&s, &save_jpeg(&s, "base.jpg", &img));
        let m = json!({"zones": [{"zone": "cheeks", "polygon": [[100, 100], [200, 100], [150, 200]]}],
                       "points": [{"x": 150.0, "y": 140.0, "zone": "cheeks", "lot": "L2311",
                                   "depth": "intradermal", "technique": "nappage"}]});
        set_map(&s, &visit, &baseline, &m);
        s.ok(&["visit", "response", &visit, "--finding", "erythema=mild"]);
        s.ok(&["visit", "pain", &visit, "--score", "3"]);
        s.ok(&["visit", "outcome", &visit, "--clinician-gais", "2"]);
        s.ok(&[
            "adverse",
            "add",
            "--visit",
            &visit,
            "--onset",
            "2026-02-02",
            "--description",
            "bruise",
            "--severity",
            "mild",
            "--lot",
            "L2311",
        ]);
        assert_eq!(rows(&s, "treatment"), 7);
        let mut args = vec![
            "consent",
            "withdraw",
            &consent,
            "--scope",
            "all",
            "--reason",
            "patient request",
        ];
        if purge {
            args.extend(["--purge-clinical-record", "--confirm"]);
        }
        let w = s.ok(&args);
        let kinds: Vec<String> = s
            .sql("SELECT kind FROM treatment ORDER BY kind")
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        if purge {
            // Products and the adverse event stay with the visit (recall, pharmacovigilance).
            assert_eq!(kinds, ["adverse", "product", "product"], "{w}");
            let t = s.ok(&["lot", "trace", "L2311"]);
            assert_eq!(t["visits"], 1);
            assert!(t["uses"][0]["map_points"].as_array().unwrap().is_empty());
            s.fails(&["map", "show", "--capture", &baseline], &[&baseline]);
        } else {
            assert_eq!(kinds.len(), 7, "kept under retention: {w}");
            assert!(
                w.to_string().contains("retained") && w.to_string().contains("treatment"),
                "{w}"
            );
        }
        let v = s.ok(&["audit", "verify"]);
        assert_eq!(v["ok"], true, "{v}");
    }
}

/// Whether Chromium is here; when it is not and the run requires it, fail.
fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(name.to_string());
        }
    }
    assert!(
        std::env::var("SAMEFRAME_TEST_PUBLISH_TOOLS").as_deref() != Ok("required"),
        "chromium is missing (scripts/setup-debian.sh --gui installs it)"
    );
    eprintln!("notice: chromium is not installed; skipping the rendering check");
    None
}

#[test]
fn the_visit_summary_renders_in_a_browser_with_the_map_visible() {
    let s = TestStore::new();
    let base = face_1080p();
    let (consent, visit, baseline) = treated(&s, &save_jpeg(&s, "base.jpg", &base));
    // The face zones placed from the baseline's landmarks; points spread over each cheek.
    let template = s.ok(&["map", "template", "--capture", &baseline]);
    let zones = template["zones"].as_array().unwrap();
    assert_eq!(
        zones.iter().filter(|z| z["zone"] == "cheeks").count(),
        2,
        "both cheeks placed: {template}"
    );
    let mut points = Vec::new();
    for (k, z) in zones.iter().filter(|z| z["zone"] == "cheeks").enumerate() {
        let poly: Vec<[f64; 2]> = serde_json::from_value(z["polygon"].clone()).unwrap();
        let n = poly.len() as f64;
        let c = poly
            .iter()
            .fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
        for i in 0..4 {
            let t = f64::from(i) / 3.0 - 0.5;
            points.push(
                json!({"x": c[0] + t * 40.0, "y": c[1] + t * 25.0, "zone": "cheeks",
                "lot": if k == 0 { "L2311" } else { "SV-88" }, "depth": "intradermal",
                "technique": "microbolus", "volume_ml": 0.05, "gauge": "32G"}),
            );
        }
    }
    set_map(
        &s,
        &visit,
        &baseline,
        &json!({"zones": zones, "points": points}),
    );
    s.ok(&[
        "visit",
        "response",
        &visit,
        "--finding",
        "erythema=mild",
        "--finding",
        "blanching=mild",
    ]);
    s.ok(&["visit", "pain", &visit, "--score", "3", "--when", "during"]);
    let follow = warp_similarity(&base, 15.0, -10.0, 2.0, 0.97, [30, 30, 30]);
    s.import(
        &save_jpeg(&s, "f.jpg", &follow),
        "P-1",
        &consent,
        &["--captured-at", "2026-04-01T10:00:00"],
    );
    let html = s.path("summary.html");
    s.ok(&["visit", "show", &visit, "--html", html.to_str().unwrap()]);
    let page = std::fs::read_to_string(&html).unwrap();
    for needle in [
        "Profhilo",
        "L2311",
        "SV-88",
        "Blanching",
        "vascular occlusion",
        "3/10",
        "Comparability grade",
        "Success",
    ] {
        assert!(page.contains(needle), "the summary lacks {needle}");
    }
    // Both photos carry the map: the baseline's 8 points and the follow-up's 8 moved ones.
    assert_eq!(page.matches("class=\"point\"").count(), 16);
    s.fails(
        &["visit", "show", &visit, "--html", html.to_str().unwrap()],
        &["already exists"],
    );
    if let Some(chrome) = chromium() {
        let shot = s.path("summary.png");
        let out = Command::new(&chrome)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1200,1600",
            ])
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", html.display()))
            .env("HOME", s.path("home"))
            .output()
            .unwrap();
        assert!(
            shot.is_file(),
            "no screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let img = image::open(&shot).unwrap().to_rgb8();
        // The map's points (red and blue) and zone outline (yellow) are on screen.
        let near = |c: [u8; 3]| {
            img.pixels()
                .filter(|p| p.0.iter().zip(c).all(|(a, b)| a.abs_diff(b) < 40))
                .count()
        };
        let (red, blue, yellow) = (
            near([230, 60, 60]),
            near([40, 120, 230]),
            near([255, 212, 0]),
        );
        eprintln!(
            "summary screenshot {}: red {red}, blue {blue}, yellow {yellow} pixels",
            shot.display()
        );
        assert!(
            red > 20 && blue > 20 && yellow > 20,
            "the map is not visible: {red} {blue} {yellow}"
        );
        if let Ok(dir) = std::env::var("SAMEFRAME_KEEP_SCREENSHOTS") {
            std::fs::copy(&shot, Path::new(&dir).join("visit-summary.png")).unwrap();
        }
    }
    // The page holds pictures of the patient: a withdrawal lists it among the copies to delete.
    let w = s.ok(&[
        "consent",
        "withdraw",
        &consent,
        "--scope",
        "all",
        "--reason",
        "patient request",
    ]);
    assert!(w.to_string().contains("summary.html"), "{w}");
}
