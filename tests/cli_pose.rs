//! `sameframe analyze pose` through the real binary.

#![allow(clippy::unwrap_used)]

mod util;

use sameframe::testkit::warp_similarity;
use util::TestStore;

fn texture(w: u32, h: u32) -> image::RgbImage {
    let img = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/textures/coffee.jpg"
    ))
    .unwrap()
    .to_rgb8();
    image::imageops::resize(&img, w, h, image::imageops::FilterType::CatmullRom)
}

/// `sameframe analyze pose --baseline BASE --frame FRAME [--area AREA]` in `s`, which must
/// succeed; its JSON report.
fn pose(s: &TestStore, base: &str, frame: &str, area: Option<&str>) -> serde_json::Value {
    let mut args = vec!["analyze", "pose", "--baseline", base, "--frame", frame];
    args.extend(area.map(|a| ["--area", a]).into_iter().flatten());
    s.ok(&args)
}

#[test]
fn analyze_pose_prints_the_documented_json() {
    let s = TestStore::new();
    let base = texture(1280, 720);
    let frame = warp_similarity(&base, 30.0, -6.0, 3.0, 1.05, [0, 0, 0]);
    let (a, b) = (s.path("base.png"), s.path("frame.png"));
    base.save(&a).unwrap();
    frame.save(&b).unwrap();
    let r = pose(&s, a.to_str().unwrap(), b.to_str().unwrap(), Some("hands"));
    for k in [
        "dx_px",
        "dy_px",
        "rotation_deg",
        "scale",
        "score",
        "confidence",
    ] {
        assert!(r[k].is_number(), "{k}: {r}");
    }
    assert!(
        r["yaw_deg"].is_null() && r["pitch_deg"].is_null() && r["expression"].is_null(),
        "no face path for hands: {r}"
    );
    assert_eq!(r["method"], "features");
    assert!(r["inliers"].as_u64().unwrap() > 10);
    assert_eq!(r["within_tolerance"], false);
    assert!(
        r["hints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str().unwrap().contains("left of the frame")),
        "{r}"
    );
    assert!(r["reasons"].is_array());
    assert!(
        r["hints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str().unwrap() == "rotate the subject 3° clockwise as seen on screen"),
        "{r}"
    );
    assert!((r["dx_px"].as_f64().unwrap() - 30.0).abs() < 1.0);
    assert!((r["rotation_deg"].as_f64().unwrap() - 3.0).abs() < 0.2);
}

#[test]
fn capture_ids_can_be_compared_and_bad_files_are_named() {
    let s = TestStore::new();
    let cid = s.patient_with_consent("P1", "clinical");
    let face = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/faces/astronaut.jpg"
    ))
    .unwrap()
    .to_rgb8();
    let follow = warp_similarity(&face, 0.0, 0.0, 0.0, 1.0, [0, 0, 0]);
    let (a, b) = (s.path("a.png"), s.path("b.png"));
    face.save(&a).unwrap();
    follow.save(&b).unwrap();
    let c1 = s.import(&a, "P1", &cid, &[]);
    let r = pose(
        &s,
        c1["capture_id"].as_str().unwrap(),
        b.to_str().unwrap(),
        None,
    );
    assert_eq!(r["method"], "face+features");
    assert_eq!(r["within_tolerance"], true, "{r}");
    assert!(r["expression"]["smile_width"].is_number());

    let bytes = std::fs::read(&b).unwrap();
    let t = s.write("cut.png", &bytes[..bytes.len() / 2]);
    s.fails(
        &[
            "analyze",
            "pose",
            "--baseline",
            a.to_str().unwrap(),
            "--frame",
            t.to_str().unwrap(),
        ],
        &["cut.png", "truncated"],
    );
    s.fails(
        &[
            "analyze",
            "pose",
            "--baseline",
            "cap_0000000000000000",
            "--frame",
            b.to_str().unwrap(),
        ],
        &["unknown capture cap_0000000000000000"],
    );
}

