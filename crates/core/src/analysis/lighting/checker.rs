//! Finding a ColorChecker Classic 24 (or the Passport's classic page): square patches on a
//! regular lattice, matched to the reference colours in any of the eight orientations.
//!
//! 1. Patch candidates: small, square-ish uniform regions not touching the frame edge.
//! 2. Lattice: from a seed and two neighbours at roughly right angles, count the candidates
//!    that fall on the same lattice; keep the best, then fit a homography from lattice cells
//!    to the image (perspective).
//! 3. Placement: every 4×6 window of the lattice in every orientation is scored by how well
//!    its colours, white-balanced on the neutral patches, match the chart's chromaticities.

use std::collections::HashMap;

use super::config::CheckerDef;
use super::segment::{Segmentation, fit_quad};
use crate::analysis::frame::{Frame, Working};
use crate::analysis::geometry::{Homography, Pt, quad_angles, quad_sides};

/// A detected chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Corners of the 24-patch area in full-resolution pixels, in chart orientation:
    /// top-left (dark skin corner), top-right, bottom-right (black corner), bottom-left.
    pub quad: [Pt; 4],
    /// Linear RGB of each patch (median of its centre), in reference order.
    pub patches: [[f32; 3]; 24],
    /// Fraction of each patch sample at the encoding's limit.
    pub patch_clipped: [f32; 24],
    /// Patch centres in full-resolution pixels.
    pub centres: [Pt; 24],
    /// Mean chromaticity error of the match (lower is better).
    pub match_error: f64,
    /// The chart appears mirrored (a mirrored preview or flipped image).
    pub mirrored: bool,
    /// Linear luminance of the chart's frame on its left and right ends, for fall-off.
    pub frame_left_right: Option<(f64, f64)>,
}

#[derive(Clone, Copy, Debug)]
struct Cand {
    c: Pt,
    s: f64,
}

/// Chromaticity error above which a placement is not a ColorChecker.
pub(super) const MAX_MATCH_ERROR: f64 = 0.07;

/// Look for a ColorChecker.
pub fn detect(
    frame: &Frame<'_>,
    w: &Working,
    seg: &Segmentation,
    def: &CheckerDef,
) -> Option<Chart> {
    let total = f64::from(w.width * w.height);
    let cands: Vec<Cand> = seg
        .regions
        .iter()
        .filter(|r| r.len() >= 12 && (r.len() as f64) < 0.03 * total && !r.touches_border)
        .filter_map(|r| {
            let bw = f64::from(r.bbox[2] - r.bbox[0] + 1);
            let bh = f64::from(r.bbox[3] - r.bbox[1] + 1);
            if bw.max(bh) / bw.min(bh) > 2.5 || (r.len() as f64) < 0.4 * bw * bh {
                return None;
            }
            let fit = fit_quad(&r.pixels, &seg.labels, &[r.label], seg.width)?;
            let sides = quad_sides(&fit.quad);
            let squareish = fit.iou >= 0.75
                && quad_angles(&fit.quad)
                    .iter()
                    .all(|a| (45.0..=135.0).contains(a))
                && sides.iter().cloned().fold(0.0, f64::max)
                    / sides.iter().cloned().fold(f64::INFINITY, f64::min)
                    <= 2.2;
            squareish.then(|| Cand {
                c: r.centroid(w.width),
                s: fit.area.sqrt(),
            })
        })
        .collect();
    if cands.len() < 8 {
        return None;
    }
    // A scene may hold several lattices (the Passport's other page, tiles, a keyboard):
    // try the strongest few and keep the best colour match.
    lattices(&cands)
        .into_iter()
        .filter_map(|(cells, h)| place(frame, w, def, &cells, &h))
        .min_by(|a, b| a.match_error.total_cmp(&b.match_error))
}

type Cells = HashMap<(i32, i32), Pt>;

/// A patch sample: median linear colour and clipped fraction (`None` outside the frame).
type Sample = Option<([f32; 3], f32)>;

