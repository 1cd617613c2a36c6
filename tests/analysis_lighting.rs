//! The lighting check on synthetic scenes with exact truth, negative cases, real ColorChecker
//! photos, malformed input, and the live tracker.

#![allow(clippy::unwrap_used)]

mod util;

use sameframe::analysis::frame::Frame;
use sameframe::analysis::lighting::{
    self, LightingConfig, LightingOptions, LightingTracker, Rect, Verdict,
};
use sameframe::testkit::{self, Exposure};
use std::str::FromStr;

fn cfg() -> LightingConfig {
    LightingConfig::builtin().unwrap()
}

fn analyze(img: &image::RgbImage) -> lighting::LightingReport {
    lighting::analyze(&Frame::rgb8(img), &cfg(), &LightingOptions::default())
}

fn check(report: &lighting::LightingReport, truth: &testkit::Truth, what: &str) {
    assert!(
        report.card.found,
        "{what}: card not found: {:?}",
        report.reasons
    );
    let ev = report.exposure_ev.unwrap();
    assert!(
        (ev - truth.exposure_ev).abs() <= 0.1,
        "{what}: exposure {ev:.3} vs truth {:.3}",
        truth.exposure_ev
    );
    let g = report.wb_gains.unwrap();
    for c in [0, 2] {
        let rel = g[c] / truth.wb_gains[c] - 1.0;
        assert!(
            rel.abs() <= 0.03,
            "{what}: gain[{c}] {:.4} vs truth {:.4}",
            g[c],
            truth.wb_gains[c]
        );
    }
}

#[test]
fn sign_conventions_are_pinned() {
    let (w, h) = (640, 480);
    let quad = testkit::card_quad(w, h, (0.5, 0.5), 0.25, 1.3, 0.0, 0.0);
    // One stop brighter reads +1 EV.
    let (img, t) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        None,
        &Exposure {
            ev: 1.0,
            ..Default::default()
        },
    );
    let r = analyze(&img);
    assert!(
        (r.exposure_ev.unwrap() - 1.0).abs() < 0.05 && (t.exposure_ev - 1.0).abs() < 1e-6,
        "{:?}",
        r.exposure_ev
    );
    // A warm cast needs less red and more blue; it has positive b*.
    let (img, _) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        None,
        &Exposure {
            cast: [1.2, 1.0, 0.8],
            ..Default::default()
        },
    );
    let r = analyze(&img);
    let g = r.wb_gains.unwrap();
    assert!(g[0] < 1.0 && g[1] == 1.0 && g[2] > 1.0, "{g:?}");
    assert!(r.cast_lab.unwrap()[1] > 5.0, "{:?}", r.cast_lab);
    assert_ne!(r.verdict, Verdict::Pass);
    // Light brighter on the right: positive fall-off, per card width (2 EV per frame width
    // across a card a quarter of the frame wide: 0.5 EV).
    let (img, _) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        None,
        &Exposure {
            gradient_ev: 2.0,
            ..Default::default()
        },
    );
    let r = analyze(&img);
    assert!(
        (r.falloff_ev.unwrap() - 0.5).abs() < 0.05,
        "{:?}",
        r.falloff_ev
    );
    // A correctly exposed neutral card passes.
    let (img, _) = testkit::grey_scene(w, h, quad, 0.18, None, &Exposure::default());
    let r = analyze(&img);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    assert!(r.exposure_ev.unwrap().abs() < 0.05 && r.cast_delta_e.unwrap() < 1.0);
}

/// Exposure −2…+2 EV, casts up to 30 % per channel, tilt, gradient, noise and JPEG.
#[test]
fn grey_card_suite_meets_the_accuracy_bars() {
    let (w, h) = (960, 540);
    let casts = [
        [1.0, 1.0, 1.0],
        [1.3, 1.0, 0.7],
        [0.75, 1.0, 1.3],
        [1.0, 1.2, 0.9],
        [0.85, 0.9, 1.0],
    ];
    let mut n = 0;
    let mut rng = testkit::Rng(11);
    for (i, ev) in [-2.0, -1.0, 0.0, 1.0, 2.0].into_iter().enumerate() {
        for (j, cast) in casts.iter().enumerate() {
            let seed = (i * 10 + j) as u64;
            let quad = testkit::card_quad(
                w,
                h,
                (rng.range(0.3, 0.7), rng.range(0.35, 0.65)),
                rng.range(0.12, 0.25),
                rng.range(0.7, 1.4),
                rng.range(-20.0, 20.0),
                rng.range(-30.0, 30.0),
            );
            let e = Exposure {
                ev,
                cast: *cast,
                gradient_ev: rng.range(-0.3, 0.3),
                noise: 2.0,
                jpeg: if seed.is_multiple_of(2) {
                    Some(85)
                } else {
                    None
                },
                seed,
            };
            let (img, truth) = testkit::grey_scene(w, h, quad, 0.18, None, &e);
            let r = analyze(&img);
            check(&r, &truth, &format!("ev {ev} cast {cast:?} seed {seed}"));
            n += 1;
        }
    }
    assert_eq!(n, 25);
}

