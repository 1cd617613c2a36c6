//! Edit-check benchmark: real photos imported as captures, then published as allowed
//! derivatives (resize, JPEG quality 50–95 and double compression, text, logo and watermark
//! overlays, whole-frame brightness, contrast, colour and levels, crops, mild sharpening, PNG
//! and WebP) and as disallowed local edits (clone stamp, healing brush, local smoothing,
//! liquify, local colour change) with each edit's rectangle as truth. Every image goes through
//! the review as a user runs it (`Store::review` on the folder); reported per category:
//! allowed derivatives with any `fail` edit finding, and local edits found with a reported
//! rectangle overlapping the truth.
//!
//! The clinic publishes from the capture it keeps, so every derivative and edit is made from
//! the capture's decoded pixels. A retoucher edits what shows: an edit placement that changes
//! its rectangle by less than 3 levels on average (black cloned onto black) is placed again,
//! up to 8 times; how many were, and how many stayed invisible, is printed.
//!
//! Run: `cargo bench --bench edits` (`EDITS_PHOTOS=N` for the first N photos only,
//! `EDITS_ONLY=obama3-a0,biden-e1` for the images whose names contain one of these; each
//! image's findings are written to `target/bench-work/edits/details.tsv`).

#![allow(clippy::unwrap_used)]

#[path = "common.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use sameframe::records::capture::ImportRequest;
use sameframe::records::consent::NewConsent;
use sameframe::records::{Area, Scope, View};
use sameframe::review::checks::{ImageReport, ReviewOptions, Severity};
use sameframe::testkit::Rng;

/// Where the benchmark's photos come from: the shared fixtures' real photos, then the
/// repository's.
fn photos() -> Vec<(String, RgbImage)> {
    let shared = common::root().join("../shared/fixtures");
    let mut files: Vec<PathBuf> = [
        "faces/obama-1080p.jpg",
        "faces/biden.jpg",
        "faces/obama2.jpg",
        "faces/obama3.jpg",
        "faces/two_people.jpg",
        "scalp/bald_guys.jpg",
    ]
    .iter()
    .map(|f| shared.join(f))
    .filter(|p| p.exists())
    .collect();
    for f in [
        "faces/astronaut.jpg",
        "textures/chelsea.jpg",
        "textures/coffee.jpg",
        "textures/rocket.jpg",
    ] {
        files.push(common::root().join("fixtures").join(f));
    }
    let limit = std::env::var("EDITS_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    files
        .into_iter()
        .take(limit)
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            (name, image::open(&p).unwrap().to_rgb8())
        })
        .collect()
}

fn resize_w(img: &RgbImage, w: u32) -> RgbImage {
    let h = (u64::from(img.height()) * u64::from(w) / u64::from(img.width())) as u32;
    image::imageops::resize(img, w, h.max(1), image::imageops::FilterType::Triangle)
}

fn jpeg(img: &RgbImage, q: u8) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, q,
    ))
    .unwrap();
    out
}

fn reencode(img: &RgbImage, q: u8) -> RgbImage {
    image::load_from_memory(&jpeg(img, q)).unwrap().to_rgb8()
}

fn map(img: &RgbImage, f: impl Fn([f64; 3]) -> [f64; 3]) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0.map(f64::from);
        Rgb(f(p).map(|v| v.round().clamp(0.0, 255.0) as u8))
    })
}

/// Glyph-like white strokes along a line (a caption), with a dark outline on half of them.
fn text(img: &mut RgbImage, x0: u32, y0: u32, height: u32, chars: u32, rng: &mut Rng) {
    let stroke = (height / 8).max(2);
    let mut x = x0;
    for _ in 0..chars {
        let w = height * 6 / 10;
        for _ in 0..3 {
            let vertical = rng.unit() < 0.5;
            let (sx, sy, ex, ey) = if vertical {
                let cx = x + (rng.unit() * f64::from(w)) as u32;
                (cx, y0, cx + stroke, y0 + height)
            } else {
                let cy = y0 + (rng.unit() * f64::from(height)) as u32;
                (x, cy, x + w, cy + stroke)
            };
            for yy in sy..ey.min(img.height()) {
                for xx in sx..ex.min(img.width()) {
                    img.put_pixel(xx, yy, Rgb([250, 250, 250]));
                }
            }
        }
        x += w + stroke * 2;
        if x + w >= img.width() {
            break;
        }
    }
}