/// Up to four distinct lattices, strongest first, each refined to a homography from cells to
/// working-image positions.
fn lattices(cands: &[Cand]) -> Vec<(Cells, Homography)> {
    // Every hypothesis: (count, residual, origin, u, v, size).
    let mut hyps: Vec<(usize, f64, Pt, Pt, Pt, f64)> = Vec::new();
    for (ai, a) in cands.iter().enumerate() {
        let mut nb: Vec<(f64, usize)> = cands
            .iter()
            .enumerate()
            .filter(|(bi, b)| {
                let d = dist(a.c, b.c);
                *bi != ai && d >= 0.8 * a.s && d <= 2.4 * a.s && (0.67..=1.5).contains(&(b.s / a.s))
            })
            .map(|(bi, b)| (dist(a.c, b.c), bi))
            .collect();
        nb.sort_by(|x, y| x.0.total_cmp(&y.0));
        nb.truncate(6);
        let mut best_here: Option<(usize, f64, Pt, Pt, Pt, f64)> = None;
        for x in 0..nb.len() {
            for y in x + 1..nb.len() {
                let u = sub(cands[nb[x].1].c, a.c);
                let v = sub(cands[nb[y].1].c, a.c);
                let (lu, lv) = (norm(u), norm(v));
                let cosang = (u[0] * v[0] + u[1] * v[1]) / (lu * lv);
                if cosang.abs() > 0.5 || lu.max(lv) / lu.min(lv) > 1.8 {
                    continue;
                }
                let (count, resid) = lattice_score(cands, a, u, v);
                if best_here.is_none_or(|(bc, br, ..)| count > bc || (count == bc && resid < br)) {
                    best_here = Some((count, resid, a.c, u, v, a.s));
                }
            }
        }
        hyps.extend(best_here.filter(|h| h.0 >= 10));
    }
    hyps.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.total_cmp(&b.1)));
    let mut out: Vec<(Cells, Homography)> = Vec::new();
    let mut used: Vec<Vec<Pt>> = Vec::new();
    for (_, _, origin, u, v, s) in hyps {
        if out.len() >= 4 {
            break;
        }
        let Some((cells, h)) = refine(cands, origin, u, v, s) else {
            continue;
        };
        let pts: Vec<Pt> = cells.values().copied().collect();
        let overlaps = used.iter().any(|prev| {
            let shared = pts
                .iter()
                .filter(|p| prev.iter().any(|q| dist(**p, *q) < 1e-6))
                .count();
            shared * 2 > pts.len().min(prev.len())
        });
        if !overlaps {
            used.push(pts);
            out.push((cells, h));
        }
    }
    out
}

/// Assign candidates to cells of the affine lattice `origin + i·u + j·v`, then refine with a
/// homography twice.
fn refine(cands: &[Cand], origin: Pt, u: Pt, v: Pt, s: f64) -> Option<(Cells, Homography)> {
    let det = u[0] * v[1] - u[1] * v[0];
    let mut cells: Cells = HashMap::new();
    let mut resid_of: HashMap<(i32, i32), f64> = HashMap::new();
    for c in cands.iter().filter(|c| (0.6..=1.6).contains(&(c.s / s))) {
        let d = sub(c.c, origin);
        let qi = (d[0] * v[1] - d[1] * v[0]) / det;
        let qj = (u[0] * d[1] - u[1] * d[0]) / det;
        let (i, j) = (qi.round(), qj.round());
        let r = (qi - i).hypot(qj - j);
        if r < 0.22 && i.abs() <= 10.0 && j.abs() <= 10.0 {
            let key = (i as i32, j as i32);
            if resid_of.get(&key).is_none_or(|&old| r < old) {
                resid_of.insert(key, r);
                cells.insert(key, c.c);
            }
        }
    }
    let mut h = fit_cells(&cells)?;
    for _ in 0..2 {
        let hinv = fit_inverse(&cells)?;
        let mut next: Cells = HashMap::new();
        let mut rmin: HashMap<(i32, i32), f64> = HashMap::new();
        for c in cands.iter().filter(|c| (0.6..=1.6).contains(&(c.s / s))) {
            let q = hinv.apply(c.c);
            let (i, j) = (q[0].round(), q[1].round());
            let r = (q[0] - i).hypot(q[1] - j);
            if r < 0.25 && i.abs() <= 12.0 && j.abs() <= 12.0 {
                let key = (i as i32, j as i32);
                if rmin.get(&key).is_none_or(|&old| r < old) {
                    rmin.insert(key, r);
                    next.insert(key, c.c);
                }
            }
        }
        if next.len() < cells.len() {
            break;
        }
        cells = next;
        h = fit_cells(&cells)?;
    }
    Some((cells, h))
}