#[test]
fn partly_shadowed_card_is_measured_on_its_lit_part() {
    let (w, h) = (800, 600);
    let quad = testkit::card_quad(w, h, (0.5, 0.5), 0.3, 0.8, 5.0, 10.0);
    let (img, truth) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        Some((0.35, 0.35)),
        &Exposure {
            noise: 1.5,
            seed: 4,
            ..Default::default()
        },
    );
    let r = analyze(&img);
    check(&r, &truth, "shadowed");
    assert!(
        r.reasons.iter().any(|s| s.contains("partly shadowed")),
        "{:?}",
        r.reasons
    );
}

/// ColorChecker from −2 to +1.5 EV (beyond, its light patches clip and only the grey card can
/// measure), casts up to 25 % per channel (15 % at +1.5 EV).
#[test]
fn colorchecker_suite() {
    let (w, h) = (1280, 720);
    let mut rng = testkit::Rng(5);
    for (i, ev) in [-2.0, -1.0, 0.0, 0.7, 1.5].into_iter().enumerate() {
        let casts: &[[f64; 3]] = if ev > 1.0 {
            &[[1.0, 1.0, 1.0], [1.15, 1.0, 0.85], [0.85, 1.0, 1.15]]
        } else {
            &[[1.0, 1.0, 1.0], [1.25, 1.0, 0.75], [0.8, 1.0, 1.25]]
        };
        for (j, cast) in casts.iter().enumerate() {
            let seed = (i * 3 + j) as u64 + 100;
            let quad = testkit::card_quad(
                w,
                h,
                (rng.range(0.35, 0.65), 0.5),
                rng.range(0.35, 0.5),
                0.7,
                rng.range(-12.0, 12.0),
                rng.range(-25.0, 25.0),
            );
            let e = Exposure {
                ev,
                cast: *cast,
                noise: 2.0,
                jpeg: Some(90),
                seed,
                ..Default::default()
            };
            let (img, truth) = testkit::checker_scene(w, h, quad, &e);
            let r = analyze(&img);
            assert_eq!(
                r.card.kind.as_deref(),
                Some("colorchecker"),
                "ev {ev} cast {cast:?}: {:?}",
                r.reasons
            );
            check(&r, &truth, &format!("checker ev {ev} cast {cast:?}"));
            assert_eq!(r.card.neutral_patches.as_ref().unwrap().len(), 6);
        }
    }
}

#[test]
fn negative_cases_say_why() {
    let (w, h) = (800, 600);
    let cfg = cfg();
    // No card: a textured scene.
    let refl = testkit::background(w, h, 77);
    let img = testkit::expose(w, h, &refl, &Exposure::default());
    let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
    assert!(!r.card.found && r.exposure_ev.is_none() && r.wb_gains.is_none());
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.reasons[0].contains("no card"), "{:?}", r.reasons);

    // A grey wall: a uniform neutral background filling the frame around the subject.
    let mut refl = vec![[0.18f32; 3]; (w * h) as usize];
    for y in 200..600u32 {
        for x in 300..500u32 {
            refl[(y * w + x) as usize] = [0.4, 0.25, 0.2];
        }
    }
    let img = testkit::expose(
        w,
        h,
        &refl,
        &Exposure {
            noise: 1.0,
            ..Default::default()
        },
    );
    let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
    assert!(!r.card.found, "a wall was taken for a card");
    assert!(r.reasons[0].contains("frame edge"), "{:?}", r.reasons);

    let quad = testkit::card_quad(w, h, (0.5, 0.5), 0.25, 1.0, 0.0, 0.0);
    // A saturated (red) card.
    let (mut img_red, _) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        None,
        &Exposure {
            seed: 3,
            ..Default::default()
        },
    );
    for (x, y, p) in img_red.enumerate_pixels_mut() {
        if sameframe::analysis::geometry::inside_convex(
            &quad,
            [f64::from(x) + 0.5, f64::from(y) + 0.5],
        ) {
            *p = image::Rgb([200, 30, 25]);
        }
    }
    let r = lighting::analyze(&Frame::rgb8(&img_red), &cfg, &LightingOptions::default());
    assert!(!r.card.found);
    assert!(r.reasons[0].contains("saturated"), "{:?}", r.reasons);

    // A clipped card (+2.5 EV of a 18 % card under a bright light).
    let (img, _) = testkit::grey_scene(
        w,
        h,
        quad,
        0.6,
        None,
        &Exposure {
            ev: 1.0,
            seed: 5,
            ..Default::default()
        },
    );
    let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
    assert!(!r.card.found);
    assert!(r.reasons[0].contains("clipped"), "{:?}", r.reasons);

    // A tiny card (0.1 % of the frame).
    let tiny = testkit::card_quad(w, h, (0.5, 0.5), 0.028, 1.0, 0.0, 0.0);
    let (img, _) = testkit::grey_scene(
        w,
        h,
        tiny,
        0.18,
        None,
        &Exposure {
            seed: 8,
            ..Default::default()
        },
    );
    let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
    assert!(!r.card.found);
    assert!(r.reasons[0].contains("covers only"), "{:?}", r.reasons);
}

