//! Pose scoring: synthetic warps of real textures with exact truth (each axis in both signs,
//! combinations, crops at the borders, gain and noise), faces, real photos, malformed input.

#![allow(clippy::unwrap_used)]

mod util;

use image::RgbImage;
use sameframe::analysis::pose::{self, PoseConfig, PoseOptions, PoseReport, PoseTracker};
use sameframe::records::Area;
use sameframe::testkit::{self, warp_similarity};

fn fixture(name: &str, w: u32, h: u32) -> RgbImage {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/").to_string() + name;
    let img = image::open(p).unwrap().to_rgb8();
    image::imageops::resize(&img, w, h, image::imageops::FilterType::CatmullRom)
}

fn cfg() -> PoseConfig {
    PoseConfig::builtin().unwrap()
}

fn body() -> PoseOptions {
    PoseOptions {
        area: Some(Area::Body),
        ..Default::default()
    }
}

/// Bars at 1080p: rotation ≤ 0.2°, scale ≤ 0.5 %, translation ≤ 1 px.
fn assert_close(r: &PoseReport, truth: (f64, f64, f64, f64), what: &str) {
    let (dx, dy, th, s) = truth;
    assert!(
        r.confidence >= 0.5,
        "{what}: confidence {} {:?}",
        r.confidence,
        r.reasons
    );
    assert!(
        (r.dx_px - dx).abs() <= 1.0 && (r.dy_px - dy).abs() <= 1.0,
        "{what}: translation ({:.2}, {:.2}) vs ({dx}, {dy})",
        r.dx_px,
        r.dy_px
    );
    assert!(
        (r.rotation_deg - th).abs() <= 0.2,
        "{what}: rotation {:.3} vs {th}",
        r.rotation_deg
    );
    assert!(
        (r.scale / s - 1.0).abs() <= 0.005,
        "{what}: scale {:.4} vs {s}",
        r.scale
    );
}

#[test]
fn each_axis_in_both_signs_on_real_textures() {
    let cfg = cfg();
    for tex in ["textures/coffee.jpg", "textures/chelsea.jpg"] {
        let base = fixture(tex, 1920, 1080);
        for truth in [
            (14.0, 0.0, 0.0, 1.0),
            (-14.0, 0.0, 0.0, 1.0),
            (0.0, 9.5, 0.0, 1.0),
            (0.0, -9.5, 0.0, 1.0),
            (0.0, 0.0, 4.0, 1.0),
            (0.0, 0.0, -4.0, 1.0),
            (0.0, 0.0, 0.0, 1.08),
            (0.0, 0.0, 0.0, 0.92),
        ] {
            let frame = warp_similarity(&base, truth.0, truth.1, truth.2, truth.3, [0, 0, 0]);
            let r = pose::analyze(&base, &frame, &cfg, &body());
            assert_close(&r, truth, &format!("{tex} {truth:?}"));
            // Signs: the sign of each reported axis is the sign of its truth.
            if truth.0 != 0.0 {
                assert_eq!(r.dx_px.signum(), truth.0.signum());
            }
            if truth.2 != 0.0 {
                assert_eq!(
                    r.rotation_deg.signum(),
                    truth.2.signum(),
                    "θ > 0 is counter-clockwise"
                );
            }
        }
    }
}

#[test]
fn the_extremes_of_the_range_and_combinations() {
    let cfg = cfg();
    let base = fixture("textures/rocket.jpg", 1920, 1080);
    for truth in [
        (40.0, -25.0, 20.0, 1.25),
        (-30.0, 18.0, -20.0, 0.8),
        (120.0, 60.0, 8.0, 1.1),
        (-200.0, 0.0, -3.0, 1.0),
    ] {
        let frame = warp_similarity(&base, truth.0, truth.1, truth.2, truth.3, [30, 30, 30]);
        let r = pose::analyze(&base, &frame, &cfg, &body());
        assert_close(&r, truth, &format!("{truth:?}"));
    }
}

#[test]
fn lighting_change_noise_and_occlusion_do_not_move_the_estimate() {
    let cfg = cfg();
    let base = fixture("textures/coffee.jpg", 1920, 1080);
    let truth = (6.0, -4.0, 2.5, 1.04);
    let mut frame = warp_similarity(&base, truth.0, truth.1, truth.2, truth.3, [0, 0, 0]);
    let mut rng = testkit::Rng(3);
    for (x, y, p) in frame.enumerate_pixels_mut() {
        // A third darker with a warm shift, sensor noise, and a hand-sized occluder.
        let occluded = (1300..1600).contains(&x) && (200..600).contains(&y);
        *p = if occluded {
            image::Rgb([200, 170, 150])
        } else {
            image::Rgb(std::array::from_fn(|k| {
                let g = [0.72, 0.66, 0.6][k];
                (f64::from(p.0[k]) * g + rng.gauss() * 3.0)
                    .round()
                    .clamp(0.0, 255.0) as u8
            }))
        };
    }
    let r = pose::analyze(&base, &frame, &cfg, &body());
    assert_close(&r, truth, "gain, noise, occlusion");
}