fn fit_cells(cells: &Cells) -> Option<Homography> {
    let (src, dst): (Vec<Pt>, Vec<Pt>) = cells
        .iter()
        .map(|(&(i, j), &p)| ([f64::from(i), f64::from(j)], p))
        .unzip();
    Homography::fit(&src, &dst)
}

fn fit_inverse(cells: &Cells) -> Option<Homography> {
    let (src, dst): (Vec<Pt>, Vec<Pt>) = cells
        .iter()
        .map(|(&(i, j), &p)| (p, [f64::from(i), f64::from(j)]))
        .unzip();
    Homography::fit(&src, &dst)
}

fn lattice_score(cands: &[Cand], a: &Cand, u: Pt, v: Pt) -> (usize, f64) {
    let det = u[0] * v[1] - u[1] * v[0];
    if det.abs() < 1e-9 {
        return (0, f64::INFINITY);
    }
    let mut cells: HashMap<(i64, i64), f64> = HashMap::new();
    for c in cands.iter().filter(|c| (0.6..=1.6).contains(&(c.s / a.s))) {
        let d = sub(c.c, a.c);
        let qi = (d[0] * v[1] - d[1] * v[0]) / det;
        let qj = (u[0] * d[1] - u[1] * d[0]) / det;
        let (i, j) = (qi.round(), qj.round());
        let r = (qi - i).hypot(qj - j);
        if r < 0.2 && i.abs() <= 8.0 && j.abs() <= 8.0 {
            let e = cells.entry((i as i64, j as i64)).or_insert(r);
            *e = e.min(r);
        }
    }
    let n = cells.len();
    (n, cells.values().sum::<f64>() / n.max(1) as f64)
}

/// The eight ways a 4-row × 6-column chart can lie on the lattice: `(row, col)` to cell
/// offset.
fn orient(k: usize, r: i32, c: i32) -> (i32, i32) {
    match k {
        0 => (c, r),
        1 => (r, 5 - c),
        2 => (5 - c, 3 - r),
        3 => (3 - r, c),
        4 => (5 - c, r),
        5 => (r, c),
        6 => (c, 3 - r),
        _ => (3 - r, 5 - c),
    }
}

