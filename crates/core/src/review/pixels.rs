//! Pixel checks of a geometrically verified candidate: its reduced preview aligned directly on
//! the published panel, compared block by block, and two look-alike candidates (sessions of
//! one patient) compared where they differ.

use std::rc::Rc;

use image::{GrayImage, RgbImage};

use super::matching::{Affine, MIN_NCC, Query, SourceMatch, inside};
use crate::analysis::fingerprint;
use crate::analysis::pose::refine::{self, GradImage, Template};

/// Moments of published values `a` against a candidate's values `b` over some pixels:
/// `[n, Σa, Σb, Σa², Σb², Σab]`.
#[derive(Clone, Copy, Debug, Default)]
struct Moments([f64; 6]);

impl Moments {
    fn push(&mut self, a: f64, b: f64) {
        let m = &mut self.0;
        m[0] += 1.0;
        m[1] += a;
        m[2] += b;
        m[3] += a * a;
        m[4] += b * b;
        m[5] += a * b;
    }

    fn n(&self) -> f64 {
        self.0[0]
    }

    fn sum<'a>(all: impl Iterator<Item = &'a Moments>) -> Moments {
        all.fold(Moments::default(), |mut acc, m| {
            for (x, v) in acc.0.iter_mut().zip(&m.0) {
                *x += v;
            }
            acc
        })
    }

    /// Zero-mean correlation, when both sides vary (more than 3 levels of deviation).
    fn ncc(&self) -> Option<f64> {
        let [n, sa, sb, saa, sbb, sab] = self.0;
        let va = saa / n - (sa / n).powi(2);
        let vb = sbb / n - (sb / n).powi(2);
        (va > 9.0 && vb > 9.0).then(|| (sab / n - sa / n * sb / n) / (va * vb).sqrt())
    }

    /// The gain and offset that best map `b` onto `a`.
    fn gain_offset(&self) -> (f64, f64) {
        let [n, sa, sb, _, sbb, sab] = self.0;
        let n = n.max(1.0);
        let vb = sbb / n - (sb / n).powi(2);
        let gain = if vb > 1e-6 {
            (sab / n - sa / n * sb / n) / vb
        } else {
            1.0
        };
        (gain, sa / n - gain * sb / n)
    }

    /// Mean squared difference `a − (gain·b + offset)`.
    fn mean_sq_residual(&self, (gain, off): (f64, f64)) -> f64 {
        let [n, sa, sb, saa, sbb, sab] = self.0;
        let ss = saa - 2.0 * gain * sab - 2.0 * off * sa
            + gain * gain * sbb
            + 2.0 * gain * off * sb
            + n * off * off;
        ss.max(0.0) / n.max(1.0)
    }
}

/// Bilinear sample of `img` at (`x`, `y`) pixel coordinates; `None` outside.
fn bilinear(img: &GrayImage, x: f64, y: f64) -> Option<f64> {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    if x < 0.0 || y < 0.0 || x >= w - 1.0 || y >= h - 1.0 {
        return None;
    }
    let (ix, iy) = (x as usize, y as usize);
    let (fx, fy) = (x - ix as f64, y - iy as f64);
    let raw = img.as_raw();
    let wu = img.width() as usize;
    let g = |xx: usize, yy: usize| f64::from(raw[yy * wu + xx]);
    Some(
        (g(ix, iy) * (1.0 - fx) + g(ix + 1, iy) * fx) * (1.0 - fy)
            + (g(ix, iy + 1) * (1.0 - fx) + g(ix + 1, iy + 1) * fx) * fy,
    )
}

/// A verified candidate with what its pixels were checked on: the reduced preview and the
/// width of the frame its transform starts from.
pub(super) type Verified = (SourceMatch, Rc<GrayImage>, u32);