#[test]
fn identity_scores_100_and_an_unrelated_image_is_not_aligned() {
    let cfg = cfg();
    let base = fixture("textures/chelsea.jpg", 1280, 720);
    let r = pose::analyze(&base, &base, &cfg, &body());
    assert!(r.within_tolerance, "{r:?}");
    assert!((r.score - 100.0).abs() < 0.5, "{}", r.score);
    assert!(r.hints.is_empty(), "{:?}", r.hints);
    for other in [
        "textures/gravel.jpg",
        "textures/rocket.jpg",
        "textures/hubble_deep_field.jpg",
    ] {
        let frame = fixture(other, 1280, 720);
        let r = pose::analyze(&base, &frame, &cfg, &body());
        assert!(!r.within_tolerance && r.confidence < 0.5, "{other}: {r:?}");
        assert!(
            r.reasons.iter().any(|s| s.contains("low confidence")),
            "{other}: {:?}",
            r.reasons
        );
    }
}

#[test]
fn faces_add_yaw_pitch_and_expression_without_false_turns() {
    let cfg = cfg();
    let base = fixture("faces/astronaut.jpg", 1080, 1080);
    let opts = PoseOptions::default();
    let same = pose::analyze(&base, &base, &cfg, &opts);
    assert_eq!(same.method, "face+features");
    assert!(same.within_tolerance, "{same:?}");
    assert_eq!(same.scale_source.as_deref(), Some("interpupillary"));
    // Pure 2D warps: no false yaw or pitch beyond 2°.
    for truth in [
        (20.0, -10.0, 8.0, 1.1),
        (-15.0, 12.0, -10.0, 0.9),
        (0.0, 0.0, 15.0, 1.0),
    ] {
        let frame = warp_similarity(&base, truth.0, truth.1, truth.2, truth.3, [10, 10, 10]);
        let r = pose::analyze(&base, &frame, &cfg, &opts);
        assert_eq!(r.method, "face+features");
        assert!(
            r.yaw_deg.unwrap().abs() <= 2.0 && r.pitch_deg.unwrap().abs() <= 2.0,
            "{truth:?}: yaw {:?} pitch {:?}",
            r.yaw_deg,
            r.pitch_deg
        );
        assert!(
            (r.rotation_deg - truth.2).abs() <= 0.2 && (r.scale / truth.3 - 1.0).abs() <= 0.005,
            "{truth:?}: {r:?}"
        );
        let e = r.expression.as_ref().unwrap();
        assert!(
            e.mouth_open.abs() < 0.04 && e.smile_width.abs() < 0.06,
            "a warp is not an expression change: {e:?}"
        );
        // Out of tolerance on roll, with a hint that says which way.
        if truth.2 > 2.0 {
            assert!(!r.within_tolerance);
            assert!(
                r.hints
                    .iter()
                    .any(|h| h.contains("tilt it") && h.contains("left shoulder")),
                "{:?}",
                r.hints
            );
        }
    }
}

#[test]
fn hints_are_phrased_for_the_camera_operator() {
    let cfg = cfg();
    let base = fixture("faces/astronaut.jpg", 1080, 1080);
    // Subject moved right and grew: move left, move back.
    let frame = warp_similarity(&base, 60.0, 0.0, 0.0, 1.08, [10, 10, 10]);
    let r = pose::analyze(&base, &frame, &cfg, &PoseOptions::default());
    assert!(!r.within_tolerance);
    assert!(r.dx_cm.unwrap() > 1.0, "{:?}", r.dx_cm);
    assert!(r.hints.iter().any(|h| h.starts_with("move the patient") && h.contains("cm to the left of the frame")), "{:?}", r.hints);
    assert!(
        r.hints.iter().any(|h| h.contains("move the patient back")),
        "{:?}",
        r.hints
    );
    assert!(r.score < 90.0);
}