#[test]
fn real_colorchecker_photos_are_detected_and_measured() {
    let Some(shared) = util::shared_fixtures() else {
        return;
    };
    for name in [
        "colorchecker_classic_window.png",
        "colorchecker_passport_room.png",
        "colorchecker_classic_closeup.png",
    ] {
        let img = image::open(shared.join("charts").join(name))
            .unwrap()
            .to_rgb8();
        let r = analyze(&img);
        assert_eq!(
            r.card.kind.as_deref(),
            Some("colorchecker"),
            "{name}: {:?}",
            r.reasons
        );
        // Warm window and room light: red gain below 1, blue above, exposure within reason.
        let g = r.wb_gains.unwrap();
        assert!(g[0] < 0.9 && g[2] > 1.3, "{name}: {g:?}");
        let ev = r.exposure_ev.unwrap();
        assert!((-2.5..1.0).contains(&ev), "{name}: {ev}");
        let neutrals = r.card.neutral_patches.unwrap();
        for pair in neutrals.windows(2) {
            assert!(
                pair[0].measured_y > pair[1].measured_y,
                "{name}: neutrals out of order"
            );
        }
    }
}

#[test]
fn no_false_card_on_photos_without_one() {
    let mut frames: Vec<image::RgbImage> = Vec::new();
    for seed in 0..6 {
        let refl = testkit::background(640, 480, 500 + seed);
        frames.push(testkit::expose(
            640,
            480,
            &refl,
            &Exposure {
                noise: 2.0,
                jpeg: Some(80),
                seed,
                ..Default::default()
            },
        ));
    }
    frames.push(
        image::load_from_memory(include_bytes!("../fixtures/faces/astronaut.jpg"))
            .unwrap()
            .to_rgb8(),
    );
    if let Some(shared) = util::shared_fixtures() {
        for f in [
            "faces/obama.jpg",
            "faces/obama2.jpg",
            "faces/biden.jpg",
            "faces/two_people.jpg",
            "scalp/bald_guys.jpg",
        ] {
            frames.push(image::open(shared.join(f)).unwrap().to_rgb8());
        }
    }
    for (i, img) in frames.iter().enumerate() {
        let r = analyze(img);
        assert!(!r.card.found, "frame {i}: false card at {:?}", r.card.quad);
    }
}