/// Which of two verified candidates explains a region of the query better, compared on the
/// same query pixels (those both cover), block by block after each one's whole-region gain
/// and offset: negative when `a` does. Where the two look alike (most of a before/after
/// pair) both explain the query equally; where the query was overlaid (a label, a watermark)
/// neither does; the blocks where one session differs from the other decide.
pub(super) fn duel(q: &Query, region: &[u32; 4], a: &Verified, b: &Verified) -> Option<Duel> {
    const B: usize = 8;
    let per_small = |v: &Verified| v.0.transform.scale() * f64::from(v.2) / f64::from(v.1.width());
    let (level, img) = q.level_for(per_small(a).min(per_small(b)));
    let d = f64::from(1u32 << level);
    let (lw, lh) = (img.width() as usize, img.height() as usize);
    let x0 = (f64::from(region[0]) / d).ceil() as usize;
    let y0 = (f64::from(region[1]) / d).ceil() as usize;
    let x1 = ((f64::from(region[0] + region[2]) / d).floor() as usize).min(lw);
    let y1 = ((f64::from(region[1] + region[3]) / d).floor() as usize).min(lh);
    if x1 <= x0 + B || y1 <= y0 + B {
        return None;
    }
    // Query pixel → reduced-preview pixel, per candidate.
    let maps: Vec<(Affine, f64, &GrayImage)> = [a, b]
        .iter()
        .map(|v| {
            Some((
                v.0.transform.inverse()?,
                f64::from(v.2) / f64::from(v.1.width()),
                &*v.1,
            ))
        })
        .collect::<Option<_>>()?;
    let sample = |(inv, f, small): &(Affine, f64, &GrayImage), qx: f64, qy: f64| -> Option<f64> {
        let p = inv.apply([qx, qy]);
        bilinear(small, (p[0] + 0.5) / f - 0.5, (p[1] + 0.5) / f - 0.5)
    };
    let raw = img.as_raw();
    // Per block, each candidate's moments against the query.
    let mut blocks: Vec<[Moments; 2]> = Vec::new();
    for by in (y0..y1 - B).step_by(B) {
        for bx in (x0..x1 - B).step_by(B) {
            let mut st = [Moments::default(); 2];
            for y in by..by + B {
                for x in bx..bx + B {
                    let (qx, qy) = ((x as f64 + 0.5) * d - 0.5, (y as f64 + 0.5) * d - 0.5);
                    let (Some(ca), Some(cb)) = (sample(&maps[0], qx, qy), sample(&maps[1], qx, qy))
                    else {
                        continue;
                    };
                    let v = f64::from(raw[y * lw + x]);
                    st[0].push(v, ca);
                    st[1].push(v, cb);
                }
            }
            if st[0].n() >= (B * B) as f64 * 0.75 {
                blocks.push(st);
            }
        }
    }
    if blocks.len() < 8 {
        return None;
    }
    // Each candidate's gain and offset over the blocks both cover, then per-block RMS.
    let rms: Vec<Vec<f64>> = (0..2)
        .map(|k| {
            let fit = Moments::sum(blocks.iter().map(|b| &b[k])).gain_offset();
            blocks
                .iter()
                .map(|b| b[k].mean_sq_residual(fit).sqrt())
                .collect()
        })
        .collect();
    let d: Vec<f64> = rms[0].iter().zip(&rms[1]).map(|(x, y)| x - y).collect();
    let n = d.len() as f64;
    let margin = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|v| (v - margin).powi(2)).sum::<f64>() / (n - 1.0);
    Some(Duel {
        margin,
        standard_error: (var / n).sqrt(),
    })
}

/// The outcome of a [`duel`]: the mean per-block difference of the two candidates' RMS
/// residuals (8-bit levels; negative when the first explains the query better) and its
/// standard error over the blocks.
#[derive(Clone, Copy, Debug)]
pub(super) struct Duel {
    pub margin: f64,
    pub standard_error: f64,
}

impl Duel {
    /// The smallest margin, in 8-bit levels per block, that tells one capture from another:
    /// above what a difference in sharpness alone gives between a capture and a copy of it
    /// moved by a few degrees and per cent (measured up to 0.74 on re-encoded, resized
    /// publications of look-alikes)…
    const MIN_MARGIN: f64 = 1.0;
    /// …in standard errors.
    const MIN_Z: f64 = 4.0;

    /// Whether the first candidate explains the query better beyond doubt: by a margin the
    /// blocks agree on, not by a shade that noise, resampling or re-encoding could give either.
    pub fn decisive(&self) -> bool {
        self.margin <= -Self::MIN_MARGIN && self.margin <= -Self::MIN_Z * self.standard_error
    }
}

