//! Sub-pixel refinement of a similarity by direct image alignment (Lucas–Kanade, forward
//! additive Gauss–Newton) with a gain and bias per frame and Huber weights, so lighting
//! changes, small expression changes and occlusion do not pull the estimate.

use image::GrayImage;

use super::affine::Affine;
use super::similarity::Sim;

/// A float image with precomputed gradients.
#[derive(Clone, Debug)]
pub struct GradImage {
    pub w: usize,
    pub h: usize,
    pub v: Vec<f32>,
    pub gx: Vec<f32>,
    pub gy: Vec<f32>,
}

impl GradImage {
    /// From an 8-bit image, lightly smoothed (3×3 binomial, edges repeated); the gradients
    /// are central differences, zero on the border. The smoothing is done in integers (the
    /// weights sum to 16, so every value is exact in `f32`), row by row on every core.
    pub fn new(img: &GrayImage) -> Self {
        use rayon::prelude::*;
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Self {
                w,
                h,
                v: Vec::new(),
                gx: Vec::new(),
                gy: Vec::new(),
            };
        }
        let src = img.as_raw();
        // One row smoothed across: a + 2b + c (at most 1020).
        let across = |y: usize, out: &mut [u16]| {
            let row = &src[y * w..(y + 1) * w];
            for (x, o) in out.iter_mut().enumerate() {
                let (a, b, c) = (row[x.saturating_sub(1)], row[x], row[(x + 1).min(w - 1)]);
                *o = u16::from(a) + 2 * u16::from(b) + u16::from(c);
            }
        };
        let mut v = vec![0f32; w * h];
        v.par_chunks_mut(w).enumerate().for_each_init(
            || [vec![0u16; w], vec![0u16; w], vec![0u16; w]],
            |[up, mid, down], (y, row)| {
                across(y.saturating_sub(1), up);
                across(y, mid);
                across((y + 1).min(h - 1), down);
                for (x, o) in row.iter_mut().enumerate() {
                    *o = f32::from(up[x] + 2 * mid[x] + down[x]) / 16.0;
                }
            },
        );
        let mut gx = vec![0f32; w * h];
        let mut gy = vec![0f32; w * h];
        gx.par_chunks_mut(w)
            .zip(gy.par_chunks_mut(w))
            .enumerate()
            .filter(|(y, _)| *y >= 1 && y + 1 < h)
            .for_each(|(y, (rx, ry))| {
                let (above, row, below) = (
                    &v[(y - 1) * w..y * w],
                    &v[y * w..(y + 1) * w],
                    &v[(y + 1) * w..(y + 2) * w],
                );
                for x in 1..w.saturating_sub(1) {
                    rx[x] = (row[x + 1] - row[x - 1]) * 0.5;
                    ry[x] = (below[x] - above[x]) * 0.5;
                }
            });
        Self { w, h, v, gx, gy }
    }

    /// Bilinear sample of value and gradient; `None` outside.
    #[inline]
    pub fn sample(&self, x: f64, y: f64) -> Option<(f32, f32, f32)> {
        if x < 1.0 || y < 1.0 || x >= (self.w - 2) as f64 || y >= (self.h - 2) as f64 {
            return None;
        }
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        let i = y0 * self.w + x0;
        let lerp = |a: &[f32]| {
            let top = a[i] * (1.0 - fx) + a[i + 1] * fx;
            let bot = a[i + self.w] * (1.0 - fx) + a[i + self.w + 1] * fx;
            top * (1.0 - fy) + bot * fy
        };
        Some((lerp(&self.v), lerp(&self.gx), lerp(&self.gy)))
    }
}

/// Template points sampled from the baseline: strong-gradient pixels spread over a grid.
#[derive(Clone, Debug, Default)]
pub struct Template {
    /// (x, y, value) in working coordinates.
    pub points: Vec<(f32, f32, f32)>,
}

impl Template {
    /// Up to `max` points inside `mask`, the strongest gradients per cell of a 16×12 grid.
    pub fn new(img: &GradImage, max: usize, mask: &dyn Fn(f32, f32) -> bool) -> Self {
        let (gxn, gyn) = (16usize, 12usize);
        let per = (max / (gxn * gyn)).max(4);
        let mut cells: Vec<Vec<(f32, usize)>> = vec![Vec::new(); gxn * gyn];
        let border = 4usize;
        for y in border..img.h.saturating_sub(border) {
            for x in border..img.w.saturating_sub(border) {
                if !mask(x as f32, y as f32) {
                    continue;
                }
                let i = y * img.w + x;
                let m = img.gx[i].abs() + img.gy[i].abs();
                if m < 4.0 {
                    continue;
                }
                let c = (y * gyn / img.h).min(gyn - 1) * gxn + (x * gxn / img.w).min(gxn - 1);
                cells[c].push((m, i));
            }
        }
        let mut points = Vec::new();
        for mut cell in cells {
            let k = per.min(cell.len());
            if k == 0 {
                continue;
            }
            cell.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            for &(_, i) in &cell[..k] {
                points.push(((i % img.w) as f32, (i / img.w) as f32, img.v[i]));
            }
        }
        Self { points }
    }
}

