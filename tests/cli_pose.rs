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

#[test]
fn analyze_pose_prints_the_documented_json() {
    let s = TestStore::new();
    let base = texture(1280, 720);
    let frame = warp_similarity(&base, 30.0, -6.0, 3.0, 1.05, [0, 0, 0]);
    let (a, b) = (s.path("base.png"), s.path("frame.png"));
    base.save(&a).unwrap();
    frame.save(&b).unwrap();
    let r = s.ok(&[
        "analyze",
        "pose",
        "--baseline",
        a.to_str().unwrap(),
        "--frame",
        b.to_str().unwrap(),
        "--area",
        "hands",
    ]);
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
    let r = s.ok(&[
        "analyze",
        "pose",
        "--baseline",
        c1["capture_id"].as_str().unwrap(),
        "--frame",
        b.to_str().unwrap(),
    ]);
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
