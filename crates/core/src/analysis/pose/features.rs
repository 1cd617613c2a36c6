//! Oriented FAST corners and rotation-steered binary descriptors (rBRIEF) over a small image
//! pyramid, and Hamming matching with a ratio test.
//!
//! imageproc's BRIEF is not steered, so the test pattern here is rotated per keypoint (30
//! precomputed orientations, 12° apart); descriptors are sampled on a box-smoothed image.

use std::sync::OnceLock;

use image::GrayImage;

/// Pyramid scale step between levels.
pub const LEVEL_SCALE: f32 = 1.25;
/// Half-size of the descriptor patch.
const PATCH: i32 = 15;
/// Keypoints closer than this to the border are dropped.
const BORDER: u32 = 20;
const ANGLE_BINS: usize = 30;

/// A keypoint in level-0 working coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    pub level: u8,
    /// Orientation in radians (y down, atan2 of the intensity centroid).
    pub angle: f32,
    pub response: f32,
}

/// A 256-bit descriptor.
pub type Descriptor = [u64; 4];

/// Keypoints and descriptors of one image.
#[derive(Clone, Debug, Default)]
pub struct Features {
    pub keypoints: Vec<Keypoint>,
    pub descriptors: Vec<Descriptor>,
}

/// Bresenham circle of radius 3 used by FAST.
const CIRCLE: [(i32, i32); 16] = [
    (0, -3),
    (1, -3),
    (2, -2),
    (3, -1),
    (3, 0),
    (3, 1),
    (2, 2),
    (1, 3),
    (0, 3),
    (-1, 3),
    (-2, 2),
    (-3, 1),
    (-3, 0),
    (-3, -1),
    (-2, -2),
    (-1, -3),
];

/// 256 test pairs `(x1, y1, x2, y2)` of one orientation bin.
type Pattern = [(i8, i8, i8, i8); 256];

/// The BRIEF test pairs, rotated into each orientation bin.
///
/// The pairs are learned (as ORB's rBRIEF): among thousands of random pairs, those whose
/// outcome is closest to a fair coin on steered patches of real images and least correlated
/// with the pairs already chosen. Random pairs are not good enough: after steering, many tests
/// are nearly constant (the patch is always brighter toward its orientation), which makes
/// descriptors of unrelated points look alike. Regenerate with
/// `cargo test --lib learn_pattern -- --ignored`.
fn patterns() -> &'static Vec<Pattern> {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| {
        (0..ANGLE_BINS)
            .map(|b| {
                let a = b as f64 * std::f64::consts::TAU / ANGLE_BINS as f64;
                let (c, s) = (a.cos(), a.sin());
                let rot = |x: i8, y: i8| {
                    let (x, y) = (f64::from(x), f64::from(y));
                    ((c * x - s * y).round() as i8, (s * x + c * y).round() as i8)
                };
                std::array::from_fn(|i| {
                    let (x1, y1, x2, y2) = super::pattern::LEARNED[i];
                    let (a1, b1) = rot(x1, y1);
                    let (a2, b2) = rot(x2, y2);
                    (a1, b1, a2, b2)
                })
            })
            .collect()
    })
}

/// Resample by `1 / scale` with bilinear sampling (no prefilter: pyramid levels are 1.25×
/// apart, and larger reductions box-filter first).
pub fn resize(img: &GrayImage, scale: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = (
        ((w as f32 / scale).round() as u32).max(1),
        ((h as f32 / scale).round() as u32).max(1),
    );
    let src = img.as_raw();
    let wu = w as usize;
    // Per output column: the two source columns and the weight of the second (8-bit fixed
    // point), computed once.
    let cols: Vec<(usize, usize, u32)> = (0..nw as usize)
        .map(|x| {
            let sx = ((x as f32 + 0.5) * scale - 0.5).clamp(0.0, (w - 1) as f32);
            let x0 = sx as usize;
            (
                x0,
                (x0 + 1).min(wu - 1),
                ((sx - x0 as f32) * 256.0).round() as u32,
            )
        })
        .collect();
    let mut out = vec![0u8; (nw * nh) as usize];
    let mut row = vec![0u32; nw as usize];
    for (y, out_row) in out.chunks_exact_mut(nw as usize).enumerate() {
        let sy = ((y as f32 + 0.5) * scale - 0.5).clamp(0.0, (h - 1) as f32);
        let y0 = sy as usize;
        let y1 = (y0 + 1).min(h as usize - 1);
        let fy = ((sy - y0 as f32) * 256.0).round() as u32;
        let (r0, r1) = (&src[y0 * wu..(y0 + 1) * wu], &src[y1 * wu..(y1 + 1) * wu]);
        for (v, &(x0, x1, fx)) in row.iter_mut().zip(&cols) {
            let top = u32::from(r0[x0]) * (256 - fx) + u32::from(r0[x1]) * fx;
            let bottom = u32::from(r1[x0]) * (256 - fx) + u32::from(r1[x1]) * fx;
            *v = top * (256 - fy) + bottom * fy;
        }
        for (o, &v) in out_row.iter_mut().zip(&row) {
            *o = ((v + (1 << 15)) >> 16) as u8;
        }
    }
    GrayImage::from_raw(nw, nh, out).unwrap_or_else(|| GrayImage::new(nw, nh))
}