#[test]
fn malformed_and_unusual_frames_never_panic() {
    let cfg = cfg();
    for (w, h) in [(1, 1), (2, 3), (7, 1), (1, 40)] {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]));
        let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
        assert!(!r.card.found);
    }
    // 16-bit and greyscale frames.
    let quad = testkit::card_quad(640, 480, (0.5, 0.5), 0.3, 1.0, 0.0, 0.0);
    let (img, truth) = testkit::grey_scene(
        640,
        480,
        quad,
        0.18,
        None,
        &Exposure {
            ev: 0.5,
            ..Default::default()
        },
    );
    let d16 = image::DynamicImage::ImageRgb8(img.clone()).to_rgb16();
    let dynamic = image::DynamicImage::ImageRgb16(d16);
    let r = lighting::analyze(
        &Frame::from_dynamic(&dynamic),
        &cfg,
        &LightingOptions::default(),
    );
    check(&r, &truth, "16-bit");
    let grey = image::DynamicImage::ImageRgb8(img).to_luma8();
    let dynamic = image::DynamicImage::ImageLuma8(grey);
    let r = lighting::analyze(
        &Frame::from_dynamic(&dynamic),
        &cfg,
        &LightingOptions::default(),
    );
    assert!(r.card.found);
    // A given card position outside the frame is a reason, not a panic.
    let img = image::RgbImage::from_pixel(100, 100, image::Rgb([100, 100, 100]));
    let r = lighting::analyze(
        &Frame::rgb8(&img),
        &cfg,
        &LightingOptions {
            card: Some("90,90,50,50".parse().unwrap()),
            ..Default::default()
        },
    );
    assert!(
        !r.card.found && r.reasons[0].contains("outside"),
        "{:?}",
        r.reasons
    );
}

#[test]
fn the_tracker_rechecks_and_redetects() {
    let (w, h) = (960, 540);
    let quad = testkit::card_quad(w, h, (0.35, 0.5), 0.2, 1.2, 0.0, 10.0);
    let (a, _) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        None,
        &Exposure {
            seed: 1,
            noise: 1.0,
            ..Default::default()
        },
    );
    let mut t = LightingTracker::new(cfg(), None, None);
    let first = t.analyze(&Frame::rgb8(&a));
    assert_eq!(first.card.source.as_deref(), Some("detected"));
    let (b, truth_b) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        None,
        &Exposure {
            seed: 2,
            noise: 1.0,
            ev: 0.3,
            ..Default::default()
        },
    );
    let second = t.analyze(&Frame::rgb8(&b));
    assert_eq!(second.card.source.as_deref(), Some("tracked"));
    check(&second, &truth_b, "tracked");
    // The card moves: the tracker notices and detects it again.
    let moved = testkit::card_quad(w, h, (0.7, 0.45), 0.2, 1.2, 0.0, 10.0);
    let (c, truth_c) = testkit::grey_scene(
        w,
        h,
        moved,
        0.18,
        None,
        &Exposure {
            seed: 3,
            noise: 1.0,
            ..Default::default()
        },
    );
    let third = t.analyze(&Frame::rgb8(&c));
    assert_eq!(third.card.source.as_deref(), Some("detected"));
    check(&third, &truth_c, "re-detected");
}

#[test]
fn the_card_outline_matches_the_card() {
    let (w, h) = (1280, 720);
    let quad = testkit::card_quad(w, h, (0.45, 0.5), 0.2, 1.25, 8.0, 20.0);
    let (img, truth) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        None,
        &Exposure {
            noise: 2.0,
            jpeg: Some(90),
            seed: 21,
            ..Default::default()
        },
    );
    let r = analyze(&img);
    let q = r.card.quad.unwrap();
    for (a, b) in q.iter().zip(truth.quad.iter()) {
        let d = (a[0] - b[0]).hypot(a[1] - b[1]);
        assert!(d < 5.0, "corner {a:?} is {d:.1} px from {b:?}");
    }
}

/// A real photo cover-cropped to 1920×1080, as a station frames it.
fn at_1080p(img: &image::RgbImage) -> image::RgbImage {
    let s = (1920.0 / f64::from(img.width())).max(1080.0 / f64::from(img.height()));
    let (nw, nh) = (
        ((f64::from(img.width()) * s).ceil() as u32).max(1920),
        ((f64::from(img.height()) * s).ceil() as u32).max(1080),
    );
    let big = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle);
    image::imageops::crop_imm(&big, (nw - 1920) / 2, (nh - 1080) / 2, 1920, 1080).to_image()
}

