//! Evidence in a small card's outline: a card stands out from what lies around it on every
//! side, and its edges end at its corners. A patch of background seen between things in front
//! of it is uniform and four-sided too, but its sides are those things' edges, which run on.

use crate::analysis::color::{chromaticity, chromaticity_distance, luminance};
use crate::analysis::frame::Working;
use crate::analysis::geometry::{Pt, offset_quad};

/// Pairs of points 2 px inside and 2 px outside side `i` of `outline` (TL, TR, BR, BL, working
/// pixels), spaced about a pixel apart from `t0` to `t1` (in units of the side's length from
/// its first corner; below 0 or above 1 is the side's line beyond its corners).
fn across(outline: &[Pt; 4], i: usize, t0: f64, t1: f64) -> Vec<(Pt, Pt)> {
    let (inner, outer) = (offset_quad(outline, -2.0), offset_quad(outline, 2.0));
    let j = (i + 1) % 4;
    let len = (outline[j][0] - outline[i][0]).hypot(outline[j][1] - outline[i][1]);
    let lerp = |a: Pt, b: Pt, t: f64| [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
    let n = ((len * (t1 - t0)).ceil() as usize).max(3);
    (0..n)
        .map(|k| {
            let t = t0 + (t1 - t0) * (k as f64 + 0.5) / n as f64;
            (lerp(inner[i], inner[j], t), lerp(outer[i], outer[j], t))
        })
        .collect()
}

fn at(w: &Working, p: Pt) -> Option<[f32; 3]> {
    let (x, y) = (p[0].floor(), p[1].floor());
    (x >= 0.0 && y >= 0.0 && x < f64::from(w.width) && y < f64::from(w.height))
        .then(|| w.rgb[(y as u32 * w.width + x as u32) as usize])
}

fn log_y(c: [f32; 3]) -> f64 {
    f64::from(luminance(c)).max(1e-5).ln()
}

/// Whether two linear colours differ visibly: luminance by more than 12 %, or chromaticity.
fn differs(a: [f32; 3], b: [f32; 3]) -> bool {
    (log_y(a) - log_y(b)).abs() > 0.12
        || chromaticity_distance(chromaticity(a), chromaticity(b)) > 0.015
}

/// The smallest, over the four sides, of the fraction of the side's middle 70 % along which
/// the pixels just inside differ from those just outside.
pub(super) fn weakest_side(w: &Working, outline: &[Pt; 4]) -> f64 {
    (0..4)
        .map(|i| {
            let seen: Vec<bool> = across(outline, i, 0.15, 0.85)
                .into_iter()
                .filter_map(|(a, b)| Some(differs(at(w, a)?, at(w, b)?)))
                .collect();
            seen.iter().filter(|d| **d).count() as f64 / seen.len().max(1) as f64
        })
        .fold(1.0, f64::min)
}

/// Mean step in log luminance across side `i` (outside minus inside) from `t0` to `t1`.
fn step(w: &Working, outline: &[Pt; 4], i: usize, t0: f64, t1: f64) -> f64 {
    let v: Vec<f64> = across(outline, i, t0, t1)
        .into_iter()
        .filter_map(|(a, b)| Some(log_y(at(w, b)?) - log_y(at(w, a)?)))
        .collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// How many sides of `outline` are the edges of something else: a clear step across the side's
/// middle that continues, the same way and at least half as strong, along the side's line
/// beyond each corner (from a fifth to half of its length past it). Past a card's corners the
/// line crosses only background, whose steps come and go.
pub(super) fn edges_running_on(w: &Working, outline: &[Pt; 4]) -> usize {
    (0..4)
        .filter(|&i| {
            let mid = step(w, outline, i, 0.15, 0.85);
            mid.abs() > 0.1
                && [(-0.5, -0.2), (1.2, 1.5)].iter().all(|&(t0, t1)| {
                    let e = step(w, outline, i, t0, t1);
                    e.signum() == mid.signum() && e.abs() >= 0.5 * mid.abs()
                })
        })
        .count()
}