#[test]
fn many_frames_are_scored_against_one_baseline_each_on_its_own() {
    let s = TestStore::new();
    let base = texture(960, 540);
    let (a, b, c) = (s.path("base.png"), s.path("near.png"), s.path("far.png"));
    base.save(&a).unwrap();
    warp_similarity(&base, 2.0, 1.0, 0.2, 1.0, [0, 0, 0])
        .save(&b)
        .unwrap();
    warp_similarity(&base, 40.0, -12.0, 4.0, 1.08, [0, 0, 0])
        .save(&c)
        .unwrap();
    let missing = s.path("missing.png");
    let frames = [
        b.to_str().unwrap(),
        missing.to_str().unwrap(),
        c.to_str().unwrap(),
    ];
    let mut args = vec![
        "analyze",
        "pose",
        "--baseline",
        a.to_str().unwrap(),
        "--area",
        "hands",
        "--frame",
    ];
    args.extend(frames);
    let (_, out) = s.run(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a frame that cannot be read fails the run"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for (entry, f) in list.iter().zip(frames) {
        assert_eq!(entry["frame"], f);
    }
    // Each frame's own numbers: the one moved 40 px scores worse than the one moved 2 px, and
    // both are the numbers a run with that frame alone gives.
    let near = list[0]["report"]["score"].as_f64().unwrap();
    let far = list[2]["report"]["score"].as_f64().unwrap();
    assert!(near > far, "near {near}, far {far}");
    assert!(
        list[1]["error"].as_str().unwrap().contains("missing.png"),
        "{}",
        list[1]
    );
    let alone = pose(&s, a.to_str().unwrap(), c.to_str().unwrap(), Some("hands"));
    assert_eq!(alone["score"], list[2]["report"]["score"]);
    assert_eq!(alone["dx_px"], list[2]["report"]["dx_px"]);
}

/// The face models are parsed once and kept in the data directory's model cache: a later
/// process reads them there and scores the same; a damaged or stale copy is made again, never
/// used; a scalp or body area never needs them.
#[test]
fn the_face_models_are_cached_checked_and_remade() {
    let s = TestStore::new();
    let face = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/faces/astronaut.jpg"
    ))
    .unwrap()
    .to_rgb8();
    let frame = warp_similarity(&face, 6.0, -4.0, 2.0, 1.02, [0, 0, 0]);
    let (a, b) = (s.path("base.png"), s.path("frame.png"));
    face.save(&a).unwrap();
    frame.save(&b).unwrap();
    let args = |area: &'static str| {
        vec![
            "analyze".to_string(),
            "pose".into(),
            "--baseline".into(),
            a.display().to_string(),
            "--frame".into(),
            b.display().to_string(),
            "--area".into(),
            area.into(),
        ]
    };
    let run = |area: &'static str| {
        let v = args(area);
        s.ok(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let cache = s.data.join("cache").join("models");
    let files_in = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let cached = || files_in(&cache);
    run("scalp");
    assert!(
        cached().is_empty(),
        "a scalp comparison loaded the face models: {:?}",
        cached()
    );
    let first = run("face");
    assert_eq!(first["method"], "face+features", "{first}");
    let files = cached();
    let tars: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    assert_eq!(tars.len(), 2, "{files:?}");
    assert_eq!(
        files.len(),
        4,
        "each cached model has its checksum: {files:?}"
    );
    // The baseline's face is kept too, named by the file's hash, with its checksum.
    let base_sha = sameframe::ids::sha256_hex(&std::fs::read(&a).unwrap());
    let faces = files_in(&cache.join("faces"));
    assert_eq!(faces.len(), 2, "{faces:?}");
    assert!(
        faces.iter().all(|p| p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&base_sha)),
        "{faces:?}"
    );
    // Read from the cache (the models, and the baseline's face: the follow-up is tracked from
    // it without the detector): the same scores.
    let second = run("face");
    assert_eq!(first, second);
    // A damaged copy is not used: the result is the same and the copy is made again.
    let landmark = tars
        .iter()
        .find(|p| p.to_string_lossy().contains("landmark"))
        .unwrap();
    let good = std::fs::read(landmark).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(landmark, &bad).unwrap();
    let third = run("face");
    assert_eq!(first, third);
    let remade = std::fs::read(landmark).unwrap();
    assert_ne!(remade, bad, "the damaged copy was not remade");
    assert_eq!(
        std::fs::read_to_string(landmark.with_extension("sha256")).unwrap(),
        sameframe::ids::sha256_hex(&remade)
    );
    drop(good);
}