/// 5×5 box smoothing (for descriptor sampling), with running sums; the window shrinks at the
/// borders.
pub fn box5(img: &GrayImage) -> GrayImage {
    let (w, h) = img.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let src = img.as_raw();
    // Horizontal: five times the mean over the window (the plain sum inside).
    let mut tmp = vec![0u16; wu * hu];
    for y in 0..hu {
        let row = &src[y * wu..(y + 1) * wu];
        let out = &mut tmp[y * wu..(y + 1) * wu];
        let mut sum: u32 = row[..3.min(wu)].iter().map(|&v| u32::from(v)).sum();
        let mut count = 3.min(wu) as u32;
        for x in 0..wu {
            out[x] = if count == 5 {
                sum as u16
            } else {
                ((sum * 5 + count / 2) / count) as u16
            };
            if x + 3 < wu {
                sum += u32::from(row[x + 3]);
                count += 1;
            }
            if x >= 2 {
                sum -= u32::from(row[x - 2]);
                count -= 1;
            }
        }
    }
    let mut out = vec![0u8; wu * hu];
    let mut sums = vec![0u32; wu];
    let mut count = 0u32;
    for y in 0..3.min(hu) {
        for (s, &t) in sums.iter_mut().zip(&tmp[y * wu..(y + 1) * wu]) {
            *s += u32::from(t);
        }
        count += 1;
    }
    for y in 0..hu {
        let o = &mut out[y * wu..(y + 1) * wu];
        if count == 5 {
            for (o, &s) in o.iter_mut().zip(&sums) {
                *o = ((s + 12) / 25).min(255) as u8;
            }
        } else {
            for (o, &s) in o.iter_mut().zip(&sums) {
                *o = ((s + count * 5 / 2) / (count * 5)).min(255) as u8;
            }
        }
        if y + 3 < hu {
            for (s, &t) in sums.iter_mut().zip(&tmp[(y + 3) * wu..(y + 4) * wu]) {
                *s += u32::from(t);
            }
            count += 1;
        }
        if y >= 2 {
            for (s, &t) in sums.iter_mut().zip(&tmp[(y - 2) * wu..(y - 1) * wu]) {
                *s -= u32::from(t);
            }
            count -= 1;
        }
    }
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| GrayImage::new(w, h))
}

/// FAST-9 test; returns a corner score (sum of the excess contrast over the circle on the
/// winning side) or 0 when the pixel is not a corner.
#[inline]
fn fast9(img: &[u8], offs: &[isize; 16], base: usize, t: i16) -> u32 {
    let c = i16::from(img[base]);
    let px = |i: usize| i16::from(img[(base as isize + offs[i]) as usize]);
    let hi = c + t;
    let lo = c - t;
    // Quick rejections: an arc of 9 contains pixel 0 or 8, and at least two compass points.
    let (p0, p8) = (px(0), px(8));
    if p0 <= hi && p0 >= lo && p8 <= hi && p8 >= lo {
        return 0;
    }
    let (p4, p12) = (px(4), px(12));
    let nb = u8::from(p0 > hi) + u8::from(p4 > hi) + u8::from(p8 > hi) + u8::from(p12 > hi);
    let nd = u8::from(p0 < lo) + u8::from(p4 < lo) + u8::from(p8 < lo) + u8::from(p12 < lo);
    if nb < 2 && nd < 2 {
        return 0;
    }
    let mut bright = 0u32;
    let mut dark = 0u32;
    for i in 0..16 {
        let v = px(i);
        bright |= u32::from(v > hi) << i;
        dark |= u32::from(v < lo) << i;
    }
    let has_arc = |mask: u32| {
        if mask.count_ones() < 9 {
            return false;
        }
        // Nine consecutive set bits on the circle (wrap by doubling the mask).
        let m = mask | (mask << 16);
        let mut run = m;
        for k in 1..9 {
            run &= m >> k;
        }
        run != 0
    };
    let excess = |mask: u32, bright: bool| -> u32 {
        (0..16)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| {
                let v = px(i);
                (if bright { v - hi } else { lo - v }).max(1) as u32
            })
            .sum()
    };
    let b = if has_arc(bright) {
        excess(bright, true)
    } else {
        0
    };
    let d = if has_arc(dark) {
        excess(dark, false)
    } else {
        0
    };
    b.max(d)
}

