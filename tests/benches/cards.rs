//! Grey-card benchmark: detection rate and accuracy against the card's area (0.2–5 % of a
//! 1920×1080 frame), on real photos with a card lit into them at a known exposure and cast,
//! and false cards on the same photos without one. Beside it, in the same run and on the same
//! photos and areas, a ColorChecker of each area: ours and OpenCV's `cv2.mcc`.
//!
//! Run: `cargo bench --bench cards`

#![allow(clippy::unwrap_used)]

#[path = "common.rs"]
mod common;

use image::RgbImage;
use sameframe::analysis::frame::Frame;
use sameframe::analysis::geometry::{Pt, inside_convex, polygon_area};
use sameframe::analysis::lighting::{self, LightingConfig};
use sameframe::testkit::{self, Exposure, Rng};

const W: u32 = 1920;
const H: u32 = 1080;
const AREAS: [f64; 9] = [0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 3.5, 5.0];
const POSES: usize = 4;

/// Real photos, cover-cropped to 1920×1080: faces, a scalp view, textures and rooms.
fn backgrounds() -> Vec<(String, RgbImage)> {
    let shared = common::root().join("../shared/fixtures");
    let mut files: Vec<std::path::PathBuf> = [
        "faces/obama-1080p.jpg",
        "faces/biden.jpg",
        "faces/two_people.jpg",
        "faces/obama2.jpg",
        "scalp/bald_guys.jpg",
    ]
    .iter()
    .map(|f| shared.join(f))
    .filter(|p| p.exists())
    .collect();
    files.extend(
        common::PHOTOS
            .iter()
            .map(|f| common::root().join("fixtures").join(f)),
    );
    files
        .into_iter()
        .map(|p| {
            let img = image::open(&p).unwrap().to_rgb8();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, cover(&img, W, H))
        })
        .collect()
}

fn cover(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let s = (f64::from(w) / f64::from(img.width())).max(f64::from(h) / f64::from(img.height()));
    let (nw, nh) = (
        (f64::from(img.width()) * s).ceil() as u32,
        (f64::from(img.height()) * s).ceil() as u32,
    );
    let big = image::imageops::resize(img, nw.max(w), nh.max(h), image::imageops::Triangle);
    image::imageops::crop_imm(&big, (big.width() - w) / 2, (big.height() - h) / 2, w, h).to_image()
}

/// A card outline covering about `area` (fraction of the frame), somewhere fully inside it.
fn place(rng: &mut Rng, area: f64, aspect: f64) -> [Pt; 4] {
    let size = (area * f64::from(W) * f64::from(H) / aspect).sqrt() / f64::from(W);
    let half_w = size * 0.8;
    let half_h = size * aspect * f64::from(W) / f64::from(H) * 0.8;
    let cx = rng.range(0.05 + half_w, 0.95 - half_w);
    let cy = rng.range(0.05 + half_h, 0.95 - half_h);
    testkit::card_quad(
        W,
        H,
        (cx, cy),
        size,
        aspect,
        rng.range(-12.0, 12.0),
        rng.range(-25.0, 25.0),
    )
}

fn exposure(rng: &mut Rng, seed: u64) -> Exposure {
    Exposure {
        ev: rng.range(-1.0, 0.6),
        cast: [rng.range(0.85, 1.15), 1.0, rng.range(0.85, 1.15)],
        noise: 2.0,
        jpeg: Some(rng.range(85.0, 96.0) as u8)
            .filter(|_| std::env::var_os("CARDS_LOSSLESS").is_none()),
        seed,
        ..Default::default()
    }
}

/// PNG with fast compression (the peer reads the same files).
fn save_fast(img: &RgbImage, path: &std::path::Path) {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let enc = PngEncoder::new_with_quality(file, CompressionType::Fast, FilterType::Sub);
    img.write_with_encoder(enc).unwrap();
}

fn centroid(q: &[Pt]) -> Pt {
    let n = q.len() as f64;
    [
        q.iter().map(|p| p[0]).sum::<f64>() / n,
        q.iter().map(|p| p[1]).sum::<f64>() / n,
    ]
}

#[derive(Default, Clone)]
struct Row {
    grey: usize,
    grey_found: usize,
    grey_accurate: usize,
    worst_ev: f64,
    worst_gain: f64,
    min_pixels: Option<u64>,
    checker: usize,
    checker_ours: usize,
    checker_mcc: usize,
}

