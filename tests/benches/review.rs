//! Review benchmark: 1,000 published images (900 derivatives of stored captures: resized,
//! re-encoded, watermarked, brightened or darkened, cropped, aspect-changed, composited side by
//! side or stacked; and 100 unrelated images) matched against 100,000 fingerprinted captures,
//! against Python `imagehash` (pHash) brute force over the same files in the same run.
//!
//! The 100,000 captures: 18 from photo scenes (nine fixture photos, a baseline and a later
//! session of each, as in the review tests) and 99,982 procedural images (seeded value noise,
//! shapes and strokes: every one different, none sharing content). Each is stored as the
//! 512×384 JPEG a capture's preview is, which is what both sides fingerprint; derivatives are
//! made from a 1024×768 (photo scenes: 1200×900) rendering of the same capture. Captures and
//! fingerprints are generated once and cached under `target/bench-work/review/`.
//!
//! What is timed, per query, single-threaded on both sides:
//! - ours: decode + prepare (fingerprint the published image), then `find_sources` (candidate
//!   retrieval in the index and geometric and pixel verification) — "matching";
//! - peer: decode + `imagehash.phash`, then a NumPy popcount scan of the 100,000 hashes.
//!
//! Then the 1,000 queries end to end on 2 cores (ours), as `sameframe review` runs them: one
//! worker per core decodes, prepares and matches a file at a time, the results taken in
//! order. Reported: recall per category,
//! false matches, per-query times (p50, p95, max) and the ratio.
//!
//! Run: `cargo bench --bench review` (first run: about 15 minutes to build the collection;
//! `SAMEFRAME_BENCH_CAPTURES=N` for a smaller one). `SAMEFRAME_BENCH_ONLY=q0013,q0031` or
//! `SAMEFRAME_BENCH_ONLY="crop / photo"` runs chosen queries or categories;
//! `SAMEFRAME_BENCH_VERBOSE=1` lists every miss.

#![allow(clippy::unwrap_used)]

#[path = "common.rs"]
mod common;
#[path = "../util/mod.rs"]
mod util;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{GrayImage, Rgb, RgbImage};
use sameframe::analysis::fingerprint::{self, Fingerprint};
use sameframe::records::RecordError;
use sameframe::review::index::Index;
use sameframe::review::matching::{self, Sources};
use sameframe::testkit::Rng;
use serde_json::json;
use util::published::*;

/// The photo scenes: those the unrelated images are not made from (`unrelated` crops and
/// warps grass, gravel, retina, camera and Hubble photos, which must not be in the store).
const PHOTOS: [&str; 5] = [
    "faces/astronaut.jpg",
    "textures/coffee.jpg",
    "textures/chelsea.jpg",
    "textures/rocket.jpg",
    "textures/brick.jpg",
];
const PHOTO_CAPTURES: usize = 2 * PHOTOS.len();