/// The refined transform and how well it explains the image.
#[derive(Clone, Debug)]
pub struct Refined {
    pub sim: Sim,
    /// Zero-mean normalised cross-correlation of the template with the warped frame.
    pub ncc: f64,
    /// Template points that landed inside the frame.
    pub used: usize,
    pub iterations: usize,
}

/// Refine `init` (template → frame, working coordinates).
pub fn refine(t: &Template, frame: &GradImage, init: Sim, max_iter: usize) -> Option<Refined> {
    let r = refine_motion(
        t,
        frame,
        Affine::from_sim(&init),
        Motion::Similarity,
        max_iter,
    )?;
    Some(Refined {
        sim: Sim {
            a: [r.0.m[0][0], r.0.m[1][0]],
            b: r.0.t,
        },
        ncc: r.1,
        used: r.2,
        iterations: r.3,
    })
}

/// An affine refinement: the transform, the template's correlation with the warped frame and
/// the template points used.
#[derive(Clone, Debug)]
pub struct RefinedAffine {
    pub transform: Affine,
    pub ncc: f64,
    pub used: usize,
}

/// Refine an affine `init` (template → frame): all six parameters (a published image may be
/// stretched as well as scaled).
pub fn refine_affine(
    t: &Template,
    frame: &GradImage,
    init: Affine,
    max_iter: usize,
) -> Option<RefinedAffine> {
    let r = refine_motion(t, frame, init, Motion::Affine, max_iter)?;
    Some(RefinedAffine {
        transform: r.0,
        ncc: r.1,
        used: r.2,
    })
}

/// Which parameters a refinement moves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Motion {
    /// Scale, rotation, translation.
    Similarity,
    /// Any linear part and translation.
    Affine,
}

/// Parameters: the centred linear part (m00, m01, m10, m11), translation, gain, bias.
const PARAMS: usize = 8;

