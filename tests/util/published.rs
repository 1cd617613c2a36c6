//! Generators for the review tests: patients' before/after photos that differ as real sessions
//! do, published derivatives of them, and unrelated images.

use image::{Rgb, RgbImage};
use sameframe::testkit::{Rng, warp_similarity};

pub fn fixture(name: &str) -> RgbImage {
    image::open(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .to_rgb8()
}

pub fn resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
}

pub fn jpeg(img: &RgbImage, q: u8) -> Vec<u8> {
    let mut v = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut v, q,
    ))
    .unwrap();
    v
}

pub fn reencode(img: &RgbImage, q: u8) -> RgbImage {
    image::load_from_memory(&jpeg(img, q)).unwrap().to_rgb8()
}

/// A patient's scene: a texture made unique by a seeded pattern of soft marks (freckles,
/// moles, hair), 1200×900.
pub fn scene(texture: &str, seed: u64) -> RgbImage {
    let base = resize(&fixture(texture), 1200, 900);
    let mut rng = Rng(seed);
    let marks: Vec<(f64, f64, f64, [f64; 3])> = (0..60)
        .map(|_| {
            (
                rng.range(0.0, 1200.0),
                rng.range(0.0, 900.0),
                rng.range(3.0, 14.0),
                [
                    rng.range(-70.0, 70.0),
                    rng.range(-70.0, 70.0),
                    rng.range(-70.0, 70.0),
                ],
            )
        })
        .collect();
    RgbImage::from_fn(1200, 900, |x, y| {
        let mut p = base.get_pixel(x, y).0.map(f64::from);
        for (mx, my, r, d) in &marks {
            let d2 = ((f64::from(x) - mx).powi(2) + (f64::from(y) - my).powi(2)) / (r * r);
            if d2 < 4.0 {
                let a = (-d2).exp();
                for k in 0..3 {
                    p[k] += d[k] * a;
                }
            }
        }
        Rgb(p.map(|v| v.round().clamp(0.0, 255.0) as u8))
    })
}

/// The wobble of a new sitting (see `later_session`), in preview pixels.
const AMP: f64 = 1.0;
const PERIOD: f64 = 30.0;

/// The same scene at a later session: re-framed slightly, lit from another side, with some
/// marks changed (the treatment, the skin's own changes) and fresh sensor noise.
pub fn later_session(scene_img: &RgbImage, seed: u64) -> RgbImage {
    let mut rng = Rng(seed);
    let moved = warp_similarity(
        scene_img,
        rng.range(-12.0, 12.0),
        rng.range(-8.0, 8.0),
        rng.range(-1.5, 1.5),
        rng.range(0.98, 1.03),
        [40, 40, 40],
    );
    let (w, h) = moved.dimensions();
    let changes: Vec<(f64, f64, f64, f64)> = (0..8)
        .map(|_| {
            (
                rng.range(0.0, f64::from(w)),
                rng.range(0.0, f64::from(h)),
                rng.range(30.0, 70.0),
                rng.range(-40.0, 40.0),
            )
        })
        .collect();
    let light = rng.range(-0.18, 0.18);
    let mut noise = Rng(seed ^ 0x77);
    // A new sitting is not the old photo moved: skin, hair and cloth sit a little differently
    // everywhere, so the fine detail is out of register by a pixel or two (a smooth wobble),
    // as in real sessions (see `analysis::copy_check`). In the pixels of a 512-px preview,
    // where the copy check looks: AMP px, with a period of about PERIOD px.
    let phase = [rng.range(0.0, 6.3), rng.range(0.0, 6.3)];
    let k = f64::from(w.max(h)) / 512.0;
    let wobble = |x: f64, y: f64| {
        (
            x + AMP * k * (y / (PERIOD / 6.3 * k) + phase[0]).sin(),
            y + AMP * k * (x / (PERIOD / 6.3 * k) + phase[1]).sin(),
        )
    };
    let at = |x: f64, y: f64| -> [f64; 3] {
        let (x, y) = (
            x.clamp(0.0, f64::from(w - 1)),
            y.clamp(0.0, f64::from(h - 1)),
        );
        let (x0, y0) = (x.floor() as u32, y.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (x - f64::from(x0), y - f64::from(y0));
        let p = |xx, yy| moved.get_pixel(xx, yy).0.map(f64::from);
        let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
        std::array::from_fn(|k| {
            (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy
        })
    };
    RgbImage::from_fn(w, h, |x, y| {
        let (sx, sy) = wobble(f64::from(x), f64::from(y));
        let p = at(sx, sy);
        let g = 1.0 + light * (f64::from(x) / f64::from(w) - 0.5) * 2.0;
        let mut local = 0.0;
        for (cx, cy, r, d) in &changes {
            let d2 = ((f64::from(x) - cx).powi(2) + (f64::from(y) - cy).powi(2)) / (r * r);
            local += d * (-d2).exp();
        }
        Rgb([0, 1, 2].map(|k| {
            (p[k] * g * [1.03, 1.0, 0.96][k] + local + noise.gauss() * 2.0)
                .round()
                .clamp(0.0, 255.0) as u8
        }))
    })
}

/// Brightness scaled by `k`.
pub fn brightness(img: &RgbImage, k: f64) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        Rgb(img
            .get_pixel(x, y)
            .0
            .map(|v| (f64::from(v) * k).round().clamp(0.0, 255.0) as u8))
    })
}