fn capture_count() -> usize {
    std::env::var("SAMEFRAME_BENCH_CAPTURES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn id_of(i: usize) -> String {
    format!("cap_{i:06}")
}

/// Smooth value noise in [0, 1] at normalized coordinates, `cells` lattice cells across.
fn value_noise(rng_seed: u64, cells: usize) -> impl Fn(f64, f64) -> f64 {
    let mut rng = Rng(rng_seed);
    let n = cells + 2;
    let lattice: Vec<f64> = (0..n * n).map(|_| rng.unit()).collect();
    move |u: f64, v: f64| {
        let (x, y) = (u * cells as f64, v * cells as f64);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (fx, fy) = (x - x0 as f64, y - y0 as f64);
        let s = |t: f64| t * t * (3.0 - 2.0 * t);
        let (sx, sy) = (s(fx), s(fy));
        let at = |i: usize, j: usize| lattice[(j.min(n - 1)) * n + i.min(n - 1)];
        let a = at(x0, y0) * (1.0 - sx) + at(x0 + 1, y0) * sx;
        let b = at(x0, y0 + 1) * (1.0 - sx) + at(x0 + 1, y0 + 1) * sx;
        a * (1.0 - sy) + b * sy
    }
}

/// A procedural capture, resolution-independent: the same seed renders the same picture at any
/// size.
fn procedural(seed: u64, w: u32, h: u32) -> RgbImage {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED);
    let octaves = [
        value_noise(rng.next_u64(), 4),
        value_noise(rng.next_u64(), 9),
        value_noise(rng.next_u64(), 21),
    ];
    let palette: Vec<[f64; 3]> = (0..3)
        .map(|_| [0, 1, 2].map(|_| rng.range(20.0, 235.0)))
        .collect();
    // Shapes in normalized coordinates: ellipses and rectangles with a colour each.
    let shapes: Vec<(bool, f64, f64, f64, f64, [f64; 3])> = (0..28)
        .map(|_| {
            (
                rng.unit() < 0.5,
                rng.unit(),
                rng.unit(),
                rng.range(0.015, 0.09),
                rng.range(0.015, 0.09),
                [0, 1, 2].map(|_| rng.range(0.0, 255.0)),
            )
        })
        .collect();
    let strokes: Vec<(f64, f64, f64, f64, f64)> = (0..10)
        .map(|_| {
            (
                rng.unit(),
                rng.unit(),
                rng.range(-0.3, 0.3),
                rng.range(-0.3, 0.3),
                rng.range(0.0, 255.0),
            )
        })
        .collect();
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let (u, v) = (
            (f64::from(x) + 0.5) / f64::from(w),
            (f64::from(y) + 0.5) / f64::from(h),
        );
        let t = 0.55 * octaves[0](u, v) + 0.3 * octaves[1](u, v) + 0.15 * octaves[2](u, v);
        let (a, b, k) = if t < 0.5 {
            (palette[0], palette[1], t * 2.0)
        } else {
            (palette[1], palette[2], t * 2.0 - 1.0)
        };
        Rgb([0, 1, 2].map(|c| (a[c] * (1.0 - k) + b[c] * k) as u8))
    });
    let (fw, fh) = (f64::from(w), f64::from(h));
    for (ellipse, cx, cy, rx, ry, col) in &shapes {
        let (x0, x1) = (
            ((cx - rx) * fw).max(0.0) as u32,
            ((cx + rx) * fw).min(fw) as u32,
        );
        let (y0, y1) = (
            ((cy - ry) * fh).max(0.0) as u32,
            ((cy + ry) * fh).min(fh) as u32,
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let du = ((f64::from(x) + 0.5) / fw - cx) / rx;
                let dv = ((f64::from(y) + 0.5) / fh - cy) / ry;
                if !ellipse || du * du + dv * dv <= 1.0 {
                    let p = img.get_pixel_mut(x, y);
                    *p = Rgb([0, 1, 2].map(|c| (f64::from(p[c]) * 0.25 + col[c] * 0.75) as u8));
                }
            }
        }
    }
    for (sx, sy, dx, dy, v) in &strokes {
        let steps = (dx.hypot(*dy) * fw * 2.0) as usize + 1;
        let half = (fw / 300.0).max(1.0) as i64;
        for s in 0..steps {
            let t = s as f64 / steps as f64;
            let (px, py) = (((sx + dx * t) * fw) as i64, ((sy + dy * t) * fh) as i64);
            for oy in -half..=half {
                for ox in -half..=half {
                    let (x, y) = (px + ox, py + oy);
                    if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                        img.put_pixel(x as u32, y as u32, Rgb([*v as u8; 3]));
                    }
                }
            }
        }
    }
    img
}

/// Capture `i` at "camera" resolution (what derivatives are made from).
fn capture_image(i: usize) -> RgbImage {
    if i < PHOTO_CAPTURES {
        let s = scene(PHOTOS[i / 2], 100 + (i / 2) as u64);
        if i.is_multiple_of(2) {
            s
        } else {
            later_session(&s, 200 + (i / 2) as u64)
        }
    } else {
        procedural(i as u64, 1024, 768)
    }
}

/// Capture `i` as stored for matching: the 512×384 preview.
fn capture_preview(i: usize) -> RgbImage {
    if i < PHOTO_CAPTURES {
        resize(&capture_image(i), 512, 384)
    } else {
        procedural(i as u64, 512, 384)
    }
}

struct Collection {
    /// The stored preview JPEGs (the peer hashes these).
    dir: PathBuf,
    fingerprints: HashMap<String, Fingerprint>,
    /// Reduced previews, one fixed-size record per capture (as the store keeps them in the
    /// fingerprint row).
    smalls: std::fs::File,
}

/// Bytes of one reduced-preview record: [`fingerprint::encode_small`] of at most
/// `VERIFY_SIDE`², zero-padded.
const SMALL_RECORD: usize = 4 + (fingerprint::VERIFY_SIDE * fingerprint::VERIFY_SIDE) as usize;

fn read_small(file: &std::fs::File, i: usize) -> Option<GrayImage> {
    use std::os::unix::fs::FileExt;
    let mut rec = vec![0u8; SMALL_RECORD];
    file.read_exact_at(&mut rec, (i * SMALL_RECORD) as u64)
        .ok()?;
    let (w, h) = (
        usize::from(u16::from_le_bytes([rec[0], rec[1]])),
        usize::from(u16::from_le_bytes([rec[2], rec[3]])),
    );
    rec.truncate(4 + w * h);
    (w > 0).then(|| fingerprint::decode_small(&rec))?
}

impl Sources for Collection {
    fn fingerprint_of(&self, capture_id: &str) -> Result<Option<Fingerprint>, RecordError> {
        Ok(self.fingerprints.get(capture_id).cloned())
    }

