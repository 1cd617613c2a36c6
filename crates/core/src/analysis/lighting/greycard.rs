//! Finding a neutral grey card: a uniform, low-saturation quadrilateral fully inside the frame,
//! tilted in perspective, possibly with a light gradient or a shadow across it.

use std::collections::HashSet;

use super::config::GreyCardDef;
use super::segment::{Region, Segmentation, fit_quad};
use crate::analysis::color::{chromaticity, chromaticity_distance, saturation};
use crate::analysis::frame::Working;
use crate::analysis::geometry::{Pt, quad_angles, quad_sides};

/// A detected card.
#[derive(Clone, Debug)]
pub struct CardCandidate {
    /// Corners in full-resolution pixels, TL, TR, BR, BL.
    pub quad: [Pt; 4],
    /// Working-image labels of the regions that make up the card.
    pub labels: Vec<u32>,
    /// When a shadow splits the card: the label of its lit part and how much darker the rest
    /// is, in EV.
    pub lit: Option<(u32, f64, f64)>,
    pub area_fraction: f64,
    pub iou: f64,
    pub saturation: f64,
}

/// Why a region is not the card, ranked by how card-like the region was.
#[derive(Clone, Debug, PartialEq)]
pub enum Rejection {
    /// A small candidate that does not stand out from its surroundings all around: a patch
    /// of background framed by other things, not a card.
    NotOutlined {
        fraction: f64,
        weakest: f64,
    },
    /// A small candidate whose sides are the edges of other things, running on past its
    /// corners: background seen between objects, not a card.
    Framed {
        fraction: f64,
        sides: usize,
    },
    TouchesBorder {
        fraction: f64,
    },
    NotQuad {
        fraction: f64,
        iou: f64,
    },
    TooSmall {
        fraction: f64,
        needed: f64,
    },
    Saturated {
        saturation: f64,
        limit: f64,
    },
    Clipped {
        fraction: f64,
    },
    TooDark,
    NotUniform {
        residual: f64,
    },
    /// Several regions of the frame look just like it: tiles, bricks or panels, not a card.
    Repeated {
        count: usize,
    },
}

impl Rejection {
    fn rank(&self) -> u8 {
        match self {
            Rejection::TouchesBorder { .. } => 1,
            Rejection::NotQuad { .. } => 2,
            Rejection::TooSmall { .. } => 3,
            Rejection::NotUniform { .. } => 4,
            Rejection::Saturated { .. } | Rejection::Clipped { .. } | Rejection::TooDark => 5,
            Rejection::Repeated { .. } => 6,
            Rejection::NotOutlined { .. } | Rejection::Framed { .. } => 3,
        }
    }

    /// Sentence for the report.
    pub fn describe(&self) -> String {
        match self {
            Rejection::TouchesBorder { fraction } => format!(
                "a uniform area of {:.0} % of the frame touches the frame edge (a wall or background, not a card)",
                fraction * 100.0
            ),
            Rejection::NotQuad { fraction, iou } => format!(
                "a uniform area of {:.1} % of the frame is not a quadrilateral (fits {:.0} %)",
                fraction * 100.0,
                iou * 100.0
            ),
            Rejection::TooSmall { fraction, needed } => format!(
                "a card-like quadrilateral covers only {:.2} % of the frame (needs {:.1} %): move the card closer",
                fraction * 100.0,
                needed * 100.0
            ),
            Rejection::Saturated { saturation, limit } => format!(
                "the candidate is too saturated to be a neutral card (saturation {saturation:.2}, limit {limit:.2})"
            ),
            Rejection::Clipped { fraction } => format!(
                "the candidate is clipped ({:.0} % of it at the sensor's limit): lower the exposure",
                fraction * 100.0
            ),
            Rejection::TooDark => "the candidate is too dark to measure".into(),
            Rejection::NotOutlined { fraction, weakest } => format!(
                "a small uniform quadrilateral ({:.2} % of the frame) shows an edge against its surroundings along only {:.0} % of one side: a patch of background, not a card",
                fraction * 100.0,
                weakest * 100.0
            ),
            Rejection::Framed { fraction, sides } => format!(
                "a small uniform quadrilateral ({:.2} % of the frame) is framed by the edges of other things ({sides} of its sides run on past its corners): background seen between objects, not a card",
                fraction * 100.0
            ),
            Rejection::Repeated { count } => format!(
                "a card-like quadrilateral has {count} look-alikes in the frame (of its size, shade and colour: tiles, bricks or panels), so it cannot be told from them: put the card against a plain background"
            ),
            Rejection::NotUniform { residual } => format!(
                "the candidate is not uniform enough (residual {:.0} % after removing the light gradient)",
                residual * 100.0
            ),
        }
    }
}