/// Small grey cards (0.3–0.8 % of a 1080p frame: about 80 × 110 px) lit into real photos are
/// found and measured as exactly as large ones, and the report says how many pixels the
/// measurement rests on; cards on the photos' plainest and busiest parts alike.
#[test]
fn small_cards_on_real_photos_are_found_and_measured() {
    let cfg = cfg();
    let mut rng = testkit::Rng(31);
    for (k, name) in [
        "faces/astronaut.jpg",
        "textures/coffee.jpg",
        "textures/chelsea.jpg",
    ]
    .iter()
    .enumerate()
    {
        let photo = at_1080p(&image::open(format!("fixtures/{name}")).unwrap().to_rgb8());
        for area in [0.003, 0.005, 0.008] {
            let size = (area * 1920.0 * 1080.0 / 1.4f64).sqrt() / 1920.0;
            let centre = (rng.range(0.15, 0.85), rng.range(0.2, 0.8));
            let quad = testkit::card_quad(
                1920,
                1080,
                centre,
                size,
                1.4,
                rng.range(-10.0, 10.0),
                rng.range(-20.0, 20.0),
            );
            let e = Exposure {
                ev: rng.range(-0.8, 0.5),
                cast: [rng.range(0.9, 1.1), 1.0, rng.range(0.9, 1.1)],
                noise: 2.0,
                seed: 40 + k as u64,
                ..Default::default()
            };
            let (img, truth) = testkit::grey_scene_on(
                testkit::photo_background(&photo),
                1920,
                1080,
                quad,
                0.18,
                None,
                &e,
            );
            let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
            let what = format!("{name} at {:.1} %: {:?}", area * 100.0, r.reasons);
            assert!(r.card.found, "{what}");
            let q = r.card.quad.unwrap();
            let c = [
                q.iter().map(|p| p[0]).sum::<f64>() / 4.0,
                q.iter().map(|p| p[1]).sum::<f64>() / 4.0,
            ];
            assert!(
                sameframe::analysis::geometry::inside_convex(&truth.quad, c),
                "{what}"
            );
            assert!(
                (r.exposure_ev.unwrap() - truth.exposure_ev).abs() <= 0.1,
                "{what}"
            );
            let g = r.wb_gains.unwrap();
            for ch in [0, 2] {
                assert!(
                    (g[ch] / truth.wb_gains[ch] - 1.0).abs() <= 0.03,
                    "{what}: {g:?} vs {:?}",
                    truth.wb_gains
                );
            }
            let n = r.card.measured_pixels.unwrap();
            let full = sameframe::analysis::geometry::polygon_area(&truth.quad);
            assert!(n > 1000 && (n as f64) < full, "{what}: {n} of {full} px");
            assert!(r.card.exposure_uncertainty_ev.unwrap() < 0.02, "{what}");
        }
    }
}

/// A card region whose pixels are too few for their noise is refused with the numbers, and no
/// exposure is given; the same region on a clean frame is measured.
#[test]
fn a_card_too_small_for_its_noise_is_refused_with_numbers() {
    let cfg = cfg();
    let (w, h) = (640, 480);
    let quad = testkit::card_quad(w, h, (0.5, 0.5), 0.3, 1.0, 0.0, 0.0);
    let card = Rect::from_str("310,230,14,14").unwrap();
    let opts = LightingOptions {
        card: Some(card),
        ..Default::default()
    };
    for (noise, refused) in [(12.0, true), (1.0, false)] {
        let (img, _) = testkit::grey_scene(
            w,
            h,
            quad,
            0.18,
            None,
            &Exposure {
                noise,
                seed: 3,
                ..Default::default()
            },
        );
        let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &opts);
        let said = r
            .reasons
            .iter()
            .any(|s| s.contains("rests on") && s.contains("uncertain to ±"));
        assert_eq!(said, refused, "noise {noise}: {:?}", r.reasons);
        assert_eq!(
            r.exposure_ev.is_none(),
            refused,
            "noise {noise}: {:?}",
            r.exposure_ev
        );
        if refused {
            assert_eq!(r.verdict, Verdict::Fail);
        }
        assert!(
            r.card.measured_pixels.unwrap() < 200,
            "{:?}",
            r.card.measured_pixels
        );
    }
}

/// Walls and backgrounds that look like small cards: grey bricks (a card-like quadrilateral
/// with dozens of look-alikes) and a patch of sky framed by a camera, a chin and a tripod.
#[test]
fn card_like_patches_of_real_photos_are_not_cards() {
    let cfg = cfg();
    for name in [
        "textures/brick.jpg",
        "textures/camera.jpg",
        "textures/rocket.jpg",
    ] {
        let photo = at_1080p(&image::open(format!("fixtures/{name}")).unwrap().to_rgb8());
        for ev in [-0.5, 0.0, 0.4] {
            let img = testkit::expose(
                1920,
                1080,
                &testkit::photo_background(&photo),
                &Exposure {
                    ev,
                    noise: 2.0,
                    jpeg: Some(90),
                    seed: 9,
                    ..Default::default()
                },
            );
            let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
            assert!(
                !r.card.found,
                "{name} at {ev:+} EV: false card at {:?}",
                r.card.quad
            );
        }
    }
}
