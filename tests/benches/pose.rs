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

    let whole = whole_command(&dir, &pairs);

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
            "whole_command": whole,
        }),
    );
}

/// Wall time of a process, best of `n`, in milliseconds (its output is checked, not kept).
fn process_ms(n: usize, cmd: &mut dyn FnMut() -> std::process::Command) -> f64 {
    common::best_ms(n, || {
        let out = cmd().output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .0
}

/// `sameframe analyze pose` as a whole process (start-up, decoding, face models, the grey-card
/// scale, registration, the report) against OpenCV ORB + RANSAC as a whole Python process
/// (start-up, `import cv2`, decoding, one registration), on the same 1080p JPEG pairs: the
/// textured pairs above and face pairs; then many frames against one baseline in one process.
fn whole_command(dir: &std::path::Path, pairs: &[Pair]) -> serde_json::Value {
    let Some(py) = common::peer_python("opencv", &["opencv-python-headless", "numpy"]) else {
        return serde_json::Value::Null;
    };
    let bin = env!("CARGO_BIN_EXE_sameframe");
    let data = dir.join("data");
    let jpeg = |src: &str, name: String| {
        let p = dir.join(name);
        image::open(src).unwrap().to_rgb8().save(&p).unwrap();
        p.display().to_string()
    };
    // (group, baseline, frame) as camera JPEGs.
    let mut jobs: Vec<(&str, String, String)> = Vec::new();
    for (i, p) in pairs.iter().enumerate().step_by(2) {
        jobs.push((
            "texture",
            jpeg(&p.base, format!("whole_base{i}.jpg")),
            jpeg(&p.frame, format!("whole_frame{i}.jpg")),
        ));
    }
    let faces = [
        common::root().join("../shared/fixtures/faces/obama-1080p.jpg"),
        common::root().join("fixtures/faces/astronaut.jpg"),
    ];
    let mut face_sets: Vec<(String, Vec<String>)> = Vec::new();
    for (k, f) in faces.iter().filter(|f| f.exists()).enumerate() {
        let img = image::open(f).unwrap().to_rgb8();
        let base =
            image::imageops::resize(&img, 1920, 1080, image::imageops::FilterType::CatmullRom);
        let b = dir.join(format!("whole_face{k}.jpg"));
        base.save(&b).unwrap();
        let mut frames = Vec::new();
        for j in 0..4 {
            let t = f64::from(j);
            let frame = warp_similarity(
                &base,
                12.0 * t - 18.0,
                6.0 - 4.0 * t,
                t - 1.5,
                0.97 + 0.02 * t,
                [0, 0, 0],
            );
            let p = dir.join(format!("whole_face{k}_{j}.jpg"));
            frame.save(&p).unwrap();
            frames.push(p.display().to_string());
            jobs.push(("face", b.display().to_string(), p.display().to_string()));
        }
        face_sets.push((b.display().to_string(), frames));
    }
    println!("\nwhole process per 1080p JPEG pair, best of 3 (ms):");
    println!(
        "{:<8} {:<22} {:>10} {:>12} {:>10} {:>7} {:>7}",
        "kind", "frame", "ours", "ours (new)", "OpenCV", "ratio", "(new)"
    );
    let mut ratios: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut firsts = Vec::new();
    let mut rows = Vec::new();
    for (kind, b, f) in &jobs {
        let pose = || {
            let mut c = std::process::Command::new(bin);
            c.arg("--data-dir").arg(&data).args([
                "--json",
                "analyze",
                "pose",
                "--baseline",
                b,
                "--frame",
                f,
            ]);
            c
        };
        let ours = process_ms(3, &mut || pose());
        // The first comparison with a baseline not seen before: its face is found (the
        // detector loaded) rather than read from the data directory's cache.
        let faces = data.join("cache/models/faces");
        let first = process_ms(3, &mut || {
            let _ = std::fs::remove_dir_all(&faces);
            pose()
        });
        let peer = process_ms(3, &mut || {
            let mut c = std::process::Command::new(&py);
            c.arg(common::root().join("tests/benches/peers/orb.py"))
                .args(["--runs", "1", b, f]);
            c
        });
        let name = std::path::Path::new(f)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        println!(
            "{kind:<8} {name:<22} {ours:>10.1} {first:>12.1} {peer:>10.1} {:>7.2} {:>7.2}",
            ours / peer,
            first / peer
        );
        ratios.entry(kind).or_default().push(ours / peer);
        firsts.push(first / peer);
        rows.push(serde_json::json!({"kind": kind, "frame": name, "ours_ms": ours, "ours_new_baseline_ms": first, "opencv_ms": peer}));
    }
    let mut all: Vec<f64> = ratios.values().flatten().copied().collect();
    for (kind, v) in &mut ratios {
        let worst = v.iter().copied().fold(0.0, f64::max);
        println!(
            "{kind}: median ratio {:.2}, worst {worst:.2} (bar 0.5)",
            common::median(v)
        );
    }
    let worst = all.iter().copied().fold(0.0, f64::max);
    println!(
        "all pairs: median ratio ours/OpenCV {:.2}, worst {worst:.2} (bar 0.5)",
        common::median(&mut all)
    );
    println!(
        "first comparison with a new baseline (face not cached): median ratio {:.2}, worst {:.2}",
        common::median(&mut firsts.clone()),
        firsts.iter().copied().fold(0.0, f64::max)
    );
    // Many frames against one baseline in one process.
    let mut batch = Vec::new();
    for (b, frames) in &face_sets {
        let ours = process_ms(3, &mut || {
            let mut c = std::process::Command::new(bin);
            c.arg("--data-dir")
                .arg(&data)
                .args(["--json", "analyze", "pose", "--baseline", b, "--frame"])
                .args(frames);
            c
        });
        let peer = process_ms(3, &mut || {
            let mut c = std::process::Command::new(&py);
            c.arg(common::root().join("tests/benches/peers/orb.py"))
                .args(["--runs", "1"]);
            for f in frames {
                c.args([b, f]);
            }
            c
        });
        println!(
            "--frame ×{}: ours {:.1} ms per frame, OpenCV {:.1} ms per pair in one process, ratio {:.2}",
            frames.len(),
            ours / frames.len() as f64,
            peer / frames.len() as f64,
            ours / peer
        );
        batch.push(serde_json::json!({"frames": frames.len(), "ours_ms": ours, "opencv_ms": peer}));
    }
    serde_json::json!({"pairs": rows, "median_ratio": common::median(&mut all), "worst_ratio": worst, "new_baseline_median_ratio": common::median(&mut firsts), "batch": batch})
}