/// FAST's quick rejections for the pixels `xs` of row `y` of `img` (`w` wide, at least 3
/// pixels from every edge) against their four compass points on the circle (above, right,
/// below, left; pixels 0, 4, 8 and 12 of [`CIRCLE`]): an arc of nine contains pixel 0 or 8,
/// and at least two compass points on one side. `may[i]`: pixel `xs.start + i` passes both,
/// as [`fast9`] tests them.
fn compass_test(
    img: &[u8],
    w: usize,
    y: usize,
    xs: std::ops::Range<usize>,
    t: i16,
    may: &mut [bool],
) {
    let n = xs.len();
    let row = |yy: usize, dx: isize| {
        let at = ((yy * w + xs.start) as isize + dx) as usize;
        &img[at..at + n]
    };
    let (centre, up, right, down, left) = (
        row(y, 0),
        row(y - 3, 0),
        row(y, 3),
        row(y + 3, 0),
        row(y, -3),
    );
    let may = &mut may[..n];
    for i in 0..n {
        let c = i16::from(centre[i]);
        let (hi, lo) = (c + t, c - t);
        let [a, b, r, l] = [up[i], down[i], right[i], left[i]].map(i16::from);
        let within = a <= hi && a >= lo && b <= hi && b >= lo;
        let bright = u8::from(a > hi) + u8::from(b > hi) + u8::from(r > hi) + u8::from(l > hi);
        let dark = u8::from(a < lo) + u8::from(b < lo) + u8::from(r < lo) + u8::from(l < lo);
        may[i] = !within && (bright >= 2 || dark >= 2);
    }
}

/// Harris response over a 7×7 window (ranks FAST corners, as ORB does).
fn harris(img: &[u8], w: usize, x: usize, y: usize) -> f32 {
    let (mut a, mut b, mut c) = (0f32, 0f32, 0f32);
    for yy in y - 3..=y + 3 {
        for xx in x - 3..=x + 3 {
            let ix = f32::from(img[yy * w + xx + 1]) - f32::from(img[yy * w + xx - 1]);
            let iy = f32::from(img[(yy + 1) * w + xx]) - f32::from(img[(yy - 1) * w + xx]);
            a += ix * ix;
            b += iy * iy;
            c += ix * iy;
        }
    }
    a * b - c * c - 0.04 * (a + b) * (a + b)
}

fn orientation(img: &[u8], w: usize, x: usize, y: usize) -> f32 {
    let (mut m10, mut m01) = (0f32, 0f32);
    for dy in -PATCH..=PATCH {
        let span = ((PATCH * PATCH - dy * dy) as f32).sqrt() as i32;
        for dx in -span..=span {
            let v = f32::from(img[(y as i32 + dy) as usize * w + (x as i32 + dx) as usize]);
            m10 += dx as f32 * v;
            m01 += dy as f32 * v;
        }
    }
    m01.atan2(m10)
}

