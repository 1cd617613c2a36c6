//! Lighting benchmark: ColorChecker detection rate and cold-detection time against OpenCV's
//! `cv2.mcc` on the same frames in the same run; also cold detection and live re-check time at
//! 1920×1080 on one core.
//!
//! Run: `cargo bench --bench lighting`

#![allow(clippy::unwrap_used)]

#[path = "common.rs"]
mod common;

use sameframe::analysis::frame::Frame;
use sameframe::analysis::geometry::{Pt, inside_convex};
use sameframe::analysis::lighting::{self, LightingConfig, LightingTracker};
use sameframe::testkit::{self, Exposure};

struct Case {
    file: String,
    /// Where the chart is (None: no chart in the frame).
    truth: Option<[Pt; 4]>,
}

fn centroid(q: &[Pt]) -> Pt {
    let n = q.len() as f64;
    [
        q.iter().map(|p| p[0]).sum::<f64>() / n,
        q.iter().map(|p| p[1]).sum::<f64>() / n,
    ]
}

fn main() {
    let cfg = LightingConfig::builtin().unwrap();
    let dir = common::work_dir("lighting");
    let mut cases: Vec<Case> = Vec::new();
    // Real photos (truth drawn by hand around the 24-patch area).
    let shared = common::root().join("../shared/fixtures/charts");
    for (name, q) in [
        (
            "colorchecker_classic_window.png",
            [
                [270.0, 160.0],
                [795.0, 185.0],
                [780.0, 535.0],
                [260.0, 505.0],
            ],
        ),
        (
            "colorchecker_passport_room.png",
            [
                [550.0, 210.0],
                [745.0, 215.0],
                [745.0, 490.0],
                [550.0, 485.0],
            ],
        ),
        (
            "colorchecker_classic_closeup.png",
            [[0.0, 0.0], [1055.0, 0.0], [1055.0, 709.0], [0.0, 709.0]],
        ),
    ] {
        let p = shared.join(name);
        if p.exists() {
            cases.push(Case {
                file: p.display().to_string(),
                truth: Some(q),
            });
        } else {
            eprintln!("notice: {} absent; real charts skipped", p.display());
        }
    }
    // Synthetic 1080p charts: exposure, cast, tilt, roll, noise, JPEG.
    let mut rng = testkit::Rng(2026);
    for i in 0..12 {
        let (w, h) = (1920, 1080);
        let quad = testkit::card_quad(
            w,
            h,
            (rng.range(0.3, 0.7), rng.range(0.4, 0.6)),
            rng.range(0.25, 0.45),
            0.7,
            rng.range(-15.0, 15.0),
            rng.range(-30.0, 30.0),
        );
        let e = Exposure {
            ev: rng.range(-1.5, 1.0),
            cast: [rng.range(0.8, 1.2), 1.0, rng.range(0.8, 1.2)],
            noise: 2.0,
            jpeg: Some(88),
            seed: 900 + i,
            ..Default::default()
        };
        let (img, t) = testkit::checker_scene(w, h, quad, &e);
        let f = dir.join(format!("synthetic_{i:02}.png"));
        img.save(&f).unwrap();
        cases.push(Case {
            file: f.display().to_string(),
            truth: Some(t.quad),
        });
    }
    // Frames without a chart.
    for name in &common::PHOTOS[..6] {
        cases.push(Case {
            file: common::root()
                .join("fixtures")
                .join(name)
                .display()
                .to_string(),
            truth: None,
        });
    }

    // Ours: cold detection, best of three, one thread.
    let mut ours = Vec::new();
    for c in &cases {
        let img = image::open(&c.file).unwrap().to_rgb8();
        let frame = Frame::rgb8(&img);
        let (ms, loc) = common::best_ms(3, || lighting::locate(&frame, &cfg));
        let correct = match (&loc, &c.truth) {
            (Some(l), Some(t)) => l.kind == "colorchecker" && inside_convex(t, centroid(&l.quad)),
            (None, None) => true,
            _ => false,
        };
        ours.push((ms, loc.is_some(), correct));
    }
    // Peer: cv2.mcc on the same files.
    let files: Vec<String> = cases.iter().map(|c| c.file.clone()).collect();
    let peer = common::peer_python(
        "opencv-contrib",
        &["opencv-contrib-python-headless", "numpy"],
    )
    .and_then(|py| common::run_peer(&py, "mcc.py", &files));
    println!(
        "\n{:<36} {:>10} {:>8} | {:>10} {:>8}",
        "frame", "ours ms", "ours", "mcc ms", "mcc"
    );
    let (mut our_t, mut peer_t) = (0.0, 0.0);
    let (mut our_ok, mut peer_ok, mut charts, mut our_false, mut peer_false) = (0, 0, 0, 0, 0);
    for (i, c) in cases.iter().enumerate() {
        let (ms, found, correct) = ours[i];
        let p = peer.as_ref().map(|v| &v[i]);
        let p_found = p.map(|p| p["found"].as_bool().unwrap_or(false));
        let p_correct = p.map(|p| match (&c.truth, p["box"].as_array()) {
            (Some(t), Some(b)) => {
                let pts: Vec<Pt> = b
                    .chunks(2)
                    .map(|xy| [xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap()])
                    .collect();
                inside_convex(t, centroid(&pts))
            }
            (None, _) => !p["found"].as_bool().unwrap_or(false),
            _ => false,
        });
        let p_ms = p.and_then(|p| p["ms"].as_f64());
        our_t += ms;
        peer_t += p_ms.unwrap_or(0.0);
        if c.truth.is_some() {
            charts += 1;
            our_ok += usize::from(correct);
            peer_ok += usize::from(p_correct == Some(true));
        } else {
            our_false += usize::from(found);
            peer_false += usize::from(p_found == Some(true));
        }
        let name = std::path::Path::new(&c.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        println!(
            "{:<36} {:>10.1} {:>8} | {:>10} {:>8}",
            name,
            ms,
            if correct {
                "ok"
            } else if found {
                "WRONG"
            } else {
                "miss"
            },
            p_ms.map(|m| format!("{m:.1}")).unwrap_or("-".into()),
            match p_correct {
                Some(true) => "ok",
                Some(false) if p_found == Some(true) => "WRONG",
                Some(false) => "miss",
                None => "-",
            }
        );
    }
    println!(
        "\nColorChecker detection: ours {our_ok}/{charts}, mcc {}/{charts}; false charts on {} chart-free frames: ours {our_false}, mcc {}",
        if peer.is_some() {
            peer_ok.to_string()
        } else {
            "-".into()
        },
        cases.len() - charts,
        if peer.is_some() {
            peer_false.to_string()
        } else {
            "-".into()
        },
    );
    if peer.is_some() {
        println!(
            "total cold detection time: ours {our_t:.1} ms, mcc {peer_t:.1} ms — ours is {:.1}× faster",
            peer_t / our_t
        );
    }

    // 1080p grey card: cold detection and live re-check, one core.
    let (w, h) = (1920, 1080);
    let quad = testkit::card_quad(w, h, (0.3, 0.5), 0.15, 1.3, 5.0, 15.0);
    let (img, _) = testkit::grey_scene(
        w,
        h,
        quad,
        0.18,
        None,
        &Exposure {
            noise: 2.0,
            jpeg: Some(85),
            ..Default::default()
        },
    );
    let frame = Frame::rgb8(&img);
    let (cold, r) = common::best_ms(5, || lighting::analyze(&frame, &cfg, &Default::default()));
    assert!(r.card.found);
    let mut tracker = LightingTracker::new(cfg.clone(), None, None);
    tracker.analyze(&frame);
    let mut recheck: Vec<f64> = (0..30)
        .map(|_| common::best_ms(1, || tracker.analyze(&frame)).0)
        .collect();
    let re = common::median(&mut recheck);
    println!(
        "\n1920×1080 grey card: cold detection + measurement {cold:.1} ms (bar 150), live re-check median {re:.1} ms (bar 10)"
    );
    common::save_summary(
        "lighting",
        &serde_json::json!({
            "charts": charts, "ours_detected": our_ok, "mcc_detected": peer.as_ref().map(|_| peer_ok),
            "chart_free": cases.len() - charts, "ours_false": our_false, "mcc_false": peer.as_ref().map(|_| peer_false),
            "ours_ms_total": our_t, "mcc_ms_total": peer.as_ref().map(|_| peer_t),
            "speed_ratio": peer.as_ref().map(|_| peer_t / our_t),
            "grey_1080p_cold_ms": cold, "grey_1080p_recheck_ms": re,
        }),
    );
}