/// The outcome: the card, or the best reasons there is none.
pub type Detection = Result<CardCandidate, Vec<Rejection>>;

const MIN_IOU: f64 = 0.88;

/// Below this fraction of the frame a uniform quadrilateral is not plainly a card: it must
/// also be twice as neutral as a large one may be (half the saturation limit: a cast of about
/// 15 %), stand out from its surroundings on every side, and not be framed by the edges of
/// other things.
const OUTLINED_BELOW: f64 = 0.01;
/// The fraction of each side's length along which a small candidate must differ from what
/// lies just outside it.
const MIN_OUTLINE: f64 = 0.5;
/// A small candidate with this many sides that are other things' edges running on past its
/// corners is background between objects (measured: 2 of 111 small cards on real photos have
/// 3, a patch of sky framed by a camera, a chin and a tripod has 3).
const FRAMED: usize = 3;

/// A candidate with this many look-alikes in the frame is part of a pattern.
const REPEATED: usize = 2;

/// Regions elsewhere in the frame that look like the card made of `labels`: about its size
/// (half to twice its pixels), its brightness (within 0.15 in log luminance) and its colour.
/// A card is one of a kind; bricks, tiles and panels come in rows.
fn look_alikes(seg: &Segmentation, labels: &[u32]) -> usize {
    let parts: Vec<&Region> = seg
        .regions
        .iter()
        .filter(|r| labels.contains(&r.label))
        .collect();
    let n: usize = parts.iter().map(|r| r.len()).sum();
    let Some(main) = parts.iter().max_by_key(|r| r.len()) else {
        return 0;
    };
    let c = chromaticity(main.mean_rgb);
    seg.regions
        .iter()
        .filter(|r| !labels.contains(&r.label))
        .filter(|r| (n / 2..=n * 2).contains(&r.len()))
        .filter(|r| (r.mean_log_y - main.mean_log_y).abs() < 0.15)
        .filter(|r| chromaticity_distance(chromaticity(r.mean_rgb), c) < 0.015)
        .count()
}

/// Look for the grey card in a segmented working image.
pub fn detect(w: &Working, seg: &Segmentation, def: &GreyCardDef) -> Detection {
    let total = f64::from(w.width * w.height);
    let small_floor = def.min_area_fraction * 0.15;
    let by_label: std::collections::HashMap<u32, &Region> =
        seg.regions.iter().map(|r| (r.label, r)).collect();
    let mut candidates: Vec<Vec<&Region>> = seg
        .regions
        .iter()
        .filter(|r| r.len() as f64 / total >= small_floor)
        .map(|r| vec![r])
        .collect();
    // Pairs split by a shadow edge: adjacent, same chromaticity, different brightness.
    for (a, b) in adjacent_pairs(seg, small_floor * total) {
        let (ra, rb) = (by_label[&a], by_label[&b]);
        let dc = chromaticity_distance(chromaticity(ra.mean_rgb), chromaticity(rb.mean_rgb));
        if dc < 0.02 && (ra.mean_log_y - rb.mean_log_y).abs() < 2.2 {
            candidates.push(vec![ra, rb]);
        }
    }
    let mut found: Vec<(f64, CardCandidate)> = Vec::new();
    let mut rejections: Vec<Rejection> = Vec::new();
    for parts in candidates {
        match evaluate(w, seg, def, &parts, total) {
            Ok(scored) => found.push(scored),
            Err(Some(r)) => rejections.push(r),
            Err(None) => {}
        }
    }
    // The best card-like candidate that is one of a kind.
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, c) in found {
        let count = look_alikes(seg, &c.labels);
        if count < REPEATED {
            return Ok(c);
        }
        rejections.push(Rejection::Repeated { count });
    }
    rejections.sort_by_key(|r| std::cmp::Reverse(r.rank()));
    let mut seen = HashSet::new();
    rejections.retain(|r| seen.insert(r.rank()));
    rejections.truncate(2);
    Err(rejections)
}