/// A logo in a corner: a filled disc and a bar in the clinic's colour.
fn logo(img: &mut RgbImage, size: u32) {
    let (w, h) = img.dimensions();
    let (cx, cy) = (w - size, h - size);
    let r = f64::from(size) * 0.4;
    for y in cy.saturating_sub(size / 2)..(cy + size / 2).min(h) {
        for x in cx.saturating_sub(size / 2)..(cx + size / 2).min(w) {
            let d = (f64::from(x) - f64::from(cx)).hypot(f64::from(y) - f64::from(cy));
            if d < r {
                img.put_pixel(x, y, Rgb([20, 110, 160]));
            }
        }
    }
}

/// A translucent diagonal watermark across the frame.
fn watermark(img: &mut RgbImage, alpha: f64) {
    let (w, h) = img.dimensions();
    for y in 0..h {
        for x in 0..w {
            let band = (x + y) % 160;
            if (20..34).contains(&band) {
                let p = img.get_pixel(x, y).0;
                img.put_pixel(
                    x,
                    y,
                    Rgb(p.map(|v| (f64::from(v) * (1.0 - alpha) + 255.0 * alpha) as u8)),
                );
            }
        }
    }
}

fn unsharp(img: &RgbImage, amount: f32) -> RgbImage {
    image::imageops::unsharpen(img, 1.0, 2).pipe(|s| {
        // `unsharpen` applies the full amount; blend for a mild one.
        RgbImage::from_fn(img.width(), img.height(), |x, y| {
            let (a, b) = (img.get_pixel(x, y).0, s.get_pixel(x, y).0);
            Rgb(std::array::from_fn(|k| {
                (f32::from(a[k]) * (1.0 - amount) + f32::from(b[k]) * amount).round() as u8
            }))
        })
    })
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

fn crop(img: &RgbImage, fx: f64, fy: f64, fw: f64, fh: f64) -> RgbImage {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    image::imageops::crop_imm(
        img,
        (fx * w) as u32,
        (fy * h) as u32,
        (fw * w) as u32,
        (fh * h) as u32,
    )
    .to_image()
}

enum Out {
    Jpeg(u8),
    Png,
    WebP,
}

/// A whole-frame tone change of one pixel.
type Tone = fn([f64; 3]) -> [f64; 3];

/// The allowed derivatives of one photo: (category, image, encoding).
fn allowed(img: &RgbImage, rng: &mut Rng) -> Vec<(&'static str, RgbImage, Out)> {
    let mut v: Vec<(&'static str, RgbImage, Out)> = Vec::new();
    for w in [1600, 1440, 1280, 960, 640] {
        let r = resize_w(img, w.min(img.width()));
        for q in [95, 85, 75, 60, 50] {
            v.push(("resize+jpeg", r.clone(), Out::Jpeg(q)));
        }
    }
    let r = resize_w(img, 1280.min(img.width()));
    for (a, b) in [(90, 70), (80, 60), (95, 75), (70, 85)] {
        v.push(("double jpeg", reencode(&r, a), Out::Jpeg(b)));
    }
    for q in [85, 75] {
        for k in 0..3u32 {
            let mut t = r.clone();
            let h = (t.height() / 22).max(12);
            let y = t.height() - h - 12 - k * h * 2;
            text(&mut t, 20 + 40 * k, y, h, 30, rng);
            v.push(("text overlay", t, Out::Jpeg(q)));
        }
        let mut l = r.clone();
        logo(&mut l, r.width() / 8);
        v.push(("logo overlay", l, Out::Jpeg(q)));
        let mut m = r.clone();
        watermark(&mut m, 0.3);
        v.push(("watermark", m, Out::Jpeg(q)));
    }
    let tone: [(&str, Tone); 7] = [
        ("brightness", |p| p.map(|v| v * 1.15)),
        ("brightness", |p| p.map(|v| v * 0.85)),
        ("contrast", |p| p.map(|v| (v - 128.0) * 1.2 + 128.0)),
        ("contrast", |p| p.map(|v| (v - 128.0) * 0.8 + 128.0)),
        ("colour balance", |p| [p[0] * 1.08, p[1], p[2] * 0.93]),
        ("levels", |p| p.map(|v| (v - 10.0) * 255.0 / 230.0)),
        ("levels", |p| p.map(|v| 255.0 * (v / 255.0).powf(0.9))),
    ];
    for (name, f) in tone {
        v.push((name, map(&r, f), Out::Jpeg(85)));
    }
    for (fx, fy, fw, fh) in [
        (0.1, 0.1, 0.8, 0.8),
        (0.0, 0.05, 0.7, 0.9),
        (0.05, 0.0, 0.9, 0.75),
    ] {
        v.push(("crop", crop(&r, fx, fy, fw, fh), Out::Jpeg(85)));
    }
    v.push(("sharpen", unsharp(&r, 0.5), Out::Jpeg(88)));
    v.push(("sharpen", unsharp(&r, 0.3), Out::Jpeg(75)));
    v.push(("png", r.clone(), Out::Png));
    v.push(("webp", r, Out::WebP));
    v
}

/// A feathered blend weight: 1 inside `rect` shrunk by `f`, 0 outside it.
fn weight(rect: [u32; 4], f: f64, x: u32, y: u32) -> f64 {
    let d = [
        f64::from(x) - f64::from(rect[0]),
        f64::from(rect[0] + rect[2]) - f64::from(x),
        f64::from(y) - f64::from(rect[1]),
        f64::from(rect[1] + rect[3]) - f64::from(y),
    ]
    .into_iter()
    .fold(f64::INFINITY, f64::min);
    (d / f).clamp(0.0, 1.0)
}

/// One disallowed local edit of `img` in `rect`.
fn local_edit(img: &RgbImage, kind: &str, rect: [u32; 4], rng: &mut Rng) -> RgbImage {
    let (w, h) = img.dimensions();
    let feather = f64::from(rect[2].min(rect[3])) * 0.2;
    let mut out = img.clone();
    let blend = |out: &mut RgbImage, x: u32, y: u32, c: [f64; 3]| {
        let a = weight(rect, feather, x, y);
        let p = img.get_pixel(x, y).0.map(f64::from);
        out.put_pixel(
            x,
            y,
            Rgb(std::array::from_fn(|k| {
                (p[k] * (1.0 - a) + c[k] * a).round().clamp(0.0, 255.0) as u8
            })),
        );
    };
    // Where a patch is taken from: another place of the frame, away from the target.
    let from = || {
        let dx = if rect[0] > w / 2 {
            -(i64::from(rect[2]) + 40)
        } else {
            i64::from(rect[2]) + 40
        };
        let dy = if rect[1] > h / 2 {
            -(i64::from(rect[3]) / 2)
        } else {
            i64::from(rect[3]) / 2
        };
        (dx, dy)
    };
    let at = |x: i64, y: i64| {
        img.get_pixel(
            x.clamp(0, i64::from(w) - 1) as u32,
            y.clamp(0, i64::from(h) - 1) as u32,
        )
        .0
        .map(f64::from)
    };
    let mean = |r: [u32; 4], dx: i64, dy: i64| {
        let mut s = [0f64; 3];
        let mut n = 0.0;
        for y in r[1]..r[1] + r[3] {
            for x in r[0]..r[0] + r[2] {
                let p = at(i64::from(x) + dx, i64::from(y) + dy);
                for k in 0..3 {
                    s[k] += p[k];
                }
                n += 1.0;
            }
        }
        s.map(|v| v / n)
    };
    match kind {
        "clone stamp" | "healing brush" => {
            let (dx, dy) = from();
            let shift = if kind == "healing brush" {
                let (a, b) = (mean(rect, 0, 0), mean(rect, dx, dy));
                std::array::from_fn(|k| a[k] - b[k])
            } else {
                [0.0; 3]
            };
            for y in rect[1]..rect[1] + rect[3] {
                for x in rect[0]..rect[0] + rect[2] {
                    let p = at(i64::from(x) + dx, i64::from(y) + dy);
                    blend(&mut out, x, y, std::array::from_fn(|k| p[k] + shift[k]));
                }
            }
        }
        "local smoothing" => {
            let r = 4 + (rng.unit() * 5.0) as i64;
            for y in rect[1]..rect[1] + rect[3] {
                for x in rect[0]..rect[0] + rect[2] {
                    let mut s = [0f64; 3];
                    let mut n = 0.0;
                    for yy in -r..=r {
                        for xx in -r..=r {
                            let p = at(i64::from(x) + xx, i64::from(y) + yy);
                            for k in 0..3 {
                                s[k] += p[k];
                            }
                            n += 1.0;
                        }
                    }
                    blend(&mut out, x, y, s.map(|v| v / n));
                }
            }
        }
        "liquify" => {
            let (cx, cy) = (
                f64::from(rect[0]) + f64::from(rect[2]) / 2.0,
                f64::from(rect[1]) + f64::from(rect[3]) / 2.0,
            );
            let rad = f64::from(rect[2].min(rect[3])) / 2.0;
            let amp = rad * (0.12 + 0.08 * rng.unit());
            let angle = rng.unit() * std::f64::consts::TAU;
            for y in rect[1]..rect[1] + rect[3] {
                for x in rect[0]..rect[0] + rect[2] {
                    let d = (f64::from(x) - cx).hypot(f64::from(y) - cy) / rad;
                    if d >= 1.0 {
                        continue;
                    }
                    let s = (1.0 - d * d).powi(2) * amp;
                    let (sx, sy) = (
                        f64::from(x) - s * angle.cos(),
                        f64::from(y) - s * angle.sin(),
                    );
                    let (x0, y0) = (sx.floor(), sy.floor());
                    let (fx, fy) = (sx - x0, sy - y0);
                    let (x0, y0) = (x0 as i64, y0 as i64);
                    let c: [f64; 3] = std::array::from_fn(|k| {
                        (at(x0, y0)[k] * (1.0 - fx) + at(x0 + 1, y0)[k] * fx) * (1.0 - fy)
                            + (at(x0, y0 + 1)[k] * (1.0 - fx) + at(x0 + 1, y0 + 1)[k] * fx) * fy
                    });
                    out.put_pixel(x, y, Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8)));
                }
            }
        }
        _ => {
            // Local colour change: less red (a calmer flush) or more yellow.
            let gain = if rng.unit() < 0.5 {
                [0.86, 1.0, 1.0]
            } else {
                [1.0, 1.0, 0.85]
            };
            for y in rect[1]..rect[1] + rect[3] {
                for x in rect[0]..rect[0] + rect[2] {
                    let p = img.get_pixel(x, y).0.map(f64::from);
                    blend(&mut out, x, y, std::array::from_fn(|k| p[k] * gain[k]));
                }
            }
        }
    }
    out
}