/// Detect keypoints on one pyramid level: FAST-9, 3×3 non-maximum suppression on the FAST
/// score, Harris ranking of the strongest, spread over a grid; at most `max` per level.
fn detect_level(
    img: &GrayImage,
    mask: &dyn Fn(f32, f32) -> bool,
    scale: f32,
    max: usize,
) -> Vec<(u32, u32, f32)> {
    let (w, h) = img.dimensions();
    if w <= 2 * BORDER || h <= 2 * BORDER || max == 0 {
        return Vec::new();
    }
    let raw = img.as_raw();
    let (wu, hu) = (w as usize, h as usize);
    let mut score = vec![0u32; wu * hu];
    let mut cands: Vec<(u32, u32)> = Vec::new();
    let offs: [isize; 16] =
        std::array::from_fn(|i| CIRCLE[i].1 as isize * wu as isize + CIRCLE[i].0 as isize);
    let (x0, x1) = (BORDER as usize, wu - BORDER as usize);
    let mut may = vec![false; x1 - x0];
    for t in [14i16, 8] {
        cands.clear();
        score.fill(0);
        for y in BORDER as usize..hu - BORDER as usize {
            let sy = y as f32 * scale;
            // The compass points first, a row at a time (most pixels fail them; the loop
            // vectorises), then the full test where they pass.
            compass_test(raw, wu, y, x0..x1, t, &mut may);
            for (x, _) in (x0..x1).zip(&may).filter(|(_, m)| **m) {
                let s = fast9(raw, &offs, y * wu + x, t);
                score[y * wu + x] = s;
                if s > 0 && mask(x as f32 * scale, sy) {
                    cands.push((x as u32, y as u32));
                }
            }
        }
        if cands.len() >= 2 * max {
            break;
        }
    }
    // Non-maximum suppression (3×3) on the FAST score.
    cands.retain(|&(x, y)| {
        let i = y as usize * wu + x as usize;
        let s = score[i];
        // Neighbours before (in raster order) must be strictly lower, after may tie.
        score[i - wu - 1] < s
            && score[i - wu] < s
            && score[i - wu + 1] < s
            && score[i - 1] < s
            && score[i + 1] <= s
            && score[i + wu - 1] <= s
            && score[i + wu] <= s
            && score[i + wu + 1] <= s
    });
    // Harris on the strongest few, as ORB ranks FAST corners.
    if cands.len() > 4 * max {
        cands.select_nth_unstable_by_key(4 * max, |&(x, y)| {
            std::cmp::Reverse(score[y as usize * wu + x as usize])
        });
        cands.truncate(4 * max);
    }
    let corners: Vec<(u32, u32, f32)> = cands
        .iter()
        .map(|&(x, y)| (x, y, harris(raw, wu, x as usize, y as usize)))
        .collect();
    // Spread: the best few per grid cell, then the best overall.
    let (gx, gy) = (8u32, 6u32);
    let per_cell = (max / (gx * gy) as usize).max(2);
    let mut cells: Vec<Vec<(u32, u32, f32)>> = vec![Vec::new(); (gx * gy) as usize];
    for c in corners {
        let cx = (c.0 * gx / w).min(gx - 1);
        let cy = (c.1 * gy / h).min(gy - 1);
        cells[(cy * gx + cx) as usize].push(c);
    }
    let mut out = Vec::new();
    let mut rest = Vec::new();
    for mut cell in cells {
        cell.sort_by(|a, b| b.2.total_cmp(&a.2));
        let k = per_cell.min(cell.len());
        out.extend_from_slice(&cell[..k]);
        rest.extend_from_slice(&cell[k..]);
    }
    rest.sort_by(|a, b| b.2.total_cmp(&a.2));
    let room = max.saturating_sub(out.len());
    out.extend(rest.into_iter().take(room));
    out.truncate(max);
    out
}

fn describe(smooth: &[u8], w: usize, x: usize, y: usize, angle: f32) -> Descriptor {
    let bin = ((angle.rem_euclid(std::f32::consts::TAU) / std::f32::consts::TAU * ANGLE_BINS as f32)
        .round() as usize)
        % ANGLE_BINS;
    let pat = &patterns()[bin];
    let mut d = [0u64; 4];
    let at = |dx: i8, dy: i8| {
        smooth[(y as i32 + i32::from(dy)) as usize * w + (x as i32 + i32::from(dx)) as usize]
    };
    for (i, &(x1, y1, x2, y2)) in pat.iter().enumerate() {
        if at(x1, y1) < at(x2, y2) {
            d[i / 64] |= 1 << (i % 64);
        }
    }
    d
}