fn adjacent_pairs(seg: &Segmentation, min_pixels: f64) -> Vec<(u32, u32)> {
    let big: HashSet<u32> = seg
        .regions
        .iter()
        .filter(|r| r.len() as f64 >= min_pixels)
        .map(|r| r.label)
        .collect();
    let mut pairs = HashSet::new();
    let (w, h) = (seg.width, seg.height);
    for y in 0..h {
        for x in 0..w {
            let a = seg.labels[(y * w + x) as usize];
            if !big.contains(&a) {
                continue;
            }
            // Neighbours across a thin edge (regions stop a pixel or two short of an edge).
            for d in 1..=6 {
                for (nx, ny) in [(x + d, y), (x, y + d)] {
                    if nx < w && ny < h {
                        let b = seg.labels[(ny * w + nx) as usize];
                        if b != a && big.contains(&b) {
                            pairs.insert((a.min(b), a.max(b)));
                        }
                    }
                }
            }
        }
    }
    let mut v: Vec<_> = pairs.into_iter().collect();
    v.sort_unstable();
    v
}

type Eval = Result<(f64, CardCandidate), Option<Rejection>>;

fn evaluate(
    w: &Working,
    seg: &Segmentation,
    def: &GreyCardDef,
    parts: &[&Region],
    total: f64,
) -> Eval {
    let n: usize = parts.iter().map(|r| r.len()).sum();
    let fraction = n as f64 / total;
    if parts.iter().any(|r| r.touches_border) {
        return Err(
            (fraction >= def.min_area_fraction).then_some(Rejection::TouchesBorder { fraction })
        );
    }
    let labels: Vec<u32> = parts.iter().map(|r| r.label).collect();
    let pixels: Vec<u32> = parts
        .iter()
        .flat_map(|r| r.pixels.iter().copied())
        .collect();
    // Cheap shape screen before the hull: a quad tilted by any angle fills at least a third of
    // its bounding box.
    let bb = parts.iter().fold([u32::MAX, u32::MAX, 0, 0], |b, r| {
        [
            b[0].min(r.bbox[0]),
            b[1].min(r.bbox[1]),
            b[2].max(r.bbox[2]),
            b[3].max(r.bbox[3]),
        ]
    });
    let bb_area = f64::from((bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1));
    if (n as f64) < 0.33 * bb_area {
        return Err(
            (fraction >= def.min_area_fraction).then_some(Rejection::NotQuad {
                fraction,
                iou: n as f64 / bb_area,
            }),
        );
    }
    let Some(fit) = fit_quad(&pixels, &seg.labels, &labels, seg.width) else {
        return Err(None);
    };
    let angles = quad_angles(&fit.quad);
    let sides = quad_sides(&fit.quad);
    let shape_ok = fit.iou >= MIN_IOU
        && angles.iter().all(|a| (50.0..=130.0).contains(a))
        && ratio(sides[0], sides[2]) <= 2.0
        && ratio(sides[1], sides[3]) <= 2.0
        && ratio(sides[0] + sides[2], sides[1] + sides[3]) <= 3.0;
    if !shape_ok {
        return Err(
            (fraction >= def.min_area_fraction).then_some(Rejection::NotQuad {
                fraction,
                iou: fit.iou,
            }),
        );
    }
    // Mean colour, clipping, darkness.
    let mut sum = [0f64; 3];
    let mut clip = 0f64;
    for &p in &pixels {
        let c = w.rgb[p as usize];
        for k in 0..3 {
            sum[k] += f64::from(c[k]);
        }
        clip += f64::from(w.clipped[p as usize]);
    }
    let mean = sum.map(|v| (v / n as f64) as f32);
    let sat = f64::from(saturation(mean));
    let clipped = clip / n as f64;
    if clipped > 0.02 {
        return Err(Some(Rejection::Clipped { fraction: clipped }));
    }
    let y = 0.2126 * f64::from(mean[0]) + 0.7152 * f64::from(mean[1]) + 0.0722 * f64::from(mean[2]);
    if y < 0.004 {
        return Err(Some(Rejection::TooDark));
    }
    if sat > def.max_saturation {
        return Err(Some(Rejection::Saturated {
            saturation: sat,
            limit: def.max_saturation,
        }));
    }
    // The flat-only segmentation stops short of the card's edge: the card's own area is that
    // of the outline restored to it.
    let outline = crate::analysis::geometry::offset_quad(&fit.quad, super::segment::FLAT_RIM);
    let card_fraction = crate::analysis::geometry::polygon_area(&outline) / total;
    if card_fraction < def.min_area_fraction {
        return Err(Some(Rejection::TooSmall {
            fraction: card_fraction,
            needed: def.min_area_fraction,
        }));
    }
    // The smaller the card, the more its outline must show: below the size at which a
    // uniform quadrilateral is plainly a card, it must stand out from what lies outside it
    // along every side.
    if card_fraction < OUTLINED_BELOW {
        if sat > def.max_saturation / 2.0 {
            return Err(Some(Rejection::Saturated {
                saturation: sat,
                limit: def.max_saturation / 2.0,
            }));
        }
        let weakest = super::outline::weakest_side(w, &outline);
        if weakest < MIN_OUTLINE {
            return Err(Some(Rejection::NotOutlined {
                fraction: card_fraction,
                weakest,
            }));
        }
        let running = super::outline::edges_running_on(w, &outline);
        if running >= FRAMED {
            return Err(Some(Rejection::Framed {
                fraction: card_fraction,
                sides: running,
            }));
        }
    }
    // Uniformity of each part after removing a plane (the light gradient).
    for r in parts {
        let res = plane_residual(w, &r.pixels);
        if res > 0.08 {
            return Err(Some(Rejection::NotUniform { residual: res }));
        }
    }
    let lit = if parts.len() > 1 {
        let lit = parts
            .iter()
            .filter(|r| r.len() as f64 >= 0.2 * n as f64)
            .max_by(|a, b| a.mean_log_y.total_cmp(&b.mean_log_y));
        lit.map(|l| {
            let lit_frac = l.len() as f64 / n as f64;
            let dark = parts
                .iter()
                .filter(|r| r.label != l.label)
                .map(|r| r.mean_log_y)
                .fold(f32::INFINITY, f32::min);
            (
                l.label,
                lit_frac,
                f64::from(l.mean_log_y - dark) / std::f64::consts::LN_2,
            )
        })
    } else {
        None
    };
    let f = f64::from(w.factor);
    let quad = outline.map(|p| [p[0] * f, p[1] * f]);
    let score = fit.iou * fraction.sqrt() * (1.0 - sat) * if parts.len() > 1 { 0.9 } else { 1.0 };
    Ok((
        score,
        CardCandidate {
            quad,
            labels,
            lit,
            area_fraction: card_fraction,
            iou: fit.iou,
            saturation: sat,
        },
    ))
}