/// Mean luma change (levels) over its rectangle below which an edit shows nothing.
const VISIBLE: f64 = 3.0;
/// Placements tried per edit.
const MAX_TRIES: usize = 8;

/// Mean absolute luma change of `edited` against `base` over `rect`.
fn visible_change(base: &RgbImage, edited: &RgbImage, rect: [u32; 4]) -> f64 {
    let luma =
        |p: &Rgb<u8>| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
    let mut sum = 0.0;
    for y in rect[1]..rect[1] + rect[3] {
        for x in rect[0]..rect[0] + rect[2] {
            sum += (luma(edited.get_pixel(x, y)) - luma(base.get_pixel(x, y))).abs();
        }
    }
    sum / f64::from(rect[2] * rect[3]).max(1.0)
}

const EDITS: [&str; 5] = [
    "clone stamp",
    "healing brush",
    "local smoothing",
    "liquify",
    "local colour",
];

fn write(dir: &Path, name: &str, img: &RgbImage, out: &Out) -> PathBuf {
    // `EDITS_ONLY=a,b`: only the published images whose names contain one of these.
    if let Ok(only) = std::env::var("EDITS_ONLY")
        && !only.split(',').any(|o| name.contains(o))
    {
        return dir.join(name);
    }
    match out {
        Out::Jpeg(q) => {
            let p = dir.join(format!("{name}.jpg"));
            std::fs::write(&p, jpeg(img, *q)).unwrap();
            p
        }
        Out::Png => {
            let p = dir.join(format!("{name}.png"));
            img.save(&p).unwrap();
            p
        }
        Out::WebP => {
            let p = dir.join(format!("{name}.webp"));
            img.save(&p).unwrap();
            p
        }
    }
}