impl Motion {
    /// The affine parameter change per parameter of the motion (columns of a basis).
    fn basis(self) -> Vec<[f64; PARAMS]> {
        let e = |i: usize| {
            let mut v = [0.0; PARAMS];
            v[i] = 1.0;
            v
        };
        match self {
            // a0 (scale·cos) on both diagonal terms, a1 (scale·sin) on the off-diagonals.
            Motion::Similarity => vec![
                [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                e(4),
                e(5),
                e(6),
                e(7),
            ],
            Motion::Affine => (0..PARAMS).map(e).collect(),
        }
    }
}

/// Forward additive Gauss–Newton on the motion's parameters about the template's centroid,
/// with a gain and bias and Huber weights: (transform, ncc, points used, iterations).
fn refine_motion(
    t: &Template,
    frame: &GradImage,
    init: Affine,
    motion: Motion,
    max_iter: usize,
) -> Option<(Affine, f64, usize, usize)> {
    if t.points.len() < 12 {
        return None;
    }
    let basis = motion.basis();
    let k = basis.len();
    // Work about the template's centroid for conditioning: W(p) = m·(p − c) + b + c.
    let n = t.points.len() as f64;
    let c = [
        t.points.iter().map(|p| f64::from(p.0)).sum::<f64>() / n,
        t.points.iter().map(|p| f64::from(p.1)).sum::<f64>() / n,
    ];
    let mut m = init.m;
    let centre = init.apply(c);
    let mut b = [centre[0] - c[0], centre[1] - c[1]];
    let (mut gain, mut bias) = (1.0f64, 0.0f64);
    let mut iterations = 0;
    let mut resid = Vec::with_capacity(t.points.len());
    let mut rows: Vec<([f64; PARAMS], f64)> = Vec::with_capacity(t.points.len());
    for it in 0..max_iter {
        iterations = it + 1;
        // Residuals and the robust scale.
        resid.clear();
        rows.clear();
        for &(px, py, tv) in &t.points {
            let (x, y) = (f64::from(px) - c[0], f64::from(py) - c[1]);
            let wx = m[0][0] * x + m[0][1] * y + b[0] + c[0];
            let wy = m[1][0] * x + m[1][1] * y + b[1] + c[1];
            let Some((iv, ix, iy)) = frame.sample(wx, wy) else {
                continue;
            };
            let (ix, iy, tv) = (f64::from(ix), f64::from(iy), f64::from(tv));
            let r = f64::from(iv) - (gain * tv + bias);
            rows.push(([ix * x, ix * y, iy * x, iy * y, ix, iy, -tv, -1.0], r));
            resid.push(r.abs());
        }
        if rows.len() < 12 {
            return None;
        }
        let mid = resid.len() / 2;
        let mad = *resid.select_nth_unstable_by(mid, f64::total_cmp).1;
        let huber = (1.345 * 1.4826 * mad).max(1.0);
        // Normal equations in the affine parameters (upper triangle), then projected on the
        // motion's basis.
        let mut jtj = [[0f64; PARAMS]; PARAMS];
        let mut jtr = [0f64; PARAMS];
        for (j, r) in &rows {
            let w = if r.abs() <= huber {
                1.0
            } else {
                huber / r.abs()
            };
            for a in 0..PARAMS {
                let wa = w * j[a];
                jtr[a] += wa * r;
                for bb in a..PARAMS {
                    jtj[a][bb] += wa * j[bb];
                }
            }
        }
        let full = |a: usize, bb: usize| if a <= bb { jtj[a][bb] } else { jtj[bb][a] };
        let mut h = nalgebra::DMatrix::<f64>::zeros(k, k);
        let mut g = nalgebra::DVector::<f64>::zeros(k);
        for (p, u) in basis.iter().enumerate() {
            g[p] = (0..PARAMS).map(|a| u[a] * jtr[a]).sum();
            for (q, v) in basis.iter().enumerate() {
                h[(p, q)] = (0..PARAMS)
                    .flat_map(|a| (0..PARAMS).map(move |bb| (a, bb)))
                    .map(|(a, bb)| u[a] * full(a, bb) * v[bb])
                    .sum();
            }
        }
        let step = h.lu().solve(&(-g))?;
        let mut delta = [0f64; PARAMS];
        for (p, u) in basis.iter().enumerate() {
            for a in 0..PARAMS {
                delta[a] += u[a] * step[p];
            }
        }
        m[0][0] += delta[0];
        m[0][1] += delta[1];
        m[1][0] += delta[2];
        m[1][1] += delta[3];
        b[0] += delta[4];
        b[1] += delta[5];
        gain += delta[6];
        bias += delta[7];
        let size =
            delta[4].hypot(delta[5]) + delta[..4].iter().map(|v| v.abs()).sum::<f64>() * 100.0;
        if size < 1e-3 {
            break;
        }
    }
    // Back to the image origin and the correlation.
    let transform = Affine {
        m,
        t: [
            b[0] + c[0] - (m[0][0] * c[0] + m[0][1] * c[1]),
            b[1] + c[1] - (m[1][0] * c[0] + m[1][1] * c[1]),
        ],
    };
    let (mut st, mut si, mut stt, mut sii, mut sti, mut used) =
        (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    for &(px, py, tv) in &t.points {
        let p = transform.apply([f64::from(px), f64::from(py)]);
        if let Some((iv, _, _)) = frame.sample(p[0], p[1]) {
            let (tv, iv) = (f64::from(tv), f64::from(iv));
            st += tv;
            si += iv;
            stt += tv * tv;
            sii += iv * iv;
            sti += tv * iv;
            used += 1.0;
        }
    }
    let cov = sti / used - (st / used) * (si / used);
    let vt = (stt / used - (st / used).powi(2)).max(1e-9);
    let vi = (sii / used - (si / used).powi(2)).max(1e-9);
    Some((transform, cov / (vt * vi).sqrt(), used as usize, iterations))
}

#[cfg(test)]
mod grad_tests {
    use super::GradImage;
    use image::GrayImage;
    use proptest::prelude::*;

    /// The smoothing and gradients as first written: separable float passes.
    fn by_float_passes(img: &GrayImage) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let src = img.as_raw();
        let mut tmp = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (a, b, c) = (
                    src[y * w + x.saturating_sub(1)],
                    src[y * w + x],
                    src[y * w + (x + 1).min(w - 1)],
                );
                tmp[y * w + x] = (f32::from(a) + 2.0 * f32::from(b) + f32::from(c)) / 4.0;
            }
        }
        let mut v = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let a = tmp[y.saturating_sub(1) * w + x];
                let c = tmp[(y + 1).min(h - 1) * w + x];
                v[y * w + x] = (a + 2.0 * tmp[y * w + x] + c) / 4.0;
            }
        }
        let (mut gx, mut gy) = (vec![0f32; w * h], vec![0f32; w * h]);
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                let i = y * w + x;
                gx[i] = (v[i + 1] - v[i - 1]) * 0.5;
                gy[i] = (v[i + w] - v[i - w]) * 0.5;
            }
        }
        (v, gx, gy)
    }

    proptest! {
        /// The integer, row-parallel smoothing gives the float passes' values exactly.
        #[test]
        fn integer_smoothing_equals_the_float_passes(w in 1u32..48, h in 1u32..48, seed: u64) {
            let mut s = seed | 1;
            let img = GrayImage::from_fn(w, h, |_, _| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                image::Luma([(s >> 56) as u8])
            });
            let g = GradImage::new(&img);
            let (v, gx, gy) = by_float_passes(&img);
            prop_assert_eq!(g.v, v);
            prop_assert_eq!(g.gx, gx);
            prop_assert_eq!(g.gy, gy);
        }
    }
}