fn place(
    frame: &Frame<'_>,
    w: &Working,
    def: &CheckerDef,
    cells: &Cells,
    h: &Homography,
) -> Option<Chart> {
    let (imin, imax) = cells
        .keys()
        .fold((i32::MAX, i32::MIN), |a, k| (a.0.min(k.0), a.1.max(k.0)));
    let (jmin, jmax) = cells
        .keys()
        .fold((i32::MAX, i32::MIN), |a, k| (a.0.min(k.1), a.1.max(k.1)));
    let factor = f64::from(w.factor);
    let reference = def.linear();
    let mut samples: HashMap<(i32, i32), Sample> = HashMap::new();
    let mut best: Option<(f64, usize, i32, i32)> = None;
    for k in 0..8 {
        // Extent of this orientation in lattice units.
        let (di, dj) = if matches!(k, 0 | 2 | 4 | 6) {
            (6, 4)
        } else {
            (4, 6)
        };
        for i0 in imin - di + 1..=imax {
            for j0 in jmin - dj + 1..=jmax {
                let observed = (0..4)
                    .flat_map(|r| (0..6).map(move |c| (r, c)))
                    .filter(|&(r, c)| {
                        let (oi, oj) = orient(k, r, c);
                        cells.contains_key(&(i0 + oi, j0 + oj))
                    })
                    .count();
                if observed < 12 {
                    continue;
                }
                let mut measured = [[0f32; 3]; 24];
                let mut ok = true;
                for (idx, slot) in measured.iter_mut().enumerate() {
                    let (r, c) = ((idx / 6) as i32, (idx % 6) as i32);
                    let (oi, oj) = orient(k, r, c);
                    let cell = (i0 + oi, j0 + oj);
                    let s = *samples
                        .entry(cell)
                        .or_insert_with(|| sample_cell(frame, h, cell, factor, 0.2));
                    match s {
                        Some((rgb, _)) => *slot = rgb,
                        None => {
                            ok = false;
                            break;
                        }
                    }
                }
                if !ok {
                    continue;
                }
                let err = colour_error(&measured, &reference);
                if best.is_none_or(|(e, ..)| err < e) {
                    best = Some((err, k, i0, j0));
                }
            }
        }
    }
    let (err, k, i0, j0) = best?;
    if err > MAX_MATCH_ERROR {
        return None;
    }
    let mut patches = [[0f32; 3]; 24];
    let mut patch_clipped = [0f32; 24];
    let mut centres = [[0f64; 2]; 24];
    for idx in 0..24 {
        let (r, c) = ((idx / 6) as i32, (idx % 6) as i32);
        let (oi, oj) = orient(k, r, c);
        let cell = (i0 + oi, j0 + oj);
        let (rgb, clip) = samples.get(&cell).copied().flatten()?;
        patches[idx] = rgb;
        patch_clipped[idx] = clip;
        let p = h.apply([f64::from(cell.0), f64::from(cell.1)]);
        centres[idx] = [p[0] * factor, p[1] * factor];
    }
    let corner = |r: f64, c: f64| {
        // Lattice position of a fractional (row, col) in chart coordinates.
        let (a, b) = orient_f(k, r, c);
        let p = h.apply([f64::from(i0) + a, f64::from(j0) + b]);
        [p[0] * factor, p[1] * factor]
    };
    let quad = [
        corner(-0.45, -0.45),
        corner(-0.45, 5.45),
        corner(3.45, 5.45),
        corner(3.45, -0.45),
    ];
    // The chart's frame between the rows, just outside the first and last columns.
    let frame_at = |c: f64| -> Option<f64> {
        let mut ys = Vec::new();
        for r in [0.5, 1.5, 2.5] {
            let (a, b) = orient_f(k, r, c);
            let p = h.apply([f64::from(i0) + a, f64::from(j0) + b]);
            let pitch = dist(
                h.apply([f64::from(i0) + a, f64::from(j0) + b]),
                h.apply([f64::from(i0) + a + 1.0, f64::from(j0) + b]),
            );
            if let Some((rgb, _)) =
                sample_point(frame, [p[0] * factor, p[1] * factor], pitch * factor * 0.05)
            {
                ys.push(f64::from(
                    0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2],
                ));
            }
        }
        (!ys.is_empty()).then(|| ys.iter().sum::<f64>() / ys.len() as f64)
    };
    let frame_left_right = match (frame_at(0.0), frame_at(5.0)) {
        (Some(l), Some(r)) => Some((l, r)),
        _ => None,
    };
    // Chart x (columns) right and y (rows) down keep their handedness in an unmirrored image.
    let (p0, px, py) = (corner(0.0, 0.0), corner(0.0, 1.0), corner(1.0, 0.0));
    let handed = (px[0] - p0[0]) * (py[1] - p0[1]) - (px[1] - p0[1]) * (py[0] - p0[0]);
    Some(Chart {
        quad,
        patches,
        patch_clipped,
        centres,
        match_error: err,
        mirrored: handed < 0.0,
        frame_left_right,
    })
}

/// `orient` for fractional chart coordinates.
fn orient_f(k: usize, r: f64, c: f64) -> (f64, f64) {
    match k {
        0 => (c, r),
        1 => (r, 5.0 - c),
        2 => (5.0 - c, 3.0 - r),
        3 => (3.0 - r, c),
        4 => (5.0 - c, r),
        5 => (r, c),
        6 => (c, 3.0 - r),
        _ => (3.0 - r, 5.0 - c),
    }
}

/// Median linear colour of the centre of a lattice cell, and its clipped fraction.
fn sample_cell(
    frame: &Frame<'_>,
    h: &Homography,
    cell: (i32, i32),
    factor: f64,
    half: f64,
) -> Option<([f32; 3], f32)> {
    let (i, j) = (f64::from(cell.0), f64::from(cell.1));
    let c = h.apply([i, j]);
    let pitch = dist(c, h.apply([i + 1.0, j])).min(dist(c, h.apply([i, j + 1.0])));
    sample_point(frame, [c[0] * factor, c[1] * factor], pitch * factor * half)
}