    fn small_preview_of(&self, capture_id: &str) -> Result<GrayImage, RecordError> {
        let i: usize = capture_id.trim_start_matches("cap_").parse().unwrap();
        Ok(read_small(&self.smalls, i).unwrap())
    }

    fn look_alikes_of(&self, capture_id: &str) -> Result<Vec<String>, RecordError> {
        // A photo scene's baseline and later session are one patient's; every procedural
        // capture is a patient of its own.
        let i: usize = capture_id.trim_start_matches("cap_").parse().unwrap();
        Ok(if i < PHOTO_CAPTURES {
            vec![id_of(i ^ 1)]
        } else {
            Vec::new()
        })
    }
}

fn write_record(out: &mut impl Write, i: usize, f: &Fingerprint) {
    let (kp, ds) = f.encode();
    for v in [i as u64, f.phash, f.dhash] {
        out.write_all(&v.to_le_bytes()).unwrap();
    }
    for v in [f.width, f.height, kp.len() as u32, ds.len() as u32] {
        out.write_all(&v.to_le_bytes()).unwrap();
    }
    out.write_all(&kp).unwrap();
    out.write_all(&ds).unwrap();
}

fn read_records(bytes: &[u8]) -> Vec<(usize, Fingerprint)> {
    let mut out = Vec::new();
    let mut at = 0;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    while at + 40 <= bytes.len() {
        let i = u64_at(bytes, at) as usize;
        let (ph, dh) = (u64_at(bytes, at + 8), u64_at(bytes, at + 16));
        let (w, h) = (u32_at(bytes, at + 24), u32_at(bytes, at + 28));
        let (kl, dl) = (
            u32_at(bytes, at + 32) as usize,
            u32_at(bytes, at + 36) as usize,
        );
        at += 40;
        let kp = &bytes[at..at + kl];
        let ds = &bytes[at + kl..at + kl + dl];
        at += kl + dl;
        out.push((i, Fingerprint::decode(ph as i64, dh as i64, w, h, kp, ds)));
    }
    out
}

/// Build (or load) the collection: JPEG previews on disk and their fingerprints.
fn collection(n: usize) -> (Collection, f64) {
    let root = common::work_dir("review");
    let dir = root.join("captures");
    std::fs::create_dir_all(&dir).unwrap();
    let fp_path = root.join(format!("fingerprints-v{}.bin", fingerprint::VERSION));
    let mut cached: HashMap<usize, Fingerprint> = std::fs::File::open(&fp_path)
        .ok()
        .map(|mut f| {
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            read_records(&b).into_iter().collect()
        })
        .unwrap_or_default();
    let missing: Vec<usize> = (0..n)
        .filter(|i| !cached.contains_key(i) || !dir.join(format!("{}.jpg", id_of(*i))).exists())
        .collect();
    let mut fp_ms = Vec::new();
    if !missing.is_empty() {
        eprintln!(
            "generating and fingerprinting {} captures (cached for later runs) …",
            missing.len()
        );
        let t = Instant::now();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&fp_path)
            .unwrap();
        let out = std::sync::Mutex::new(BufWriter::new(file));
        let times = std::sync::Mutex::new(Vec::new());
        let done = std::sync::atomic::AtomicUsize::new(0);
        let todo = missing.len();
        std::thread::scope(|s| {
            for part in missing.chunks(todo.div_ceil(2)) {
                let (out, times, done, dir) = (&out, &times, &done, &dir);
                s.spawn(move || {
                    for &i in part {
                        let file = dir.join(format!("{}.jpg", id_of(i)));
                        let bytes = match std::fs::read(&file) {
                            Ok(b) => b,
                            Err(_) => {
                                let bytes = jpeg(&capture_preview(i), 88);
                                std::fs::write(&file, &bytes).unwrap();
                                bytes
                            }
                        };
                        // Fingerprint what is stored, as import does.
                        let stored = image::load_from_memory(&bytes).unwrap().to_rgb8();
                        let t = Instant::now();
                        let f = Fingerprint::of(&stored);
                        times.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3);
                        write_record(&mut *out.lock().unwrap(), i, &f);
                        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if d % 5000 == 0 {
                            eprintln!("  {d} / {todo}");
                        }
                    }
                });
            }
        });
        out.into_inner().unwrap().flush().unwrap();
        eprintln!("  done in {:.0} s", t.elapsed().as_secs_f64());
        fp_ms = times.into_inner().unwrap();
        let mut b = Vec::new();
        std::fs::File::open(&fp_path)
            .unwrap()
            .read_to_end(&mut b)
            .unwrap();
        cached = read_records(&b).into_iter().collect();
    }
    let fingerprints = (0..n)
        .map(|i| (id_of(i), cached.remove(&i).unwrap()))
        .collect();
    let fp_median = if fp_ms.is_empty() {
        f64::NAN
    } else {
        common::median(&mut fp_ms)
    };
    let smalls = small_previews(&root, &dir, n);
    (
        Collection {
            dir,
            fingerprints,
            smalls,
        },
        fp_median,
    )
}

