//! `sameframe analyze lighting` and `sameframe calibrate` through the real binary.

#![allow(clippy::unwrap_used)]

mod util;

use sameframe::testkit::{self, Exposure};
use serde_json::Value;
use util::TestStore;

fn scene(
    s: &TestStore,
    name: &str,
    ev: f64,
    cast: [f64; 3],
) -> (std::path::PathBuf, testkit::Truth) {
    let quad = testkit::card_quad(800, 600, (0.35, 0.5), 0.22, 1.2, 4.0, 12.0);
    let (img, t) = testkit::grey_scene(
        800,
        600,
        quad,
        0.18,
        None,
        &Exposure {
            ev,
            cast,
            noise: 1.5,
            seed: 3,
            ..Default::default()
        },
    );
    let p = s.path(name);
    img.save(&p).unwrap();
    (p, t)
}

#[test]
fn analyze_lighting_prints_the_documented_json() {
    let s = TestStore::new();
    let (img, truth) = scene(&s, "frame.png", 0.5, [1.1, 1.0, 0.9]);
    let r = s.ok(&["analyze", "lighting", img.to_str().unwrap()]);
    assert_eq!(r["card"]["found"], true);
    assert_eq!(r["card"]["kind"], "grey18");
    assert_eq!(r["card"]["quad"].as_array().unwrap().len(), 4);
    assert_eq!(r["card"]["mean_srgb"].as_array().unwrap().len(), 3);
    for k in [
        "exposure_ev",
        "clipped_highlights",
        "clipped_shadows",
        "falloff_ev",
        "sharpness",
    ] {
        assert!(r[k].is_number(), "{k} missing: {r}");
    }
    assert_eq!(r["wb_gains"].as_array().unwrap().len(), 3);
    assert_eq!(r["cast_lab"].as_array().unwrap().len(), 2);
    assert!(["pass", "warn", "fail"].contains(&r["verdict"].as_str().unwrap()));
    assert!(r["reasons"].is_array());
    assert!((r["exposure_ev"].as_f64().unwrap() - truth.exposure_ev).abs() < 0.1);
    assert_eq!(r["verdict"], "warn", "0.5 EV over with a cast warns: {r}");

    // The corrected copy neutralises the card and brings it to the target.
    let fixed = s.path("fixed.png");
    s.ok(&[
        "analyze",
        "lighting",
        img.to_str().unwrap(),
        "--corrected",
        fixed.to_str().unwrap(),
        "--annotate",
        s.path("ann.png").to_str().unwrap(),
    ]);
    let again = s.ok(&["analyze", "lighting", fixed.to_str().unwrap()]);
    assert!(
        again["exposure_ev"].as_f64().unwrap().abs() < 0.08,
        "{again}"
    );
    assert!(again["cast_delta_e"].as_f64().unwrap() < 1.0, "{again}");
    assert!(s.path("ann.png").exists());
    // Never over the analysed image.
    s.fails(
        &[
            "analyze",
            "lighting",
            img.to_str().unwrap(),
            "--corrected",
            img.to_str().unwrap(),
        ],
        &["must not overwrite"],
    );

    // A given card position.
    let q = &r["card"]["quad"];
    let (x, y) = (
        q[0][0].as_f64().unwrap() as u32 + 20,
        q[0][1].as_f64().unwrap() as u32 + 20,
    );
    let given = s.ok(&[
        "analyze",
        "lighting",
        img.to_str().unwrap(),
        "--card",
        &format!("{x},{y},60,60"),
    ]);
    assert_eq!(given["card"]["source"], "given");
    assert!((given["exposure_ev"].as_f64().unwrap() - truth.exposure_ev).abs() < 0.1);
    s.fails(
        &[
            "analyze",
            "lighting",
            img.to_str().unwrap(),
            "--card",
            "1,2,3",
        ],
        &["x,y,w,h"],
    );
}

#[test]
fn a_frame_without_a_card_is_not_a_pass() {
    let s = TestStore::new();
    let refl = testkit::background(640, 480, 4);
    let img = testkit::expose(640, 480, &refl, &Exposure::default());
    let p = s.path("nocard.png");
    img.save(&p).unwrap();
    let r = s.ok(&["analyze", "lighting", p.to_str().unwrap()]);
    assert_eq!(r["card"]["found"], false);
    assert!(r["exposure_ev"].is_null() && r["wb_gains"].is_null() && r["cast_lab"].is_null());
    assert_ne!(r["verdict"], "pass");
    assert!(r["reasons"][0].as_str().unwrap().contains("no card"));
}