/// Direct affine alignment of a reduced preview (`small`, of a frame `frame_width` wide,
/// placed by `t` from frame to query pixels) on the query level of the same scale, over the
/// part of `region` it covers; the refined frame → query transform.
pub(super) fn align(
    q: &Query,
    small: &GrayImage,
    frame_width: u32,
    t: &Affine,
    region: &[u32; 4],
) -> Option<Affine> {
    let f = f64::from(frame_width) / f64::from(small.width().max(1));
    let (level, _) = q.level_for(t.scale() * f);
    let d = f64::from(1u32 << level);
    let small_to_frame = Affine::from_resampled(f);
    let query_to_level = Affine::from_resampled(d).inverse()?;
    let init = small_to_frame.then(t).then(&query_to_level);
    let sg = GradImage::new(small);
    let small_to_query = small_to_frame.then(t);
    let inside_region = |x: f32, y: f32| {
        let p = small_to_query.apply([f64::from(x), f64::from(y)]);
        inside(region, p[0], p[1])
    };
    let template = Template::new(&sg, 800, &inside_region);
    let r = refine::refine_affine(&template, q.grad(level), init, 20)?;
    let out = small_to_frame
        .inverse()?
        .then(&r.transform)
        .then(&Affine::from_resampled(d));
    // A refinement that wandered (a stretch no publication makes, or the frame moved by more
    // than a few reduced pixels) is not kept.
    let c = [
        f64::from(frame_width) / 2.0,
        f64::from(small.height()) * f / 2.0,
    ];
    let (a, b) = (t.apply(c), out.apply(c));
    let moved = (a[0] - b[0]).hypot(a[1] - b[1]);
    (r.ncc > MIN_NCC && out.anisotropy() <= 1.6 && moved <= 4.0 * d).then_some(out)
}

/// How well an aligned preview explains the published pixels.
#[derive(Clone, Copy, Debug)]
pub struct Agreement {
    /// Mean block correlation inside the agreeing region.
    pub ncc: f64,
    /// RMS difference (8-bit levels) inside the agreeing region after one whole-region gain and
    /// offset: the exact source leaves only re-encoding noise, another session of the same
    /// patient leaves its local changes and its different light.
    pub residual: f64,
    /// The agreeing region (query pixels).
    pub extent: [u32; 4],
}