/// A crop of `frac_w` × `frac_h` of the image at a relative offset.
pub fn crop(img: &RgbImage, frac_w: f64, frac_h: f64, off_x: f64, off_y: f64) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cw, ch) = (
        (f64::from(w) * frac_w) as u32,
        (f64::from(h) * frac_h) as u32,
    );
    let (x, y) = (
        ((f64::from(w - cw)) * off_x) as u32,
        ((f64::from(h - ch)) * off_y) as u32,
    );
    image::imageops::crop_imm(img, x, y, cw, ch).to_image()
}

/// A watermark: a semi-transparent logo block and a line of "text" near a corner.
pub fn watermark(img: &RgbImage, seed: u64) -> RgbImage {
    let mut out = img.clone();
    let (w, h) = out.dimensions();
    let mut rng = Rng(seed);
    let (x0, y0) = (
        (f64::from(w) * rng.range(0.55, 0.7)) as u32,
        (f64::from(h) * rng.range(0.8, 0.88)) as u32,
    );
    for y in y0..(y0 + h / 14).min(h) {
        for x in x0..(x0 + w / 4).min(w) {
            // Glyph-like strokes.
            let on = (x / 3 + y / 5).is_multiple_of(4) || (x / 7).is_multiple_of(3);
            let p = out.get_pixel_mut(x, y);
            let a = if on { 0.55 } else { 0.15 };
            *p = Rgb(p.0.map(|v| (f64::from(v) * (1.0 - a) + 255.0 * a) as u8));
        }
    }
    out
}

/// Write a caption-like label block ("BEFORE"/"AFTER") into a panel.
pub fn label(img: &mut RgbImage, x: u32, y: u32) {
    for yy in y..(y + 28).min(img.height()) {
        for xx in x..(x + 110).min(img.width()) {
            let on = (xx - x) % 14 < 9
                && (yy - y) > 5
                && (yy - y) < 22
                && ((xx - x) / 14 + (yy - y) / 4).is_multiple_of(2);
            img.put_pixel(
                xx,
                yy,
                if on {
                    Rgb([20, 20, 20])
                } else {
                    Rgb([250, 250, 250])
                },
            );
        }
    }
}

/// Before and after side by side (`vertical` stacks them), with a gutter of `gutter` px.
pub fn composite(
    before: &RgbImage,
    after: &RgbImage,
    side: u32,
    gutter: u32,
    vertical: bool,
    labels: bool,
) -> RgbImage {
    let a = resize(before, side, side * before.height() / before.width());
    let b = resize(after, side, side * after.height() / after.width());
    let (w, h) = if vertical {
        (side, a.height() + b.height() + gutter)
    } else {
        (2 * side + gutter, a.height().max(b.height()))
    };
    let mut out = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    image::imageops::replace(&mut out, &a, 0, 0);
    if vertical {
        image::imageops::replace(&mut out, &b, 0, i64::from(a.height() + gutter));
    } else {
        image::imageops::replace(&mut out, &b, i64::from(side + gutter), 0);
    }
    if labels {
        label(&mut out, 8, 8);
        if vertical {
            label(&mut out, 8, a.height() + gutter + 8);
        } else {
            label(&mut out, side + gutter + 8, 8);
        }
    }
    out
}

/// An image that has nothing to do with any capture.
pub fn unrelated(i: u64) -> RgbImage {
    let mut rng = Rng(9000 + i);
    match i % 4 {
        0 => {
            let refl = sameframe::testkit::background(320, 240, 5000 + i);
            sameframe::testkit::expose(
                320,
                240,
                &refl,
                &sameframe::testkit::Exposure {
                    noise: 3.0,
                    seed: i,
                    ..Default::default()
                },
            )
        }
        1 => {
            let tex = [
                "textures/grass.jpg",
                "textures/gravel.jpg",
                "textures/hubble_deep_field.jpg",
                "textures/retina.jpg",
                "textures/camera.jpg",
            ][(i / 4 % 5) as usize];
            let img = fixture(tex);
            let c = crop(
                &img,
                rng.range(0.5, 0.9),
                rng.range(0.5, 0.9),
                rng.unit(),
                rng.unit(),
            );
            resize(&c, 320, 240)
        }
        2 => RgbImage::from_fn(300, 200, |x, y| {
            let v = ((f64::from(x) * rng.range(0.02, 0.1)).sin() * 60.0
                + (f64::from(y) * 0.05).cos() * 40.0
                + 120.0) as u8;
            Rgb([v, v.wrapping_add((i * 13) as u8), 255 - v])
        }),
        _ => {
            let tex = [
                "textures/grass.jpg",
                "textures/gravel.jpg",
                "textures/retina.jpg",
                "textures/camera.jpg",
            ][(i / 4 % 4) as usize];
            let img = fixture(tex);
            let r = warp_similarity(
                &resize(&img, 320, 320),
                rng.range(-30.0, 30.0),
                rng.range(-30.0, 30.0),
                rng.range(-30.0, 30.0),
                rng.range(0.7, 1.4),
                [0, 0, 0],
            );
            brightness(&r, rng.range(0.7, 1.3))
        }
    }
}