fn main() {
    let cfg = LightingConfig::builtin().unwrap();
    let dir = common::work_dir("cards");
    let bgs = backgrounds();
    let mut rng = Rng(20_261_201);
    let mut rows = vec![Row::default(); AREAS.len()];
    let mut checker_files: Vec<(usize, String, [Pt; 4])> = Vec::new();
    let mut seed = 1u64;
    let only: Option<Vec<f64>> = std::env::var("CARDS_AREAS")
        .ok()
        .map(|v| v.split(',').filter_map(|a| a.parse().ok()).collect());
    for (a, &area) in AREAS.iter().enumerate() {
        if only.as_ref().is_some_and(|o| !o.contains(&area)) {
            continue;
        }
        for (_, bg) in &bgs {
            for _ in 0..POSES {
                seed += 1;
                let refl = testkit::photo_background(bg);
                let quad = place(&mut rng, area / 100.0, 178.0 / 127.0);
                let e = exposure(&mut rng, seed);
                let (img, truth) = testkit::grey_scene_on(refl, W, H, quad, 0.18, None, &e);
                grade_grey(&mut rows[a], &cfg, &img, &truth);
                // The same photo and area with a ColorChecker (4:6 landscape).
                let refl = testkit::photo_background(bg);
                let quad = place(&mut rng, area / 100.0, 0.7);
                let e = exposure(&mut rng, seed + 50_000);
                let (img, _) = testkit::checker_scene_on(refl, W, H, quad, &e);
                let f = dir.join(format!("checker_{a}_{seed}.png"));
                save_fast(&img, &f);
                let found = lighting::locate(&Frame::rgb8(&img), &cfg).is_some_and(|l| {
                    l.kind == "colorchecker" && inside_convex(&quad, centroid(&l.quad))
                });
                rows[a].checker += 1;
                rows[a].checker_ours += usize::from(found);
                checker_files.push((a, f.display().to_string(), quad));
            }
        }
    }
    // Card-free: each photo under three exposures and casts.
    let mut free_files = Vec::new();
    let (mut free, mut ours_false) = (0, Vec::new());
    for (name, bg) in &bgs {
        for k in 0..3u64 {
            let e = exposure(&mut rng, 90_000 + k);
            let img = testkit::expose(W, H, &testkit::photo_background(bg), &e);
            free += 1;
            if let Some(l) = lighting::locate(&Frame::rgb8(&img), &cfg) {
                ours_false.push(format!(
                    "{name} #{k}: {} at {:?}",
                    l.kind,
                    centroid(&l.quad)
                ));
            }
            let f = dir.join(format!("free_{name}_{k}.png"));
            save_fast(&img, &f);
            free_files.push(f.display().to_string());
        }
    }
    // The peer on the ColorChecker frames and the card-free frames, in the same run.
    // Detection only: one run per file.
    let mut files: Vec<String> = vec!["--runs".into(), "1".into()];
    files.extend(checker_files.iter().map(|c| c.1.clone()));
    files.extend(free_files.iter().cloned());
    let peer = common::peer_python(
        "opencv-contrib",
        &["opencv-contrib-python-headless", "numpy"],
    )
    .and_then(|py| common::run_peer(&py, "mcc.py", &files));
    let mut mcc_false = None;
    if let Some(p) = peer.as_ref().and_then(|v| v.as_array()) {
        for (i, (a, _, quad)) in checker_files.iter().enumerate() {
            let ok = p[i]["box"].as_array().is_some_and(|b| {
                let pts: Vec<Pt> = b
                    .chunks(2)
                    .map(|xy| [xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap()])
                    .collect();
                inside_convex(quad, centroid(&pts))
            });
            rows[*a].checker_mcc += usize::from(ok);
        }
        mcc_false = Some(
            p[checker_files.len()..]
                .iter()
                .filter(|r| r["found"].as_bool() == Some(true))
                .count(),
        );
    }
    report(&rows, free, &ours_false, mcc_false, peer.is_some());
}

