//! Perceptual fingerprints of captures: a DCT hash (pHash) and a gradient hash (dHash) of the
//! whole frame, robust to resizing, re-encoding and brightness; plus a compact set of
//! rotation-steered binary keypoint descriptors, robust to crops, aspect changes, overlays and
//! composites, used both to retrieve candidates and to verify them geometrically.

use image::{GrayImage, RgbImage};

use crate::analysis::pose::features::{self, Descriptor, Features, Keypoint, Pyramid};

/// Bumped when the fingerprint recipe changes (older rows are recomputed by backfill).
/// Version 2 keeps 160 keypoints for verification (version 1 kept the 48 the index uses);
/// version 3 describes them upright (unsteered), as published images are.
pub const VERSION: i64 = 3;
/// Keypoints kept per capture: all of them verify a candidate.
pub const CAPTURE_KEYPOINTS: usize = 160;
/// The first keypoints of each capture, spread over the frame and the pyramid, go into the
/// index; retrieval needs only a few of them to hit (a crop keeps some of them),
/// verification then uses all of [`CAPTURE_KEYPOINTS`]. (Schema migration 7 keeps a compact
/// copy of exactly these; a change here needs a migration that rewrites it.)
pub const INDEX_KEYPOINTS: usize = 48;
/// Long side of the image fingerprints are computed on.
pub const SIDE: u32 = 512;
/// Long side of the reduced preview a candidate's pixels are verified on.
pub const VERIFY_SIDE: u32 = 128;

/// The capture side's pyramid: full preview resolution, three levels.
pub const CAPTURE_PYRAMID: Pyramid = Pyramid {
    base_scale: 1.0,
    shares: &[0.5, 0.3, 0.2],
    steered: false,
};

/// A fingerprint.
#[derive(Clone, Debug)]
pub struct Fingerprint {
    pub phash: u64,
    pub dhash: u64,
    /// Size of the image the keypoints are measured on.
    pub width: u32,
    pub height: u32,
    pub keypoints: Vec<Keypoint>,
    pub descriptors: Vec<Descriptor>,
}

/// Luma (Rec. 709 weights, as `image`'s `to_luma8`) of an RGB image.
pub fn luma(img: &RgbImage) -> GrayImage {
    let raw: Vec<u8> = img
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            ((54 * u32::from(p[0]) + 183 * u32::from(p[1]) + 19 * u32::from(p[2]) + 128) >> 8) as u8
        })
        .collect();
    GrayImage::from_raw(img.width(), img.height(), raw)
        .unwrap_or_else(|| GrayImage::new(img.width(), img.height()))
}

pub use crate::analysis::frame::{fit_within, resize_rgb};

/// Reduce to `nw × nh` by averaging the source pixels whose centres fall in each output
/// pixel (every source pixel counts once; enlarging repeats pixels).
pub fn area_resize(gray: &GrayImage, nw: u32, nh: u32) -> GrayImage {
    let (w, h) = gray.dimensions();
    if w == 0 || h == 0 || nw == 0 || nh == 0 {
        return GrayImage::new(nw, nh);
    }
    let span = |i: u32, n: u32, len: u32| {
        let a = (u64::from(i) * u64::from(len) / u64::from(n)) as u32;
        let b = ((u64::from(i + 1) * u64::from(len) / u64::from(n)) as u32).max(a + 1);
        (a.min(len - 1), b.min(len))
    };
    let cols: Vec<(u32, u32)> = (0..nw).map(|x| span(x, nw, w)).collect();
    let raw = gray.as_raw();
    let mut out = Vec::with_capacity((nw * nh) as usize);
    let mut acc = vec![0u32; nw as usize];
    for y in 0..nh {
        let (y0, y1) = span(y, nh, h);
        acc.iter_mut().for_each(|a| *a = 0);
        for yy in y0..y1 {
            let row = &raw[(yy * w) as usize..((yy + 1) * w) as usize];
            for (a, &(x0, x1)) in acc.iter_mut().zip(&cols) {
                *a += row[x0 as usize..x1 as usize]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum::<u32>();
            }
        }
        for (a, &(x0, x1)) in acc.iter().zip(&cols) {
            let n = (x1 - x0) * (y1 - y0);
            out.push(((a + n / 2) / n) as u8);
        }
    }
    GrayImage::from_raw(nw, nh, out).unwrap_or_else(|| GrayImage::new(nw, nh))
}