pub(super) fn sample_point(frame: &Frame<'_>, c: Pt, half: f64) -> Option<([f32; 3], f32)> {
    let half = half.max(1.0);
    let (x0, x1) = ((c[0] - half).floor(), (c[0] + half).ceil());
    let (y0, y1) = ((c[1] - half).floor(), (c[1] + half).ceil());
    if x0 < 0.0 || y0 < 0.0 || x1 >= f64::from(frame.width()) || y1 >= f64::from(frame.height()) {
        return None;
    }
    let step = (((x1 - x0) * (y1 - y0) / 400.0).sqrt().floor() as u32).max(1);
    let top = frame.max_code().saturating_sub(frame.max_code() / 255);
    let mut ch: [Vec<f32>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut clipped = 0u32;
    let mut n = 0u32;
    for y in (y0 as u32..=y1 as u32).step_by(step as usize) {
        for x in (x0 as u32..=x1 as u32).step_by(step as usize) {
            let l = frame.linear(x, y);
            for k in 0..3 {
                ch[k].push(l[k]);
            }
            if frame.raw(x, y).iter().any(|&v| v >= top) {
                clipped += 1;
            }
            n += 1;
        }
    }
    let med = |v: &mut Vec<f32>| {
        let mid = v.len() / 2;
        *v.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    Some((
        [med(&mut ch[0]), med(&mut ch[1]), med(&mut ch[2])],
        clipped as f32 / n.max(1) as f32,
    ))
}

/// Mean chromaticity distance after white-balancing on the mid neutrals; neutrals must also
/// get darker from white to black.
pub(super) fn colour_error(measured: &[[f32; 3]; 24], reference: &[[f32; 3]]) -> f64 {
    let clipped = |c: &[f32; 3]| c.iter().any(|&v| v >= 0.97);
    // White balance on the unclipped neutrals (mid grey first, then white or black if needed).
    let mut use_k: Vec<usize> = (19..=22).filter(|&k| !clipped(&measured[k])).collect();
    if use_k.len() < 2 {
        use_k.extend([23, 18].into_iter().filter(|&k| !clipped(&measured[k])));
    }
    if use_k.len() < 2 {
        return f64::INFINITY;
    }
    let mut gains = [0f64; 3];
    for (c, g) in gains.iter_mut().enumerate() {
        let (mut num, mut den) = (0f64, 0f64);
        for &k in &use_k {
            num += f64::from(reference[k][c]) * f64::from(measured[k][c]);
            den += f64::from(measured[k][c]).powi(2);
        }
        if den <= 1e-12 {
            return f64::INFINITY;
        }
        *g = num / den;
    }
    // Neutrals get darker from white to black; clipped ones may tie.
    let y = |c: &[f32; 3]| 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    for k in 18..23 {
        let (a, b) = (&measured[k], &measured[k + 1]);
        let ok = if clipped(a) || clipped(b) || k == 18 {
            y(a) >= y(b) * 0.98
        } else {
            y(a) > y(b) * 1.1
        };
        if !ok {
            return f64::INFINITY;
        }
    }
    let chroma = |c: [f64; 3]| {
        let s = (c[0] + c[1] + c[2]).max(1e-9);
        [c[0] / s, c[1] / s]
    };
    let (mut err, mut n) = (0.0, 0);
    for k in (0..24).filter(|&k| !clipped(&measured[k])) {
        let m = chroma([0, 1, 2].map(|c| f64::from(measured[k][c]) * gains[c]));
        let r = chroma([0, 1, 2].map(|c| f64::from(reference[k][c])));
        err += (m[0] - r[0]).hypot(m[1] - r[1]);
        n += 1;
    }
    if n < 6 {
        return f64::INFINITY;
    }
    err / f64::from(n)
}

fn sub(a: Pt, b: Pt) -> Pt {
    [a[0] - b[0], a[1] - b[1]]
}
fn norm(a: Pt) -> f64 {
    a[0].hypot(a[1])
}
fn dist(a: Pt, b: Pt) -> f64 {
    norm(sub(a, b))
}