/// The reduced preview of every capture, made from its stored JPEG as import does (cached).
fn small_previews(root: &std::path::Path, dir: &std::path::Path, n: usize) -> std::fs::File {
    use std::os::unix::fs::FileExt;
    let path = root.join(format!("smalls-v{}.bin", fingerprint::VERSION));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let want = (n * SMALL_RECORD) as u64;
    if file.metadata().unwrap().len() < want {
        file.set_len(want).unwrap();
    }
    let missing: Vec<usize> = (0..n).filter(|&i| read_small(&file, i).is_none()).collect();
    if !missing.is_empty() {
        eprintln!(
            "reducing {} capture previews (cached for later runs) …",
            missing.len()
        );
        std::thread::scope(|s| {
            for part in missing.chunks(missing.len().div_ceil(2)) {
                let file = &file;
                s.spawn(move || {
                    for &i in part {
                        let jpeg = std::fs::read(dir.join(format!("{}.jpg", id_of(i)))).unwrap();
                        let small = fingerprint::small_preview_of_jpeg(&jpeg).unwrap();
                        let mut rec = fingerprint::encode_small(&small);
                        rec.resize(SMALL_RECORD, 0);
                        file.write_all_at(&rec, (i * SMALL_RECORD) as u64).unwrap();
                    }
                });
            }
        });
    }
    file
}