/// The first pyramid level's reduction from the working image: corners are found a little
/// coarser than the working image (fast, robust); direct alignment restores sub-pixel accuracy.
pub const BASE_SCALE: f32 = 1.5;

/// How features are sampled: the first level's reduction, each level's share of the
/// keypoints (levels are 1.25× apart), and whether descriptors are steered.
#[derive(Clone, Copy, Debug)]
pub struct Pyramid {
    pub base_scale: f32,
    pub shares: &'static [f32],
    /// Steer each descriptor's test pattern by its keypoint's orientation (a head may tilt
    /// between sessions). Images known to be upright match better unsteered (their
    /// keypoints' angle is 0): an orientation estimate near a bin edge flips many bits, and
    /// steering makes every corner of every rectangle look alike.
    pub steered: bool,
}

/// The pose check's pyramid: three levels from [`BASE_SCALE`].
pub const POSE_PYRAMID: Pyramid = Pyramid {
    base_scale: BASE_SCALE,
    shares: &[0.55, 0.28, 0.17],
    steered: true,
};

/// Features of a working image over the pose pyramid; keypoints are in working-image
/// coordinates; `mask(x, y)` restricts where they may lie.
pub fn extract(img: &GrayImage, max: usize, mask: &(dyn Fn(f32, f32) -> bool + Sync)) -> Features {
    extract_with(img, max, mask, &POSE_PYRAMID)
}

/// Features over any pyramid; the levels are searched on every core, and the result is the
/// same whatever the number of cores (level by level, in order).
pub fn extract_with(
    img: &GrayImage,
    max: usize,
    mask: &(dyn Fn(f32, f32) -> bool + Sync),
    pyramid: &Pyramid,
) -> Features {
    use rayon::prelude::*;
    let base_scale = pyramid.base_scale;
    let first = if base_scale > 1.0 {
        resize(img, base_scale)
    } else {
        img.clone()
    };
    // Each level from the one before: cheaper, and the same scale step.
    let mut levels = vec![first];
    for _ in 1..pyramid.shares.len() {
        let next = resize(&levels[levels.len() - 1], LEVEL_SCALE);
        levels.push(next);
    }
    let per_level: Vec<Features> = levels
        .par_iter()
        .zip(pyramid.shares)
        .enumerate()
        .map(|(level, (level_img, share))| {
            let scale = base_scale * LEVEL_SCALE.powi(level as i32);
            let n = ((max as f32) * share) as usize;
            level_features(level_img, level, scale, n, mask, pyramid.steered)
        })
        .collect();
    let mut out = Features::default();
    for f in per_level {
        out.keypoints.extend(f.keypoints);
        out.descriptors.extend(f.descriptors);
    }
    out
}

/// Up to `n` features of one pyramid level (`scale` working pixels per level pixel).
fn level_features(
    level_img: &GrayImage,
    level: usize,
    scale: f32,
    n: usize,
    mask: &dyn Fn(f32, f32) -> bool,
    steered: bool,
) -> Features {
    let mut out = Features::default();
    let smooth = box5(level_img);
    let w = level_img.width() as usize;
    let (raw, sraw) = (level_img.as_raw(), smooth.as_raw());
    for (x, y, r) in detect_level(level_img, mask, scale, n) {
        // Unsteered keypoints are upright: their orientation is not measured.
        let angle = if steered {
            orientation(raw, w, x as usize, y as usize)
        } else {
            0.0
        };
        out.descriptors
            .push(describe(sraw, w, x as usize, y as usize, angle));
        out.keypoints.push(Keypoint {
            x: x as f32 * scale,
            y: y as f32 * scale,
            level: level as u8,
            angle,
            response: r,
        });
    }
    out
}

/// Hamming distance.
#[inline]
pub fn hamming(a: &Descriptor, b: &Descriptor) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// A match: (index in `a`, index in `b`, distance).
pub type Match = (usize, usize, u32);