/// 64-bit DCT hash: the signs of the 8×8 lowest frequencies of the 32×32 luma against their
/// median.
pub fn phash(gray: &GrayImage) -> u64 {
    let small = area_resize(gray, 32, 32);
    let px: Vec<f64> = small.as_raw().iter().map(|&v| f64::from(v)).collect();
    let cos: Vec<f64> = (0..8 * 32)
        .map(|i| {
            let (u, x) = (i / 32, i % 32);
            (std::f64::consts::PI * (2 * x + 1) as f64 * u as f64 / 64.0).cos()
        })
        .collect();
    // Rows then columns, only the 8 lowest frequencies each way.
    let mut rows = vec![0f64; 32 * 8];
    for y in 0..32 {
        for u in 0..8 {
            rows[y * 8 + u] = (0..32).map(|x| px[y * 32 + x] * cos[u * 32 + x]).sum();
        }
    }
    let mut coef = [0f64; 64];
    for v in 0..8 {
        for u in 0..8 {
            coef[v * 8 + u] = (0..32).map(|y| rows[y * 8 + u] * cos[v * 32 + y]).sum();
        }
    }
    let mut ac: Vec<f64> = coef[1..].to_vec();
    ac.sort_by(f64::total_cmp);
    let median = (ac[31] + ac[32]) / 2.0;
    coef.iter()
        .enumerate()
        .fold(0u64, |h, (i, &c)| if c > median { h | (1 << i) } else { h })
}

/// 64-bit gradient hash: left-to-right brightness steps of a 9×8 luma.
pub fn dhash(gray: &GrayImage) -> u64 {
    let small = area_resize(gray, 9, 8);
    let mut h = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            if small.get_pixel(x, y).0[0] < small.get_pixel(x + 1, y).0[0] {
                h |= 1 << (y * 8 + x);
            }
        }
    }
    h
}

/// Hamming distance of two 64-bit hashes.
pub fn hamming64(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

impl Fingerprint {
    /// Fingerprint an upright image (reduced to [`SIDE`] first).
    pub fn of(img: &RgbImage) -> Self {
        let img = fit_within(img, SIDE);
        let gray = luma(&img);
        let all = |_: f32, _: f32| true;
        // The indexed keypoints are spread over the frame and the pyramid as the extractor
        // spreads them (a crop keeps some of them); the rest follow, as spread, up to
        // CAPTURE_KEYPOINTS.
        let indexed = features::extract_with(&gray, INDEX_KEYPOINTS, &all, &CAPTURE_PYRAMID);
        let more = features::extract_with(&gray, CAPTURE_KEYPOINTS, &all, &CAPTURE_PYRAMID);
        let feats = spread_first(indexed, more, CAPTURE_KEYPOINTS);
        Fingerprint {
            phash: phash(&gray),
            dhash: dhash(&gray),
            width: img.width(),
            height: img.height(),
            keypoints: feats.keypoints,
            descriptors: feats.descriptors,
        }
    }

    /// The keypoints and descriptors as `Features`.
    pub fn features(&self) -> Features {
        Features {
            keypoints: self.keypoints.clone(),
            descriptors: self.descriptors.clone(),
        }
    }

    /// The stored form: (keypoints, descriptors) as little-endian bytes.
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let mut kp = Vec::with_capacity(self.keypoints.len() * 8);
        for k in &self.keypoints {
            kp.extend_from_slice(&((k.x * 8.0).round().clamp(0.0, 65535.0) as u16).to_le_bytes());
            kp.extend_from_slice(&((k.y * 8.0).round().clamp(0.0, 65535.0) as u16).to_le_bytes());
            kp.push(k.level);
            let a = (k.angle.rem_euclid(std::f32::consts::TAU) / std::f32::consts::TAU * 256.0)
                as u32
                % 256;
            kp.push(a as u8);
            kp.extend_from_slice(&0u16.to_le_bytes());
        }
        let mut ds = Vec::with_capacity(self.descriptors.len() * 32);
        for d in &self.descriptors {
            for w in d {
                ds.extend_from_slice(&w.to_le_bytes());
            }
        }
        (kp, ds)
    }

    /// The inverse of [`Fingerprint::encode`] (keypoint responses are not stored).
    pub fn decode(phash: i64, dhash: i64, width: u32, height: u32, kp: &[u8], ds: &[u8]) -> Self {
        Fingerprint {
            phash: phash as u64,
            dhash: dhash as u64,
            width,
            height,
            keypoints: kp.chunks_exact(8).map(keypoint_from).collect(),
            descriptors: ds.chunks_exact(32).map(descriptor_from).collect(),
        }
    }
}

/// A keypoint's position from its stored bytes (see [`Fingerprint::encode`]).
pub fn position_from(c: &[u8]) -> [f32; 2] {
    let at = |i: usize| f32::from(u16::from_le_bytes([c[i], c[i + 1]])) / 8.0;
    [at(0), at(2)]
}