#[test]
fn calibration_profile_is_stored_and_compared() {
    let s = TestStore::new();
    let (room, _) = scene(&s, "room.png", 0.0, [1.0, 1.0, 1.0]);
    let saved = s.ok(&[
        "calibrate",
        "--image",
        room.to_str().unwrap(),
        "--name",
        "Room 2",
    ]);
    assert_eq!(saved["profile"]["name"], "Room 2");
    assert_eq!(saved["profile"]["card_kind"], "grey18");
    // A later frame one stop brighter and warmer: deltas against the profile.
    let (later, _) = scene(&s, "later.png", 1.0, [1.15, 1.0, 0.85]);
    let r = s.ok(&[
        "analyze",
        "lighting",
        later.to_str().unwrap(),
        "--profile",
        "Room 2",
    ]);
    assert_eq!(
        r["card"]["source"], "profile",
        "the profile's card position is reused"
    );
    let d = &r["profile"];
    assert!(
        (d["exposure_ev"].as_f64().unwrap() - 1.0).abs() < 0.15,
        "{d}"
    );
    assert!(d["wb_gain_ratio"][0].as_f64().unwrap() < 0.95);
    assert!(
        r["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap().contains("Room 2"))
    );
    s.fails(
        &[
            "analyze",
            "lighting",
            later.to_str().unwrap(),
            "--profile",
            "Nope",
        ],
        &["Nope", "calibrate"],
    );
    let log = s.ok(&["audit", "log", "--action", "calibration."]);
    assert_eq!(log.as_array().unwrap().len(), 1);
    // Calibrating on a frame without a card is refused.
    let refl = testkit::background(320, 240, 9);
    let empty = s.path("empty.png");
    testkit::expose(320, 240, &refl, &Exposure::default())
        .save(&empty)
        .unwrap();
    s.fails(
        &[
            "calibrate",
            "--image",
            empty.to_str().unwrap(),
            "--name",
            "Room 3",
        ],
        &["no card"],
    );
}

#[test]
fn malformed_input_files_get_clear_errors_or_results() {
    let s = TestStore::new();
    let good = util::images::jpeg(300, 200, 1);
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "truncated.jpg",
            good[..good.len() / 3].to_vec(),
            Some("truncated"),
        ),
        ("empty.png", Vec::new(), Some("empty")),
        (
            "zero.png",
            util::images::png_claiming(0, 0),
            Some("zero.png"),
        ),
        ("text.txt", b"hello".to_vec(), Some("not a JPEG")),
        (
            "cmyk.jpg",
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cmyk.jpg")).unwrap(),
            None,
        ),
        (
            "one.png",
            util::images::encode(&image::RgbImage::new(1, 1), image::ImageFormat::Png),
            None,
        ),
    ];
    for (name, bytes, err) in cases {
        let p = s.write(name, &bytes);
        match err {
            Some(needle) => {
                s.fails(
                    &["analyze", "lighting", p.to_str().unwrap()],
                    &[name, needle],
                );
            }
            None => {
                let r: Value = s.ok(&["analyze", "lighting", p.to_str().unwrap()]);
                assert_eq!(r["card"]["found"], false, "{name}");
            }
        }
    }
    // 16-bit and greyscale PNGs are measured.
    let quad = testkit::card_quad(400, 300, (0.5, 0.5), 0.3, 1.0, 0.0, 0.0);
    let (img, _) = testkit::grey_scene(400, 300, quad, 0.18, None, &Exposure::default());
    let p16 = s.path("deep.png");
    image::DynamicImage::ImageRgb8(img.clone())
        .to_rgb16()
        .save(&p16)
        .unwrap();
    let r = s.ok(&["analyze", "lighting", p16.to_str().unwrap()]);
    assert!(r["exposure_ev"].as_f64().unwrap().abs() < 0.1, "{r}");
    let pg = s.path("grey.png");
    image::DynamicImage::ImageRgb8(img)
        .to_luma8()
        .save(&pg)
        .unwrap();
    let r = s.ok(&["analyze", "lighting", pg.to_str().unwrap()]);
    assert_eq!(r["card"]["found"], true);
}