fn overlaps(a: [u32; 4], b: [u32; 4]) -> bool {
    a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3]
}

#[derive(Default)]
struct Tally {
    n: usize,
    unmatched: usize,
    flagged: usize,
    warned: usize,
    located: usize,
    located_fail: usize,
}

impl Tally {
    /// The tallies of every category together.
    fn all<'a>(tallies: impl Iterator<Item = &'a Tally>) -> Tally {
        let mut sum = Tally::default();
        for t in tallies {
            sum.n += t.n;
            sum.unmatched += t.unmatched;
            sum.flagged += t.flagged;
            sum.warned += t.warned;
            sum.located += t.located;
            sum.located_fail += t.located_fail;
        }
        sum
    }

    /// A share of the matched images, in percent.
    fn pct(&self, count: usize) -> f64 {
        100.0 * count as f64 / (self.n - self.unmatched).max(1) as f64
    }

    /// A line of the allowed derivatives' table.
    fn allowed_row(&self, name: &str) -> String {
        format!(
            "  {name:<16} {:>4} images, {:>3} unmatched, {:>3} with a fail ({:.1} %), {:>3} with only a warning ({:.1} %)",
            self.n,
            self.unmatched,
            self.flagged,
            self.pct(self.flagged),
            self.warned,
            self.pct(self.warned)
        )
    }

    /// A line of the local edits' table.
    fn edit_row(&self, name: &str) -> String {
        format!(
            "  {name:<16} {:>4} images, {:>3} unmatched, found {:.1} %, located {:.1} % (as a fail {:.1} %)",
            self.n,
            self.unmatched,
            self.pct(self.flagged),
            self.pct(self.located),
            self.pct(self.located_fail)
        )
    }
}