/// Brute-force matching with Lowe's ratio test and a mutual-best check.
pub fn match_features(a: &Features, b: &Features, ratio: f32, max_dist: u32) -> Vec<Match> {
    let best_in = |from: &[Descriptor], to: &[Descriptor]| -> Vec<(usize, u32, u32)> {
        from.iter()
            .map(|d| {
                let (mut b1, mut d1, mut d2) = (usize::MAX, u32::MAX, u32::MAX);
                for (j, e) in to.iter().enumerate() {
                    let h = hamming(d, e);
                    if h < d1 {
                        d2 = d1;
                        d1 = h;
                        b1 = j;
                    } else if h < d2 {
                        d2 = h;
                    }
                }
                (b1, d1, d2)
            })
            .collect()
    };
    let ab = best_in(&a.descriptors, &b.descriptors);
    let ba = best_in(&b.descriptors, &a.descriptors);
    let mut out = Vec::new();
    for (i, &(j, d1, d2)) in ab.iter().enumerate() {
        if j == usize::MAX || d1 > max_dist || (d1 as f32) > ratio * d2 as f32 {
            continue;
        }
        if ba[j].0 == i {
            out.push((i, j, d1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row-wise compass test passes every pixel the full FAST test finds a corner at
    /// (it only saves the full test elsewhere), on a photo and on noise.
    #[test]
    fn the_compass_test_keeps_every_corner() {
        let photo = image::load_from_memory(include_bytes!(
            "../../../../../fixtures/textures/coffee.jpg"
        ))
        .unwrap()
        .to_luma8();
        let mut state = 7u32;
        let noise = GrayImage::from_fn(200, 150, |_, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            image::Luma([(state >> 16) as u8])
        });
        for (img, is_photo) in [(&photo, true), (&noise, false)] {
            let (wu, hu) = (img.width() as usize, img.height() as usize);
            let raw = img.as_raw();
            let offs: [isize; 16] =
                std::array::from_fn(|i| CIRCLE[i].1 as isize * wu as isize + CIRCLE[i].0 as isize);
            let (x0, x1) = (3, wu - 3);
            let mut may = vec![false; x1 - x0];
            let (mut corners, mut passed) = (0, 0);
            for t in [8i16, 14] {
                for y in 3..hu - 3 {
                    compass_test(raw, wu, y, x0..x1, t, &mut may);
                    for (x, m) in (x0..x1).zip(&may) {
                        let corner = fast9(raw, &offs, y * wu + x, t) > 0;
                        assert!(*m || !corner, "corner at ({x}, {y}) rejected");
                        corners += usize::from(corner);
                        passed += usize::from(*m);
                    }
                }
            }
            assert!(corners > 100, "{corners}");
            // …and rejects most pixels of a photo (the point of it), at both thresholds.
            assert!(!is_photo || passed < wu * hu, "{passed} of {}", 2 * wu * hu);
        }
    }

    /// Learn the test pattern from the fixture images and write `pattern.rs`.
    #[test]
    #[ignore = "regenerates src/analysis/pose/pattern.rs"]
    fn learn_pattern() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(format!("{dir}/textures"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.push(format!("{dir}/faces/astronaut.jpg").into());
        files.sort();
        // Steered patches: (smoothed image, x, y, angle).
        let mut samples: Vec<(std::sync::Arc<GrayImage>, usize, usize, f32)> = Vec::new();
        for f in &files {
            let g = image::open(f).unwrap().to_luma8();
            for (scale, rot) in [(1.0f32, false), (1.4, false), (1.0, true)] {
                let img = if rot {
                    image::imageops::rotate90(&g)
                } else {
                    g.clone()
                };
                let img = if scale > 1.0 {
                    resize(&img, scale)
                } else {
                    img
                };
                let smooth = std::sync::Arc::new(box5(&img));
                let all = |_: f32, _: f32| true;
                for (x, y, _) in detect_level(&img, &all, 1.0, 700) {
                    let angle =
                        orientation(img.as_raw(), img.width() as usize, x as usize, y as usize);
                    samples.push((smooth.clone(), x as usize, y as usize, angle));
                }
            }
        }
        // Candidate pairs inside a circle of radius 13, at least 2 px apart.
        let mut state = 0xABCD_EF01_u64;
        let mut rnd = |n: i32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % (2 * n as u64 + 1)) as i32 - n
        };
        let mut cands: Vec<(i8, i8, i8, i8)> = Vec::new();
        while cands.len() < 6000 {
            let (x1, y1, x2, y2) = (rnd(13), rnd(13), rnd(13), rnd(13));
            if x1 * x1 + y1 * y1 <= 169
                && x2 * x2 + y2 * y2 <= 169
                && (x1 - x2).pow(2) + (y1 - y2).pow(2) >= 4
            {
                cands.push((x1 as i8, y1 as i8, x2 as i8, y2 as i8));
            }
        }
        let n = samples.len();
        let words = n.div_ceil(64);
        let bits: Vec<Vec<u64>> = cands
            .iter()
            .map(|&(x1, y1, x2, y2)| {
                let mut v = vec![0u64; words];
                for (i, (img, x, y, a)) in samples.iter().enumerate() {
                    let (c, s) = (a.cos(), a.sin());
                    let at = |px: i8, py: i8| {
                        let (px, py) = (f32::from(px), f32::from(py));
                        let (rx, ry) = (
                            (c * px - s * py).round() as i32,
                            (s * px + c * py).round() as i32,
                        );
                        img.get_pixel((*x as i32 + rx) as u32, (*y as i32 + ry) as u32)
                            .0[0]
                    };
                    if at(x1, y1) < at(x2, y2) {
                        v[i / 64] |= 1 << (i % 64);
                    }
                }
                v
            })
            .collect();
        let mean: Vec<f64> = bits
            .iter()
            .map(|v| v.iter().map(|w| w.count_ones() as f64).sum::<f64>() / n as f64)
            .collect();
        let mut order: Vec<usize> = (0..cands.len()).collect();
        order.sort_by(|&a, &b| (mean[a] - 0.5).abs().total_cmp(&(mean[b] - 0.5).abs()));
        let corr = |a: usize, b: usize| {
            let both: f64 = bits[a]
                .iter()
                .zip(&bits[b])
                .map(|(x, y)| (x & y).count_ones() as f64)
                .sum::<f64>()
                / n as f64;
            let cov = both - mean[a] * mean[b];
            cov / ((mean[a] * (1.0 - mean[a])) * (mean[b] * (1.0 - mean[b])))
                .sqrt()
                .max(1e-9)
        };
        let mut chosen: Vec<usize> = Vec::new();
        let mut limit = 0.2;
        while chosen.len() < 256 {
            for &c in &order {
                if chosen.len() >= 256 {
                    break;
                }
                if !chosen.contains(&c) && chosen.iter().all(|&k| corr(c, k).abs() < limit) {
                    chosen.push(c);
                }
            }
            limit += 0.05;
        }
        let mut out = String::from(
            "//! The learned BRIEF test pattern (x1, y1, x2, y2) — generated by\n//! `cargo test --lib learn_pattern -- --ignored` from the images in `fixtures/`; do not edit.\n\n/// 256 tests in the unrotated patch.\n#[rustfmt::skip]\npub const LEARNED: [(i8, i8, i8, i8); 256] = [\n",
        );
        for c in &chosen {
            let (a, b, cc, d) = cands[*c];
            out += &format!("    ({a}, {b}, {cc}, {d}),\n");
        }
        out += "];\n";
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/analysis/pose/pattern.rs"),
            out,
        )
        .unwrap();
        eprintln!(
            "{} samples; mean |p − 0.5| of chosen {:.3}",
            n,
            chosen.iter().map(|&c| (mean[c] - 0.5).abs()).sum::<f64>() / 256.0
        );
    }

    #[test]
    fn descriptors_survive_rotation() {
        // A textured image and its 90° rotation: most keypoints find their twins.
        let img = image::load_from_memory(include_bytes!(
            "../../../../../fixtures/textures/coffee.jpg"
        ))
        .unwrap()
        .to_luma8();
        let img = image::imageops::crop_imm(&img, 100, 0, 400, 400).to_image();
        let rot = image::imageops::rotate90(&img);
        let all = |_: f32, _: f32| true;
        let fa = extract(&img, 300, &all);
        let fb = extract(&rot, 300, &all);
        assert!(fa.keypoints.len() > 50, "{}", fa.keypoints.len());
        let m = match_features(&fa, &fb, 0.85, 80);
        // rotate90 maps (x, y) to (h − 1 − y, x).
        let good = m
            .iter()
            .filter(|&&(i, j, _)| {
                let (p, q) = (fa.keypoints[i], fb.keypoints[j]);
                ((399.0 - p.y) - q.x).abs() < 4.0 && (p.x - q.y).abs() < 4.0
            })
            .count();
        assert!(
            good >= 20 && good * 10 >= m.len() * 7,
            "{good} of {} matches are right",
            m.len()
        );
    }
}