#[test]
fn real_photos_at_known_scales_and_different_sessions() {
    let Some(shared) = util::shared_fixtures() else {
        return;
    };
    let cfg = cfg();
    let faces = shared.join("faces");
    let load = |n: &str| image::open(faces.join(n)).unwrap().to_rgb8();
    let scales = [
        "obama-240p.jpg",
        "obama-480p.jpg",
        "obama-720p.jpg",
        "obama-1080p.jpg",
    ];
    let imgs: Vec<RgbImage> = scales.iter().map(|n| load(n)).collect();
    for i in 0..4 {
        for j in 0..4 {
            if i == j {
                continue;
            }
            let truth = f64::from(imgs[j].width()) / f64::from(imgs[i].width());
            let r = pose::analyze(&imgs[i], &imgs[j], &cfg, &PoseOptions::default());
            assert!(
                (r.scale / truth - 1.0).abs() <= 0.005,
                "{} → {}: scale {} vs {truth}",
                scales[i],
                scales[j],
                r.scale
            );
            assert!(r.yaw_deg.unwrap().abs() <= 2.0 && r.pitch_deg.unwrap().abs() <= 2.0);
        }
    }
    for (a, b) in [
        ("obama.jpg", "obama2.jpg"),
        ("obama.jpg", "obama3.jpg"),
        ("obama2.jpg", "obama3.jpg"),
    ] {
        let r = pose::analyze(&load(a), &load(b), &cfg, &PoseOptions::default());
        assert!(
            !r.within_tolerance,
            "{a} and {b} are different sessions: {r:?}"
        );
    }
    // The scalp / non-face path: two overlapping crops of the collage.
    let collage = image::open(shared.join("scalp/bald_guys.jpg"))
        .unwrap()
        .to_rgb8();
    let (w, h) = collage.dimensions();
    let (cw, ch) = (w * 3 / 4, h * 3 / 4);
    let a = image::imageops::crop_imm(&collage, 0, 0, cw, ch).to_image();
    let b = image::imageops::crop_imm(&collage, 24, 15, cw, ch).to_image();
    let r = pose::analyze(
        &a,
        &b,
        &cfg,
        &PoseOptions {
            area: Some(Area::Scalp),
            ..Default::default()
        },
    );
    assert!(
        (r.dx_px + 24.0).abs() <= 1.0 && (r.dy_px + 15.0).abs() <= 1.0,
        "{r:?}"
    );
    assert_eq!(r.method, "features");
}

#[test]
fn malformed_input_is_a_low_confidence_answer_not_a_panic() {
    let cfg = cfg();
    let tex = fixture("textures/coffee.jpg", 640, 480);
    let cases: Vec<(RgbImage, RgbImage)> = vec![
        (RgbImage::new(16, 16), tex.clone()),
        (tex.clone(), RgbImage::new(1, 1)),
        (
            RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128])),
            tex.clone(),
        ),
        (
            tex.clone(),
            RgbImage::from_pixel(640, 480, image::Rgb([255, 255, 255])),
        ),
        (
            RgbImage::from_pixel(320, 240, image::Rgb([0, 0, 0])),
            RgbImage::from_pixel(320, 240, image::Rgb([0, 0, 0])),
        ),
    ];
    for (i, (a, b)) in cases.iter().enumerate() {
        let r = pose::analyze(a, b, &cfg, &body());
        assert!(!r.within_tolerance && r.confidence < 0.5, "case {i}: {r:?}");
        assert!(!r.reasons.is_empty(), "case {i}");
    }
    // Different sizes of the same content: a scale, not an error.
    let half = image::imageops::resize(&tex, 320, 240, image::imageops::FilterType::Triangle);
    let r = pose::analyze(&tex, &half, &cfg, &body());
    assert!((r.scale - 0.5).abs() < 0.005 && r.confidence > 0.5, "{r:?}");
}

#[test]
fn the_live_tracker_starts_from_the_last_estimate() {
    let cfg = cfg();
    let base = fixture("textures/coffee.jpg", 1280, 720);
    let mut t = PoseTracker::new(&base, cfg, body(), 1280);
    let mut last = None;
    for k in 0..5 {
        let truth = (
            f64::from(k) * 3.0,
            -f64::from(k) * 2.0,
            f64::from(k) * 0.7,
            1.0 + f64::from(k) * 0.01,
        );
        let frame = warp_similarity(&base, truth.0, truth.1, truth.2, truth.3, [0, 0, 0]);
        let (r, _) = t.analyze(&frame);
        assert_close(&r, truth, &format!("frame {k}"));
        last = Some(r);
    }
    assert!(last.unwrap().confidence > 0.9);
}