fn main() {
    let root = common::work_dir("edits");
    let _ = std::fs::remove_dir_all(&root);
    let dir = common::work_dir("edits");
    let published = dir.join("published");
    std::fs::create_dir_all(&published).unwrap();
    let store = common::new_embedded_store(&dir.join("store"), &dir.join("store.key"));
    let mut rng = Rng(2020);
    let (mut retried, mut invisible) = (0usize, 0usize);
    // (file stem) -> (category, allowed?, truth rectangle in published pixels)
    let mut truth: BTreeMap<String, (String, bool, Option<[u32; 4]>)> = BTreeMap::new();
    for (i, (name, img)) in photos().iter().enumerate() {
        let reference = format!("E{i}");
        store.add_patient(&reference, None).unwrap();
        let consent = store
            .grant_consent(NewConsent {
                identifiable: false,
                patient_ref: &reference,
                scopes: vec![Scope::Clinical, Scope::Publication],
                signed_by: "patient",
                signed_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
                expires_on: None,
                document: None,
            })
            .unwrap()
            .id;
        let bytes = jpeg(img, 95);
        let req = ImportRequest::new(&bytes, "x", &reference, &consent, Area::Face, View::Frontal);
        store.import_capture(req).unwrap();
        // The clinic publishes from the capture it keeps: its decoded pixels.
        let img = &image::load_from_memory(&bytes).unwrap().to_rgb8();
        for (k, (cat, d, out)) in allowed(img, &mut rng).into_iter().enumerate() {
            let stem = format!("{name}-a{k:02}");
            write(&published, &stem, &d, &out);
            truth.insert(stem, (cat.to_string(), true, None));
        }
        // Local edits on the photo at 1280 px wide, published at JPEG 85.
        let base = resize_w(img, 1280.min(img.width()));
        let (w, h) = base.dimensions();
        for (k, kind) in EDITS.iter().cycle().take(35).enumerate() {
            // A retoucher edits what shows: a placement whose edit changes nothing visible
            // (black cloned onto black) is tried again elsewhere.
            let (rect, edited, tries) = (1..=MAX_TRIES)
                .map(|tries| {
                    let side = (f64::from(w) * rng.range(0.07, 0.13)) as u32;
                    let rect = [
                        (f64::from(w - side) * rng.range(0.2, 0.8)) as u32,
                        (f64::from(h - side) * rng.range(0.2, 0.8)) as u32,
                        side,
                        (f64::from(side) * rng.range(0.7, 1.3)) as u32,
                    ];
                    let rect = [rect[0], rect[1], rect[2], rect[3].min(h - rect[1] - 1)];
                    (rect, local_edit(&base, kind, rect, &mut rng), tries)
                })
                .find(|(rect, edited, tries)| {
                    *tries == MAX_TRIES || visible_change(&base, edited, *rect) >= VISIBLE
                })
                .unwrap();
            retried += tries - 1;
            if visible_change(&base, &edited, rect) < VISIBLE {
                invisible += 1;
            }
            let stem = format!("{name}-e{k:02}");
            write(&published, &stem, &edited, &Out::Jpeg(85));
            truth.insert(stem, (kind.to_string(), false, Some(rect)));
        }
    }
    eprintln!("reviewing {} published images …", truth.len());
    println!(
        "local edits placed again because they changed their rectangle by < {VISIBLE} levels: \
         {retried}; still invisible after {MAX_TRIES} tries: {invisible}"
    );
    let t = std::time::Instant::now();
    let review = store
        .review(
            &[published],
            None,
            &ReviewOptions {
                third_party: false,
                provenance: None,
            },
            &|_, _| {},
        )
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let mut allowed_t: BTreeMap<String, Tally> = BTreeMap::new();
    let mut edits_t: BTreeMap<String, Tally> = BTreeMap::new();
    let mut false_fails = Vec::new();
    let mut details = String::new();
    for img in &review.images {
        let stem = Path::new(&img.file)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let Some((cat, ok, rect)) = truth.get(&stem) else {
            continue;
        };
        let tally = if *ok {
            allowed_t.entry(cat.clone()).or_default()
        } else {
            edits_t.entry(cat.clone()).or_default()
        };
        tally.n += 1;
        if img.sources.is_empty() {
            tally.unmatched += 1;
            continue;
        }
        let local: Vec<_> = edit_boxes(img);
        details.push_str(&format!(
            "{stem}\t{cat}\t{rect:?}\t{:?}\n",
            img.edits
                .iter()
                .map(|e| (&e.kind, e.severity, e.bbox, e.evidence))
                .collect::<Vec<_>>()
        ));
        if *ok {
            if local.iter().any(|(_, s)| *s == Severity::Fail) {
                tally.flagged += 1;
                false_fails.push(format!("{stem} ({cat}): {:?}", local));
            } else if local.iter().any(|(_, s)| *s == Severity::Warn) {
                tally.warned += 1;
            }
        } else {
            let r = rect.unwrap();
            if local.iter().any(|(_, s)| *s >= Severity::Warn) {
                tally.flagged += 1;
            }
            if local
                .iter()
                .any(|(b, s)| *s >= Severity::Warn && overlaps(*b, r))
            {
                tally.located += 1;
            }
            if local
                .iter()
                .any(|(b, s)| *s == Severity::Fail && overlaps(*b, r))
            {
                tally.located_fail += 1;
            }
        }
    }
    std::fs::write(dir.join("details.tsv"), details).unwrap();
    report(
        &allowed_t,
        &edits_t,
        &false_fails,
        secs,
        review.images.len(),
    );
}