/// Compare a reduced preview (`small`, of a preview `preview_width` pixels wide, aligned by
/// `t` from preview to query pixels) with the published pixels inside `region`, in 8×8
/// blocks of the reduced preview, sampling the query at the reduction closest to its scale.
pub fn agreement(
    small: &GrayImage,
    preview_width: u32,
    q: &Query,
    t: &Affine,
    region: &[u32; 4],
) -> Option<Agreement> {
    const B: u32 = 8;
    let (sw, sh) = small.dimensions();
    if sw < B || sh < B {
        return None;
    }
    let f = f64::from(preview_width) / f64::from(sw);
    let (level, img) = q.level_for(t.scale() * f);
    let d = f64::from(1u32 << level);
    let sraw = small.as_raw();
    // Small preview pixel → query pixel.
    let to_query = |x: f64, y: f64| t.apply([(x + 0.5) * f - 0.5, (y + 0.5) * f - 0.5]);
    // Per block: (x, y, moments of the published pixels against the preview's).
    let mut blocks: Vec<(u32, u32, Moments)> = Vec::new();
    for by in (0..sh / B).map(|i| i * B) {
        for bx in (0..sw / B).map(|i| i * B) {
            let mut st = Moments::default();
            for y in by..by + B {
                for x in bx..bx + B {
                    let p = to_query(f64::from(x), f64::from(y));
                    if !inside(region, p[0], p[1]) {
                        continue;
                    }
                    let Some(a) = bilinear(img, (p[0] + 0.5) / d - 0.5, (p[1] + 0.5) / d - 0.5)
                    else {
                        continue;
                    };
                    st.push(a, f64::from(sraw[(y * sw + x) as usize]));
                }
            }
            if st.n() >= f64::from(B * B) * 0.75 {
                blocks.push((bx, by, st));
            }
        }
    }
    let agree: Vec<&(u32, u32, Moments)> = blocks
        .iter()
        .filter(|b| b.2.ncc().is_some_and(|c| c >= 0.5))
        .collect();
    // A capture that explains the panel agrees over most of where it overlaps it; one that
    // shares a few textures with it does not.
    if agree.len() < 8 || agree.len() * 10 < blocks.len() * 3 {
        return None;
    }
    let x0 = agree.iter().map(|b| b.0).min().unwrap_or(0);
    let y0 = agree.iter().map(|b| b.1).min().unwrap_or(0);
    let x1 = agree.iter().map(|b| b.0 + B).max().unwrap_or(0);
    let y1 = agree.iter().map(|b| b.1 + B).max().unwrap_or(0);
    let within: Vec<&(u32, u32, Moments)> = blocks
        .iter()
        .filter(|b| b.0 >= x0 && b.0 < x1 && b.1 >= y0 && b.1 < y1)
        .collect();
    let nccs: Vec<f64> = within.iter().filter_map(|b| b.2.ncc()).collect();
    let ncc = nccs.iter().sum::<f64>() / nccs.len().max(1) as f64;
    // One gain and offset over the region (whole-frame colour is allowed), then the residual.
    let fit = Moments::sum(within.iter().map(|b| &b.2)).gain_offset();
    // Per block, the squared difference left by the region's gain and offset; the residual
    // is over the best 90 % of blocks, so an overlay (text, a watermark, a label) on part of
    // the panel does not drown the difference between the exact source and a look-alike.
    let mut sse: Vec<(f64, f64)> = within
        .iter()
        .map(|b| (b.2.mean_sq_residual(fit), b.2.n()))
        .collect();
    sse.sort_by(|a, b| a.0.total_cmp(&b.0));
    let keep = (sse.len() * 9).div_ceil(10).max(1);
    let (num, den) = sse[..keep.min(sse.len())]
        .iter()
        .fold((0.0, 0.0), |(s, m), &(e, k)| (s + e * k, m + k));
    let residual = (num / den.max(1.0)).sqrt();
    // The agreeing blocks' corners in the query, clipped to the region.
    let corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        .map(|(x, y)| to_query(f64::from(x) - 0.5, f64::from(y) - 0.5));
    let (mut ex0, mut ey0, mut ex1, mut ey1) = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for p in corners {
        ex0 = ex0.min(p[0]);
        ey0 = ey0.min(p[1]);
        ex1 = ex1.max(p[0]);
        ey1 = ey1.max(p[1]);
    }
    let r = region.map(f64::from);
    let (ex0, ey0) = (ex0.clamp(r[0], r[0] + r[2]), ey0.clamp(r[1], r[1] + r[3]));
    let (ex1, ey1) = (ex1.clamp(r[0], r[0] + r[2]), ey1.clamp(r[1], r[1] + r[3]));
    Some(Agreement {
        ncc,
        residual,
        extent: [
            ex0.round() as u32,
            ey0.round() as u32,
            (ex1 - ex0).round() as u32,
            (ey1 - ey0).round() as u32,
        ],
    })
}

/// Refine `t` (source pixels → target pixels, an affine map: a published crop may be
/// stretched) by direct alignment of `points` template points of `source` whose image under
/// `t` falls inside `panel` and outside every box of `exclude` (target pixels); None when the
/// aligned correlation stays at or below `min_ncc`.
#[allow(clippy::too_many_arguments)]
pub(super) fn refine_onto(
    source: &RgbImage,
    target: &GradImage,
    t: Affine,
    panel: &[u32; 4],
    exclude: &[[u32; 4]],
    points: usize,
    iterations: usize,
    min_ncc: f64,
) -> Option<Affine> {
    let sg = GradImage::new(&fingerprint::luma(source));
    let inside_panel = |x: f32, y: f32| {
        let p = t.apply([f64::from(x), f64::from(y)]);
        inside(panel, p[0], p[1]) && !exclude.iter().any(|b| inside(b, p[0], p[1]))
    };
    let template = Template::new(&sg, points, &inside_panel);
    let r = refine::refine_affine(&template, target, t, iterations)?;
    (r.ncc > min_ncc).then_some(r.transform)
}
