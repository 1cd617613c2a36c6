//! Pose benchmark: registration error and time against OpenCV ORB (2000 features) +
//! brute-force Hamming matching + `estimateAffinePartial2D` (RANSAC), on the same 1080p pairs in
//! the same run; plus the live frame time (features + face path) on 2 cores.
//!
//! Run: `cargo bench --bench pose`

#![allow(clippy::unwrap_used)]

#[path = "common.rs"]
mod common;

use sameframe::analysis::pose::{self, PoseConfig, PoseOptions, PoseTracker};
use sameframe::records::Area;
use sameframe::testkit::{self, warp_similarity};

struct Pair {
    base: String,
    frame: String,
    truth: (f64, f64, f64, f64),
}

fn main() {
    let dir = common::work_dir("pose");
    let cfg = PoseConfig::builtin().unwrap();
    let mut rng = testkit::Rng(404);
    let mut pairs = Vec::new();
    for (k, tex) in [
        "textures/coffee.jpg",
        "textures/chelsea.jpg",
        "textures/rocket.jpg",
        "faces/astronaut.jpg",
        "textures/camera.jpg",
    ]
    .iter()
    .enumerate()
    {
        let img = image::open(common::root().join("fixtures").join(tex))
            .unwrap()
            .to_rgb8();
        let base =
            image::imageops::resize(&img, 1920, 1080, image::imageops::FilterType::CatmullRom);
        let bp = dir.join(format!("base{k}.png"));
        base.save(&bp).unwrap();
        for j in 0..4 {
            let truth = (
                rng.range(-60.0, 60.0),
                rng.range(-40.0, 40.0),
                rng.range(-20.0, 20.0),
                rng.range(0.8, 1.25),
            );
            let mut frame = warp_similarity(&base, truth.0, truth.1, truth.2, truth.3, [0, 0, 0]);
            // A lighting change and sensor noise.
            let gain = rng.range(0.75, 1.15);
            let mut noise = testkit::Rng(k as u64 * 10 + j);
            for p in frame.pixels_mut() {
                *p = image::Rgb(p.0.map(|v| {
                    (f64::from(v) * gain + noise.gauss() * 2.5)
                        .round()
                        .clamp(0.0, 255.0) as u8
                }));
            }
            let fp = dir.join(format!("frame{k}_{j}.png"));
            frame.save(&fp).unwrap();
            pairs.push(Pair {
                base: bp.display().to_string(),
                frame: fp.display().to_string(),
                truth,
            });
        }
    }
    // Ours: registration only (the features path), best of three, one thread.
    let opts = PoseOptions {
        area: Some(Area::Body),
        ..Default::default()
    };
    let mut ours = Vec::new();
    for p in &pairs {
        let a = image::open(&p.base).unwrap().to_rgb8();
        let b = image::open(&p.frame).unwrap().to_rgb8();
        let (ms, r) = common::best_ms(3, || pose::analyze(&a, &b, &cfg, &opts));
        ours.push((ms, r));
    }
    let args: Vec<String> = pairs
        .iter()
        .flat_map(|p| [p.base.clone(), p.frame.clone()])
        .collect();
    let peer = common::peer_python("opencv", &["opencv-python-headless", "numpy"])
        .and_then(|py| common::run_peer(&py, "orb.py", &args));

    let err = |t: (f64, f64, f64, f64), dx: f64, dy: f64, th: f64, s: f64| {
        [
            (dx - t.0).hypot(dy - t.1),
            (th - t.2).abs(),
            (s / t.3 - 1.0).abs() * 100.0,
        ]
    };
    let mut our_err = Vec::new();
    let mut peer_err = Vec::new();
    let (mut our_ms, mut peer_ms) = (0.0, 0.0);
    println!(
        "\n{:<18} {:>34} | {:>34}",
        "pair", "ours: px  deg  scale%  ms", "ORB+RANSAC: px  deg  scale%  ms"
    );
    for (i, p) in pairs.iter().enumerate() {
        let (ms, r) = &ours[i];
        let e = err(p.truth, r.dx_px, r.dy_px, r.rotation_deg, r.scale);
        our_err.push(e);
        our_ms += ms;
        let pe = peer.as_ref().map(|v| &v[i]).and_then(|v| {
            v["ok"].as_bool().filter(|ok| *ok)?;
            Some((
                err(
                    p.truth,
                    v["dx"].as_f64()?,
                    v["dy"].as_f64()?,
                    v["theta_deg"].as_f64()?,
                    v["scale"].as_f64()?,
                ),
                v["ms"].as_f64()?,
            ))
        });
        if let Some((e, ms)) = pe {
            peer_err.push(e);
            peer_ms += ms;
        }
        let name = std::path::Path::new(&p.frame)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        println!(
            "{:<18} {:>10.2} {:>6.3} {:>7.3} {:>8.1} | {}",
            name,
            e[0],
            e[1],
            e[2],
            ms,
            pe.map(|(e, ms)| format!("{:>10.2} {:>6.3} {:>7.3} {:>8.1}", e[0], e[1], e[2], ms))
                .unwrap_or_else(|| "failed".into())
        );
    }
    let stats = |v: &[[f64; 3]]| -> [(f64, f64); 3] {
        std::array::from_fn(|k| {
            let mut x: Vec<f64> = v.iter().map(|e| e[k]).collect();
            let mean = x.iter().sum::<f64>() / x.len().max(1) as f64;
            x.sort_by(f64::total_cmp);
            (mean, x.last().copied().unwrap_or(f64::NAN))
        })
    };
    let o = stats(&our_err);
    println!(
        "\nours ({} pairs): translation mean {:.2} / max {:.2} px, rotation mean {:.3} / max {:.3}°, scale mean {:.3} / max {:.3} %; {:.1} ms per pair",
        pairs.len(),
        o[0].0,
        o[0].1,
        o[1].0,
        o[1].1,
        o[2].0,
        o[2].1,
        our_ms / pairs.len() as f64
    );
    if peer.is_some() {
        let q = stats(&peer_err);
        println!(
            "ORB+BF+estimateAffinePartial2D ({} of {} pairs registered): translation mean {:.2} / max {:.2} px, rotation mean {:.3} / max {:.3}°, scale mean {:.3} / max {:.3} %; {:.1} ms per pair",
            peer_err.len(),
            pairs.len(),
            q[0].0,
            q[0].1,
            q[1].0,
            q[1].1,
            q[2].0,
            q[2].1,
            peer_ms / peer_err.len().max(1) as f64
        );
        println!(
            "speed: ours is {:.1}× faster per pair",
            (peer_ms / peer_err.len().max(1) as f64) / (our_ms / pairs.len() as f64)
        );
    }

    // Live frames at 1080p with the face path, on 2 cores.
    let face = image::open(common::root().join("fixtures/faces/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let base = image::imageops::resize(&face, 1920, 1080, image::imageops::FilterType::CatmullRom);
    let mut tracker = PoseTracker::new(&base, cfg.clone(), PoseOptions::default(), 1920);
    let mut live = Vec::new();
    let mut cold = Vec::new();
    for k in 0..40 {
        let f = warp_similarity(
            &base,
            f64::from(k % 7) * 2.0,
            -f64::from(k % 5),
            f64::from(k % 3) * 0.5,
            1.0 + f64::from(k % 4) * 0.01,
            [0, 0, 0],
        );
        let (ms, (r, _)) = common::best_ms(1, || tracker.analyze(&f));
        assert_eq!(r.method, "face+features");
        live.push(ms);
        let (ms2, _) = common::best_ms(1, || {
            pose::compare(
                tracker.baseline(),
                &f,
                &cfg,
                &PoseOptions::default(),
                None,
                None,
            )
        });
        cold.push(ms2);
    }
    println!(
        "\nlive 1080p frame with the face path (2 cores): median {:.1} ms tracked, {:.1} ms cold (bar 33 ms)",
        common::median(&mut live),
        common::median(&mut cold)
    );
    common::save_summary(
        "pose",
        &serde_json::json!({
            "pairs": pairs.len(),
            "ours": {"translation_px_mean": o[0].0, "translation_px_max": o[0].1, "rotation_deg_mean": o[1].0, "rotation_deg_max": o[1].1, "scale_pct_mean": o[2].0, "scale_pct_max": o[2].1, "ms_per_pair": our_ms / pairs.len() as f64},
            "peer_registered": peer.as_ref().map(|_| peer_err.len()),
            "peer_ms_per_pair": peer.as_ref().map(|_| peer_ms / peer_err.len().max(1) as f64),
            "live_tracked_ms": common::median(&mut live), "live_cold_ms": common::median(&mut cold),
        }),
    );
}