fn ratio(a: f64, b: f64) -> f64 {
    a.max(b) / a.min(b).max(1e-9)
}

/// RMS of log-luminance around the best-fitting plane.
fn plane_residual(w: &Working, pixels: &[u32]) -> f64 {
    // Normal equations for v = a + b x + c y.
    let mut m = [[0f64; 3]; 3];
    let mut rhs = [0f64; 3];
    let mut vals = Vec::with_capacity(pixels.len());
    for &p in pixels {
        let c = w.rgb[p as usize];
        let v = f64::from(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])
            .max(1e-5)
            .ln();
        let (x, y) = (f64::from(p % w.width), f64::from(p / w.width));
        let row = [1.0, x, y];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += row[i] * row[j];
            }
            rhs[i] += row[i] * v;
        }
        vals.push((x, y, v));
    }
    let mm = nalgebra::Matrix3::from_row_slice(&[
        m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2],
    ]);
    let Some(sol) = mm
        .lu()
        .solve(&nalgebra::Vector3::new(rhs[0], rhs[1], rhs[2]))
    else {
        return 0.0;
    };
    let ss: f64 = vals
        .iter()
        .map(|(x, y, v)| (v - (sol[0] + sol[1] * x + sol[2] * y)).powi(2))
        .sum();
    (ss / vals.len().max(1) as f64).sqrt()
}