fn grade_grey(row: &mut Row, cfg: &LightingConfig, img: &RgbImage, truth: &testkit::Truth) {
    row.grey += 1;
    let r = lighting::analyze(&Frame::rgb8(img), cfg, &Default::default());
    let found = r.card.kind.as_deref() == Some("grey18")
        && r.card
            .quad
            .is_some_and(|q| inside_convex(&truth.quad, centroid(&q)));
    if !found {
        if std::env::var_os("CARDS_DEBUG").is_some() {
            eprintln!(
                "miss at {:.2} %: {:?} {:?}",
                polygon_area(&truth.quad) / f64::from(W * H) * 100.0,
                r.card.quad.map(|q| centroid(&q)),
                r.reasons
            );
        }
        return;
    }
    row.grey_found += 1;
    let ev = (r.exposure_ev.unwrap_or(f64::NAN) - truth.exposure_ev).abs();
    let gains = r.wb_gains.unwrap_or([f64::NAN; 3]);
    let gain = (0..3)
        .map(|k| (gains[k] / truth.wb_gains[k] - 1.0).abs())
        .fold(0.0, f64::max);
    row.worst_ev = row.worst_ev.max(ev);
    row.worst_gain = row.worst_gain.max(gain);
    row.grey_accurate += usize::from(ev <= 0.1 && gain <= 0.03);
    if std::env::var_os("CARDS_DEBUG").is_some() && gain > 0.03 {
        eprintln!(
            "gain err {gain:.3}: measured {gains:?} truth {:?} ev {:?} truth {:.3} mean {:?} area {:?}",
            truth.wb_gains,
            r.exposure_ev,
            truth.exposure_ev,
            r.card.mean_srgb,
            r.card.area_fraction
        );
    }
    if let Some(n) = r.card.measured_pixels {
        row.min_pixels = Some(row.min_pixels.map_or(n, |m| m.min(n)));
    }
    let _ = polygon_area(&truth.quad);
}

fn report(rows: &[Row], free: usize, ours_false: &[String], mcc_false: Option<usize>, peer: bool) {
    println!(
        "\n{:>7} | {:>12} {:>10} {:>8} {:>9} {:>8} | {:>12} {:>12}",
        "area %",
        "grey found",
        "accurate",
        "max ΔEV",
        "max gain",
        "min px",
        "chart ours",
        "chart mcc"
    );
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    for (a, r) in AREAS.iter().zip(rows) {
        println!(
            "{:>7.2} | {:>5}/{:<3} {:>4.0}% {:>8.0}% {:>8.3} {:>8.1}% {:>8} | {:>5}/{:<3} {:>3.0}% {:>12}",
            a,
            r.grey_found,
            r.grey,
            pct(r.grey_found, r.grey),
            pct(r.grey_accurate, r.grey_found),
            r.worst_ev,
            r.worst_gain * 100.0,
            r.min_pixels.map(|n| n.to_string()).unwrap_or("-".into()),
            r.checker_ours,
            r.checker,
            pct(r.checker_ours, r.checker),
            if peer {
                format!(
                    "{}/{} {:.0}%",
                    r.checker_mcc,
                    r.checker,
                    pct(r.checker_mcc, r.checker)
                )
            } else {
                "-".into()
            }
        );
    }
    let from = rows
        .iter()
        .zip(AREAS)
        .filter(|(_, a)| *a >= 0.3)
        .fold((0, 0), |(f, n), (r, _)| (f + r.grey_found, n + r.grey));
    println!(
        "\ngrey cards from 0.3 % up: {}/{} found ({:.1} %, bar 95 %); false cards on {free} card-free frames: ours {} (bar 0), mcc {}",
        from.0,
        from.1,
        pct(from.0, from.1),
        ours_false.len(),
        mcc_false.map(|n| n.to_string()).unwrap_or("-".into())
    );
    for f in ours_false {
        println!("  false card: {f}");
    }
    common::save_summary(
        "cards",
        &serde_json::json!({
            "areas_percent": AREAS,
            "grey_found": rows.iter().map(|r| r.grey_found).collect::<Vec<_>>(),
            "grey_total": rows.iter().map(|r| r.grey).collect::<Vec<_>>(),
            "grey_accurate": rows.iter().map(|r| r.grey_accurate).collect::<Vec<_>>(),
            "worst_ev": rows.iter().map(|r| r.worst_ev).collect::<Vec<_>>(),
            "worst_gain": rows.iter().map(|r| r.worst_gain).collect::<Vec<_>>(),
            "checker_ours": rows.iter().map(|r| r.checker_ours).collect::<Vec<_>>(),
            "checker_mcc": rows.iter().map(|r| r.checker_mcc).collect::<Vec<_>>(),
            "checker_total": rows.iter().map(|r| r.checker).collect::<Vec<_>>(),
            "card_free": free, "ours_false": ours_false.len(), "mcc_false": mcc_false,
        }),
    );
}