/// A keypoint from its 8 stored bytes.
fn keypoint_from(c: &[u8]) -> Keypoint {
    let [x, y] = position_from(c);
    Keypoint {
        x,
        y,
        level: c[4],
        angle: f32::from(c[5]) / 256.0 * std::f32::consts::TAU,
        response: 0.0,
    }
}

/// A descriptor from its 32 stored bytes.
pub fn descriptor_from(c: &[u8]) -> Descriptor {
    std::array::from_fn(|w| u64::from_le_bytes(c[w * 8..w * 8 + 8].try_into().unwrap_or([0; 8])))
}

/// A preview JPEG decoded at about [`VERIFY_SIDE`] on its long side (DCT scaling), as luma.
/// Previews are the store's own small JPEGs: their decode holds a few megabytes.
pub fn small_preview_of_jpeg(jpeg: &[u8]) -> Result<GrayImage, String> {
    crate::ingest::decode_jpeg_scaled(jpeg, VERIFY_SIDE, 64 << 20).map(|i| i.to_luma8())
}

/// A reduced preview as stored: width and height (little-endian `u16`), then the luma rows.
pub fn encode_small(g: &GrayImage) -> Vec<u8> {
    let dim = |v: u32| u16::try_from(v).unwrap_or(0).to_le_bytes();
    let mut out = Vec::with_capacity(4 + g.as_raw().len());
    out.extend(dim(g.width()));
    out.extend(dim(g.height()));
    out.extend(g.as_raw());
    out
}

/// The inverse of [`encode_small`]; `None` when the bytes do not hold what they claim.
pub fn decode_small(bytes: &[u8]) -> Option<GrayImage> {
    let dim = |at: usize| {
        Some(u32::from(u16::from_le_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    let (w, h) = (dim(0)?, dim(2)?);
    let px = bytes.get(4..)?;
    (px.len() as u64 == u64::from(w) * u64::from(h))
        .then(|| GrayImage::from_raw(w, h, px.to_vec()))?
}

/// `first`, then the keypoints of `more` it does not already have, up to `n` in all.
fn spread_first(first: Features, more: Features, n: usize) -> Features {
    let mut out = first;
    for (k, d) in more.keypoints.into_iter().zip(more.descriptors) {
        if out.keypoints.len() >= n {
            break;
        }
        let dup = out
            .keypoints
            .iter()
            .any(|o| o.level == k.level && o.x == k.x && o.y == k.y);
        if !dup {
            out.keypoints.push(k);
            out.descriptors.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texture() -> RgbImage {
        image::load_from_memory(include_bytes!("../../../../fixtures/textures/chelsea.jpg"))
            .unwrap()
            .to_rgb8()
    }

    #[test]
    fn hashes_survive_resize_brightness_and_jpeg() {
        let img = texture();
        let f = Fingerprint::of(&img);
        let small = image::imageops::resize(&img, 200, 133, image::imageops::FilterType::Triangle);
        let darker = RgbImage::from_fn(img.width(), img.height(), |x, y| {
            image::Rgb(img.get_pixel(x, y).0.map(|v| (f32::from(v) * 0.8) as u8))
        });
        for other in [small, darker] {
            let g = Fingerprint::of(&other);
            assert!(
                hamming64(f.phash, g.phash) <= 6,
                "phash {}",
                hamming64(f.phash, g.phash)
            );
            assert!(
                hamming64(f.dhash, g.dhash) <= 8,
                "dhash {}",
                hamming64(f.dhash, g.dhash)
            );
        }
        let unrelated = Fingerprint::of(
            &image::load_from_memory(include_bytes!("../../../../fixtures/textures/rocket.jpg"))
                .unwrap()
                .to_rgb8(),
        );
        assert!(hamming64(f.phash, unrelated.phash) > 16);
    }

    #[test]
    fn encoding_round_trips() {
        let f = Fingerprint::of(&texture());
        assert!(f.keypoints.len() >= 30, "{}", f.keypoints.len());
        let (kp, ds) = f.encode();
        let g = Fingerprint::decode(f.phash as i64, f.dhash as i64, f.width, f.height, &kp, &ds);
        assert_eq!(g.descriptors, f.descriptors);
        assert_eq!((g.phash, g.dhash), (f.phash, f.dhash));
        for (a, b) in f.keypoints.iter().zip(&g.keypoints) {
            assert!((a.x - b.x).abs() < 0.07 && (a.y - b.y).abs() < 0.07 && a.level == b.level);
        }
    }
}