/// The published images: (category, file, expected sources in reading order).
fn queries(n_captures: usize) -> Vec<(String, PathBuf, Vec<String>)> {
    let dir = common::work_dir("review").join(format!("queries-{n_captures}-v2"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(4242);
    let mut out = Vec::new();
    for q in 0..1000usize {
        let path = dir.join(format!("q{q:04}.jpg"));
        if q >= 900 {
            let expect = Vec::new();
            if !path.exists() {
                std::fs::write(&path, jpeg(&unrelated(q as u64), 85)).unwrap();
            }
            out.push(("unrelated".to_string(), path, expect));
            continue;
        }
        // Half the queries come from the photo scenes, half from anywhere in the collection.
        let src = if q % 2 == 0 {
            (q / 2) % PHOTO_CAPTURES
        } else {
            PHOTO_CAPTURES + (rng.next_u64() as usize) % (n_captures - PHOTO_CAPTURES - 1)
        };
        let kind = (q / 2) % 9;
        let cat = [
            "resize",
            "re-encode",
            "watermark",
            "brightness",
            "brightness",
            "crop",
            "aspect",
            "composite",
            "composite",
        ][kind];
        // Composites: a photo scene's baseline and later session, or two captures in a row.
        let pair = if src < PHOTO_CAPTURES {
            (src & !1, src | 1)
        } else {
            (src, src + 1)
        };
        let expect = if cat == "composite" {
            vec![id_of(pair.0), id_of(pair.1)]
        } else {
            vec![id_of(src)]
        };
        let (u1, u2) = (rng.unit(), rng.unit());
        if !path.exists() {
            let img = capture_image(src);
            let (w, h) = img.dimensions();
            let published = match kind {
                0 => reencode(&resize(&img, 700, 700 * h / w), 85),
                1 => reencode(&resize(&img, 380, 380 * h / w), 50),
                2 => reencode(&watermark(&resize(&img, 800, 800 * h / w), q as u64), 80),
                3 => reencode(&brightness(&resize(&img, 720, 720 * h / w), 1.2), 85),
                4 => reencode(&brightness(&resize(&img, 720, 720 * h / w), 0.8), 85),
                // Up to 30 % of the picture cropped away, unevenly between width and height,
                // then shown at 4:3 (an aspect change too).
                5 => {
                    let keep = 0.7 + 0.25 * u1;
                    let t = 0.25 + 0.5 * u2;
                    let (fw, fh) = (keep.powf(t), keep.powf(1.0 - t));
                    reencode(&resize(&crop(&img, fw, fh, u2, u1), 640, 480), 85)
                }
                6 => reencode(&resize(&crop(&img, 0.75, 1.0, u1, 0.5), 600, 600), 85),
                7 => reencode(
                    &composite(
                        &capture_image(pair.0),
                        &capture_image(pair.1),
                        500,
                        12,
                        false,
                        true,
                    ),
                    85,
                ),
                _ => reencode(
                    &composite(
                        &capture_image(pair.0),
                        &capture_image(pair.1),
                        480,
                        0,
                        true,
                        false,
                    ),
                    85,
                ),
            };
            std::fs::write(&path, jpeg(&published, 90)).unwrap();
        }
        let origin = if src < PHOTO_CAPTURES {
            "photo"
        } else {
            "procedural"
        };
        out.push((format!("{cat} / {origin}"), path, expect));
    }
    out
}

/// The store rows `sameframe review` reads of a capture, as `sameframe migrate` copies rows:
/// its patient, its blob and capture rows (bodies are not read by matching), its fingerprint
/// with the reduced preview, and the index copy. A photo scene's baseline and later session
/// are one patient's; every procedural capture is a patient of its own.
fn fill_store(store: &sameframe::store::Store, coll: &Collection, ids: &[String]) {
    use sameframe::store::repo::Cell;
    let t = |s: &str| Cell::Text(s.to_string());
    let patient_of = |i: usize| {
        if i < PHOTO_CAPTURES {
            format!("pat_photo_{}", i / 2)
        } else {
            format!("pat_{i:06}")
        }
    };
    let created = "2026-01-01T00:00:00.000Z";
    store
        .write(|tx| {
            tx.transfer_insert(
                "patient",
                &[vec![
                    t("pat_photo_0"),
                    t("bench-ref-key-0"),
                    Cell::Bytes(b"{}".to_vec()),
                    t(created),
                ]],
            )?;
            tx.transfer_insert(
                "consent",
                &[vec![
                    t("con_bench"),
                    t("pat_photo_0"),
                    Cell::Bytes(b"{}".to_vec()),
                    t(created),
                ]],
            )
        })
        .unwrap();
    let indexed: Vec<(usize, &String)> = ids
        .iter()
        .map(|id| (id.trim_start_matches("cap_").parse::<usize>().unwrap(), id))
        .collect();
    for chunk in indexed.chunks(500) {
        let mut patients = Vec::new();
        let mut blobs = Vec::new();
        let mut caps = Vec::new();
        let mut fps = Vec::new();
        let mut index = Vec::new();
        for &(i, id) in chunk {
            let sha = sameframe::ids::sha256_hex(id.as_bytes());
            let pid = patient_of(i);
            if pid != "pat_photo_0" && (i >= PHOTO_CAPTURES || i % 2 == 0) {
                patients.push(vec![
                    t(&pid),
                    t(&format!("bench-ref-key-{pid}")),
                    Cell::Bytes(b"{}".to_vec()),
                    t(created),
                ]);
            }
            blobs.push(vec![
                t(&sha),
                Cell::Int(1),
                t("capture"),
                t("con_bench"),
                Cell::Null,
                t(created),
            ]);
            caps.push(vec![
                t(&format!("2026-01-01T00:00:{:06}", i)),
                t(id),
                t(&sha),
                t(&pid),
                t("con_bench"),
                Cell::Null,
                t("face"),
                t("frontal"),
                t(if i < PHOTO_CAPTURES && i % 2 == 1 {
                    "follow_up"
                } else {
                    "baseline"
                }),
                Cell::Null,
                t(created),
                Cell::Bytes(b"{}".to_vec()),
            ]);
            let f = &coll.fingerprints[id];
            let (kp, ds) = f.encode();
            let small = read_small(&coll.smalls, i).map(|g| fingerprint::encode_small(&g));
            let n = fingerprint::INDEX_KEYPOINTS;
            index.push(vec![
                t(id),
                Cell::Int(f.phash as i64),
                Cell::Int(f.dhash as i64),
                Cell::Bytes(kp[..kp.len().min(n * 8)].to_vec()),
                Cell::Bytes(ds[..ds.len().min(n * 32)].to_vec()),
            ]);
            fps.push(vec![
                t(id),
                Cell::Int(fingerprint::VERSION),
                Cell::Int(f.phash as i64),
                Cell::Int(f.dhash as i64),
                Cell::Int(i64::from(f.width)),
                Cell::Int(i64::from(f.height)),
                Cell::Bytes(kp),
                Cell::Bytes(ds),
                t(created),
                small.map_or(Cell::Null, Cell::Bytes),
            ]);
        }
        store
            .write(|tx| {
                tx.transfer_insert("patient", &patients)?;
                tx.transfer_insert("blob", &blobs)?;
                tx.transfer_insert("capture", &caps)?;
                tx.transfer_insert("fingerprint", &fps)?;
                tx.transfer_insert("fingerprint_index", &index)
            })
            .unwrap();
    }
}

/// How many index rows a store holds.
fn index_rows(store: &sameframe::store::Store) -> usize {
    let mut rows = 0usize;
    store
        .read(|r| r.each_index_row(&mut |_| rows += 1))
        .unwrap();
    rows
}

/// The collection in an embedded store (made once and cached).
fn embedded_store(coll: &Collection, ids: &[String]) -> sameframe::store::Store {
    let n = ids.len();
    let dir = common::work_dir("review").join(format!("store-v2-{n}-v{}", fingerprint::VERSION));
    let key = dir.with_extension("key");
    if let Ok(store) = sameframe::backends::open(&dir, common::key_file_options(&key))
        && index_rows(&store) == n
    {
        return store;
    }
    eprintln!("writing {n} captures into an embedded store (cached for later runs) …");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&key);
    let store = common::new_embedded_store(&dir, &key);
    fill_store(&store, coll, ids);
    store
}

/// The collection in a shared store on `servers` (written for this run).
fn shared_store(
    servers: &util::Servers,
    coll: &Collection,
    ids: &[String],
) -> sameframe::store::Store {
    use sameframe::store::{Encryption, KeySource, OpenOptions};
    let n = ids.len();
    let dir = common::work_dir("review").join(format!("shared-station-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let key = dir.with_extension("key");
    let _ = std::fs::remove_file(&key);
    let creds = common::work_dir("review").join("credentials");
    servers.write_credentials(&creds);
    let spec = sameframe::backends::SharedSpec {
        database_url: servers.fresh_database("sf_bench_review"),
        blob_url: format!(
            "s3://{}/bench-review-{}",
            servers.bucket,
            std::process::id()
        ),
        s3_endpoint: Some(servers.s3_endpoint.clone()),
        s3_region: None,
        credentials_file: Some(creds),
        database_ca_file: None,
    };
    let store = sameframe::backends::init(
        &dir,
        &sameframe::backends::Target::Shared(spec),
        false,
        Encryption::KeyFile { path: key.clone() },
        OpenOptions {
            actor: "bench".into(),
            keys: KeySource::KeyFile(key),
            calibration_dir: None,
            ..Default::default()
        },
    )
    .unwrap();
    eprintln!("writing {n} captures into the shared store (PostgreSQL) …");
    let t = Instant::now();
    fill_store(&store, coll, ids);
    eprintln!("  written in {:.0} s", t.elapsed().as_secs_f64());
    store
}

/// The 1,000 queries as `sameframe review` runs them against a store: the index read from the
/// store and built, then one worker per core with its own handle on the store decoding,
/// preparing and matching a file at a time (every fingerprint, reduced preview and look-alike
/// read from the store), the results taken in order. Returns (index s, all s, found).
fn review_through(
    store: &sameframe::store::Store,
    qs: &[(String, PathBuf, Vec<String>)],
) -> (f64, f64, Vec<Vec<String>>) {
    let t = Instant::now();
    let index = store.review_index().unwrap();
    let index_s = t.elapsed().as_secs_f64();
    let readers: Vec<sameframe::store::Store> = (0..2).map(|_| store.reader().unwrap()).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut found = vec![Vec::new(); qs.len()];
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (index, next) = (&index, &next);
        for reader in readers {
            let tx = tx.clone();
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((_, path, _)) = qs.get(i) else { break };
                    let img = image::open(path).unwrap().to_rgb8();
                    let q = matching::prepare(&img);
                    let m = reader.find_sources(index, &q, &img).unwrap();
                    tx.send((i, m.into_iter().map(|m| m.capture_id).collect::<Vec<_>>()))
                        .unwrap();
                }
            });
        }
        drop(tx);
        for (i, f) in rx {
            found[i] = f;
        }
    });
    (index_s, t.elapsed().as_secs_f64(), found)
}