/// The local-edit boxes of a report (smoothing and local change; overlays are allowed).
fn edit_boxes(img: &ImageReport) -> Vec<([u32; 4], Severity)> {
    img.edits
        .iter()
        .filter(|e| e.kind != "overlay")
        .map(|e| (e.bbox, e.severity))
        .collect()
}

fn report(
    allowed_t: &BTreeMap<String, Tally>,
    edits_t: &BTreeMap<String, Tally>,
    false_fails: &[String],
    secs: f64,
    n: usize,
) {
    println!("\nallowed derivatives: any `fail` edit finding (bar ≤ 1 %)");
    for (cat, t) in allowed_t {
        println!("{}", t.allowed_row(cat));
    }
    println!("{}", Tally::all(allowed_t.values()).allowed_row("all"));
    println!(
        "\nlocal edits: found (warn or fail) and located (a box overlapping the truth) (bar ≥ 90 %)"
    );
    for (cat, t) in edits_t {
        println!("{}", t.edit_row(cat));
    }
    println!("{}", Tally::all(edits_t.values()).edit_row("all"));
    println!("\nreviewed {n} images in {secs:.1} s");
    for f in false_fails.iter().take(12) {
        println!("  false fail: {f}");
    }
    common::save_summary(
        "edits",
        &serde_json::json!({
            "allowed": allowed_t.iter().map(|(k, t)| (k.clone(), serde_json::json!({"n": t.n, "unmatched": t.unmatched, "fail": t.flagged}))).collect::<serde_json::Map<_, _>>(),
            "edits": edits_t.iter().map(|(k, t)| (k.clone(), serde_json::json!({"n": t.n, "unmatched": t.unmatched, "found": t.flagged, "located": t.located, "located_as_fail": t.located_fail}))).collect::<serde_json::Map<_, _>>(),
            "seconds": secs,
        }),
    );
}