/// A face about 75 px wide in a 1080p scene: with no area given it is not a face that frames
/// the shot, and the scene is registered as a whole (the detector searched four windows, not
/// 25); told the area is the face, the command looks for small faces and uses it. Each answer
/// is cached apart: the first's "no face" does not stand in for the second.
#[test]
fn a_small_face_in_a_wide_scene_is_used_only_when_the_area_says_face() {
    let s = TestStore::new();
    let portrait = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/faces/astronaut.jpg"
    ))
    .unwrap()
    .to_rgb8();
    let found = sameframe::analysis::pose::face::models()
        .unwrap()
        .detect(&portrait)
        .unwrap()
        .unwrap();
    let k = 75.0 / found.size[0];
    let small = image::imageops::resize(
        &portrait,
        (portrait.width() as f32 * k) as u32,
        (portrait.height() as f32 * k) as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut base = texture(1920, 1080);
    let (cx, cy) = (found.centre[0] * k, found.centre[1] * k);
    image::imageops::overlay(&mut base, &small, 1500 - cx as i64, 700 - cy as i64);
    let frame = warp_similarity(&base, 8.0, -5.0, 0.5, 1.0, [0, 0, 0]);
    let (a, b) = (s.path("scene.png"), s.path("scene-frame.png"));
    base.save(&a).unwrap();
    frame.save(&b).unwrap();
    let pose = |area: Option<&str>| pose(&s, a.to_str().unwrap(), b.to_str().unwrap(), area);
    for _ in 0..2 {
        let r = pose(None);
        assert_eq!(r["method"], "features", "{r}");
        assert!(r["yaw_deg"].is_null(), "{r}");
        let r = pose(Some("face"));
        assert_eq!(r["method"], "face+features", "{r}");
        assert!(r["yaw_deg"].is_number(), "{r}");
    }
    let faces = std::fs::read_dir(s.data.join("cache/models/faces"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(faces, 2, "one cached answer per search");
}

/// The frame's grey card gives the shift in centimetres, whether the frame is 8-bit or 16-bit
/// (its card is measured on its own pixels before they are reduced to 8 bits for registration).
#[test]
fn a_grey_card_in_the_frame_gives_the_shift_in_centimetres_at_any_bit_depth() {
    use sameframe::testkit::{Exposure, grey_scene};
    let s = TestStore::new();
    // A 127 × 178 mm card seen as 254 × 356 px: 0.5 mm per pixel.
    let quad = [
        [400.0, 150.0],
        [654.0, 150.0],
        [654.0, 506.0],
        [400.0, 506.0],
    ];
    let (base, _) = grey_scene(1280, 720, quad, 0.18, None, &Exposure::default());
    let frame = warp_similarity(&base, 30.0, 0.0, 0.0, 1.0, [0, 0, 0]);
    let a = s.path("base.png");
    base.save(&a).unwrap();
    let eight = s.path("frame8.png");
    frame.save(&eight).unwrap();
    let sixteen = s.path("frame16.png");
    image::DynamicImage::ImageRgb8(frame)
        .to_rgb16()
        .save(&sixteen)
        .unwrap();
    for b in [eight, sixteen] {
        let r = pose(&s, a.to_str().unwrap(), b.to_str().unwrap(), Some("body"));
        let dx_cm = r["dx_cm"].as_f64().unwrap_or(f64::NAN);
        assert!((dx_cm - 1.5).abs() < 0.1, "{}: {r}", b.display());
    }
}