struct Outcome {
    prepare_ms: f64,
    match_ms: f64,
    found: Vec<String>,
}

fn run_one(c: &Collection, index: &Index, path: &Path) -> Outcome {
    let t = Instant::now();
    let img = image::open(path).unwrap().to_rgb8();
    let q = matching::prepare(&img);
    let prepare_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let found = matching::find_sources(c, index, &q, &img)
        .unwrap()
        .into_iter()
        .map(|m| m.capture_id)
        .collect();
    Outcome {
        prepare_ms,
        match_ms: t.elapsed().as_secs_f64() * 1e3,
        found,
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let n = capture_count();
    assert!(
        n > PHOTO_CAPTURES + 10,
        "need more captures than photo scenes"
    );
    let t = Instant::now();
    let (coll, fp_ms) = collection(n);
    eprintln!(
        "collection of {n} ready in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut ids: Vec<String> = coll.fingerprints.keys().cloned().collect();
    ids.sort();
    // As `sameframe review` builds it: read from the store's database.
    let store = embedded_store(&coll, &ids);
    let t = Instant::now();
    let index = store.review_index().unwrap();
    let build_s = t.elapsed().as_secs_f64();
    assert_eq!(index.len(), n);
    eprintln!("index read from the store and built in {build_s:.2} s");
    let mut qs = queries(n);
    if let Ok(only) = std::env::var("SAMEFRAME_BENCH_ONLY") {
        let only: Vec<String> = only.split(',').map(str::to_string).collect();
        qs.retain(|(cat, p, _)| {
            only.iter()
                .any(|o| cat == o || p.file_stem().is_some_and(|s| s == o.as_str()))
        });
    }

    // Ours, one thread, per query.
    let mut outcomes = Vec::new();
    for (_, path, _) in &qs {
        outcomes.push(run_one(&coll, &index, path));
    }
    // Ours, the 1,000 end to end on 2 cores, as `sameframe review` runs them: one worker per
    // core decodes, prepares and matches a file at a time; the results are taken in order.
    let t = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (qs, coll, index, next) = (&qs, &coll, &index, &next);
        for _ in 0..2 {
            let tx = tx.clone();
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((_, path, _)) = qs.get(i) else { break };
                    let img = image::open(path).unwrap().to_rgb8();
                    let q = matching::prepare(&img);
                    let found = matching::find_sources(coll, index, &q, &img).unwrap();
                    tx.send((i, found)).unwrap();
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut done = 0;
        for (i, found) in rx {
            waiting.insert(i, found);
            while waiting.remove(&done).is_some() {
                done += 1;
            }
        }
        assert_eq!(done, qs.len());
    });
    let all_2t_s = t.elapsed().as_secs_f64();

    // The same 1,000 through each backend, every read from the store, in the same run.
    let (emb_index_s, emb_all_s, emb_found) = review_through(&store, &qs);
    eprintln!("embedded store: index {emb_index_s:.2} s, 1,000 images in all {emb_all_s:.2} s");
    let servers = util::Servers::from_env_or_private(&common::work_dir("review").join("servers"));
    let shared = servers.as_ref().map(|(sv, _)| {
        let st = shared_store(sv, &coll, &ids);
        let r = review_through(&st, &qs);
        eprintln!(
            "shared store: index {:.2} s, 1,000 images in all {:.2} s",
            r.0, r.1
        );
        r
    });

    // The peer over the same files.
    let peer =
        common::peer_python("imagehash", &["imagehash==4.3.2", "numpy", "pillow"]).and_then(|py| {
            let list = common::work_dir("review").join(format!("captures-{n}.txt"));
            let mut f = BufWriter::new(std::fs::File::create(&list).unwrap());
            for id in &ids {
                writeln!(f, "{id}\t{}", coll.dir.join(format!("{id}.jpg")).display()).unwrap();
            }
            f.flush().unwrap();
            drop(f);
            let qlist = common::work_dir("review").join(format!("queries-{n}.txt"));
            std::fs::write(
                &qlist,
                qs.iter()
                    .map(|(_, p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
            .unwrap();
            common::run_peer(
                &py,
                "imagehash_bf.py",
                &[
                    list.display().to_string(),
                    qlist.display().to_string(),
                    common::work_dir("review")
                        .join(format!("imagehash-{n}-v2.npy"))
                        .display()
                        .to_string(),
                ],
            )
        });

    // Scores.
    #[derive(Default)]
    struct Score {
        total: usize,
        ours: usize,
        peer: usize,
        match_ms: Vec<f64>,
    }
    let mut by_cat: BTreeMap<String, Score> = BTreeMap::new();
    let (mut false_ours, mut false_peer) = (0usize, 0usize);
    let peer_rows = peer.as_ref().and_then(|p| p["queries"].as_array().cloned());
    for (k, ((cat, _, expect), o)) in qs.iter().zip(&outcomes).enumerate() {
        let s = by_cat.entry(cat.clone()).or_default();
        s.match_ms.push(o.match_ms);
        if expect.is_empty() {
            s.total += 1;
            s.ours += usize::from(o.found.is_empty());
        } else {
            s.total += expect.len();
            s.ours += expect
                .iter()
                .enumerate()
                .filter(|(i, id)| o.found.get(*i) == Some(id))
                .count();
        }
        let wrong = o.found.iter().filter(|g| !expect.contains(g)).count();
        if wrong > 0 || std::env::var_os("SAMEFRAME_BENCH_VERBOSE").is_some() && o.found != *expect
        {
            eprintln!(
                "{cat}: {} expected {expect:?}, found {:?}",
                qs[k].1.display(),
                o.found
            );
        }
        false_ours += wrong;
        if let Some(rows) = &peer_rows {
            // The peer's answer: the nearest hash, accepted within 10 bits (imagehash's usual
            // threshold); it names one source per image.
            let r = &rows[k];
            let hit = r["distance"].as_u64().unwrap_or(64) <= 10;
            let best = r["best"].as_str().unwrap_or("").to_string();
            if expect.is_empty() {
                s.peer += usize::from(!hit);
                false_peer += usize::from(hit);
            } else if hit && expect.contains(&best) {
                s.peer += 1;
            } else if hit {
                false_peer += 1;
            }
        }
    }
    let mut prepare: Vec<f64> = outcomes.iter().map(|o| o.prepare_ms).collect();
    let mut matching_ms: Vec<f64> = outcomes.iter().map(|o| o.match_ms).collect();
    let mut single: Vec<f64> = outcomes.iter().map(|o| o.prepare_ms + o.match_ms).collect();
    let single_total_s = single.iter().sum::<f64>() / 1e3;

    println!(
        "\n{n} captures (index read from the store and built in {build_s:.1} s; capture \
         fingerprint median {fp_ms:.1} ms)"
    );
    println!(
        "{:<22} {:>6} {:>12} {:>12} {:>12}",
        "category", "panels", "ours", "imagehash", "match p50"
    );
    for (cat, s) in &mut by_cat {
        let p50 = common::median(&mut s.match_ms);
        println!(
            "{cat:<22} {:>6} {:>11.1}% {:>11.1}% {:>9.2} ms",
            s.total,
            100.0 * s.ours as f64 / s.total as f64,
            100.0 * s.peer as f64 / s.total as f64,
            p50
        );
    }
    println!("false matches: ours {false_ours}, imagehash {false_peer}");
    let m50 = pct(&mut matching_ms, 0.5);
    let m95 = pct(&mut matching_ms, 0.95);
    let mmax = pct(&mut matching_ms, 1.0);
    let p50 = pct(&mut prepare, 0.5);
    let s50 = pct(&mut single, 0.5);
    println!(
        "ours: matching a prepared image against {n}: p50 {m50:.2} ms, p95 {m95:.2} ms, max {mmax:.1} ms; \
         decode+prepare p50 {p50:.1} ms; per image end to end p50 {s50:.1} ms"
    );
    println!(
        "ours: 1,000 images end to end: {single_total_s:.1} s on one thread, {all_2t_s:.1} s on 2 cores \
         (as `sameframe review` runs them); in all with building the index: {:.1} s",
        build_s + all_2t_s
    );
    let mut summary = json!({
        "captures": n,
        "index_build_s": build_s,
        "capture_fingerprint_ms_median": fp_ms,
        "ours": {
            "match_ms_p50": m50, "match_ms_p95": m95, "match_ms_max": mmax,
            "prepare_ms_p50": p50, "end_to_end_ms_p50": s50,
            "thousand_single_thread_s": single_total_s, "thousand_two_threads_s": all_2t_s,
            "thousand_two_threads_with_index_build_s": build_s + all_2t_s,
            "false_matches": false_ours,
        },
        "recall": by_cat.iter().map(|(c, s)| (c.clone(), json!({
            "total": s.total,
            "ours": s.ours as f64 / s.total as f64,
            "imagehash": s.peer as f64 / s.total as f64,
        }))).collect::<serde_json::Map<_, _>>(),
    });
    if let Some(p) = &peer {
        let search = p["search_ms_p50"].as_f64().unwrap_or(f64::NAN);
        let hash = p["hash_ms_p50"].as_f64().unwrap_or(f64::NAN);
        let total = p["total_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "imagehash: pHash of a published image p50 {hash:.2} ms; brute-force scan of {n} p50 {search:.2} ms; \
             1,000 images {total:.1} s on one thread; database hashing {:.0} s",
            p["db_hash_s"].as_f64().unwrap_or(f64::NAN)
        );
        println!(
            "ratio (imagehash / ours): matching {:.2}x, per image end to end {:.2}x, 1,000 images on one thread {:.2}x",
            search / m50,
            (hash + search) / s50,
            total / single_total_s
        );
        println!("false matches: ours {false_ours}, imagehash {false_peer}");
        summary["imagehash"] = p.clone();
        summary["imagehash"]["false_matches"] = json!(false_peer);
        summary["imagehash"]
            .as_object_mut()
            .unwrap()
            .remove("queries");
    } else {
        println!("imagehash: not available (see the notice above)");
    }
    println!(
        "through the store, 1,000 images in all (index read and built, then 2 workers reading \
         candidates from the store): embedded {emb_all_s:.1} s (index {emb_index_s:.1} s)"
    );
    let agree = |found: &[Vec<String>]| {
        found
            .iter()
            .zip(&outcomes)
            .filter(|(a, o)| **a == o.found)
            .count()
    };
    summary["through_store"] = json!({
        "embedded": { "index_s": emb_index_s, "all_s": emb_all_s, "same_answers_as_in_memory": agree(&emb_found) },
    });
    if let Some((si, sa, sf)) = &shared {
        println!(
            "                                                       shared (PostgreSQL + S3) {sa:.1} s (index {si:.1} s) = {:.2}x embedded",
            sa / emb_all_s
        );
        println!(
            "same answers as in memory: embedded {} / {}, shared {} / {}",
            agree(&emb_found),
            qs.len(),
            agree(sf),
            qs.len()
        );
        summary["through_store"]["shared"] = json!({ "index_s": si, "all_s": sa, "ratio_vs_embedded": sa / emb_all_s, "same_answers_as_in_memory": agree(sf) });
    } else {
        println!("shared store: no servers (see the notice above)");
    }
    common::save_summary("review", &summary);
}
