//! Block statistics of an aligned pair and how far each block stands from the panel's own
//! re-encoding noise.
//!
//! Three things can change in a block, and each is measured against what the rest of the
//! panel shows for blocks with as much texture, so that JPEG at quality 50, a resize, mild
//! sharpening or a slightly soft registration raise the bar for every block alike:
//! - **structure**: the variance of the difference from the expected pixels (after the
//!   whole-frame tone curves), against blocks of as much fine detail: cloning, healing,
//!   liquify, smoothing of textured skin;
//! - **shift**: the block's mean colour moved, per channel: local colour, cloning;
//! - **detail**: gradient energy lost relative to the panel's typical ratio: what tells
//!   smoothing from other changes.

use super::Aligned;

/// Block side in panel pixels.
pub const B: u32 = 16;
/// Pixels along the panel's border left out: resampling filters and JPEG pad there.
const EDGE: u32 = 3;
/// A level at or beyond these carries no evidence (clipped by the grade or the encoder).
pub(super) const LOW: f32 = 3.0;
pub(super) const HIGH: f32 = 252.0;
/// The least variance (levels²) and shift (levels) counted as noise, however clean the panel.
const VAR_FLOOR: f32 = 4.0;
const SHIFT_FLOOR: f32 = 1.0;
/// Gradient energy per pixel pair below which a block has no detail to lose.
const FLAT: f32 = 2.5;

/// What a block's pixels say.
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// Pixels of the block that are covered, inside the edge margin and unclipped.
    pub valid: u32,
    pub covered: u32,
    pub clipped: u32,
    /// Mean published − expected, per channel.
    pub shift: [f32; 3],
    /// Variance of the luma difference (published − expected) about its mean.
    pub var_d: f32,
    /// Mean absolute luma gradient per pixel pair, expected and published.
    pub grad_s: f32,
    pub grad_p: f32,
    /// Mean squared luma gradient of the expected pixels: misregistration and resampling
    /// errors grow with it.
    pub grad2_s: f32,
    /// The same per channel: a colour edge is where decoders' chroma upsampling differs.
    pub grad2_k: [f32; 3],
}

/// Why a block was not checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unchecked {
    /// Outside the source, or at the panel's border.
    Edge,
    /// Mostly clipped.
    Clipped,
}

impl Block {
    /// Whether the block carries evidence, or why not.
    pub fn checked(&self) -> Result<(), Unchecked> {
        let area = B * B;
        if self.covered < area / 2 {
            Err(Unchecked::Edge)
        } else if self.valid < area / 3 {
            Err(Unchecked::Clipped)
        } else {
            Ok(())
        }
    }

    /// Whether the source has detail here that smoothing could remove.
    pub fn textured(&self) -> bool {
        self.grad_s >= FLAT
    }
}

/// Statistics of every block of the aligned pair, row by row (`bw × bh`).
pub fn measure(a: &Aligned) -> (u32, u32, Vec<Block>) {
    let (bw, bh) = (a.w / B, a.h / B);
    let mut out = Vec::with_capacity((bw * bh) as usize);
    for by in 0..bh {
        for bx in 0..bw {
            out.push(block(a, bx * B, by * B));
        }
    }
    (bw, bh, out)
}

pub(super) fn luma(c: [f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// A pixel's expected and published colour, when it carries evidence.
fn usable(a: &Aligned, x: u32, y: u32) -> Option<([f32; 3], [f32; 3])> {
    if x < EDGE || y < EDGE || x + EDGE >= a.w || y + EDGE >= a.h {
        return None;
    }
    let i = (y * a.w + x) as usize;
    let (s, p) = (a.expected[i], a.published[i]);
    let ok = |c: &[f32; 3]| c.iter().all(|v| (LOW..=HIGH).contains(v));
    (s[0].is_finite() && ok(&s) && ok(&p)).then_some((s, p))
}

/// The unblurred luma steps from pixel `i` to pixel `j`: expected and published.
fn sharp_steps(a: &Aligned, i: usize, j: usize) -> (f32, f32) {
    let published = |k: usize| luma(a.sharp_published[k].map(f32::from));
    (
        (luma(a.sharp_expected[j]) - luma(a.sharp_expected[i])).abs(),
        (published(j) - published(i)).abs(),
    )
}

fn block(a: &Aligned, x0: u32, y0: u32) -> Block {
    let mut b = Block::default();
    let (mut sd, mut sdd) = (0f64, 0f64);
    let mut shift = [0f64; 3];
    let (mut gs, mut gp, mut gs2, mut pairs) = (0f64, 0f64, 0f64, 0u32);
    let mut gk = [0f64; 3];
    for y in y0..y0 + B {
        for x in x0..x0 + B {
            let i = (y * a.w + x) as usize;
            let inside = x >= EDGE && y >= EDGE && x + EDGE < a.w && y + EDGE < a.h;
            if !a.expected[i][0].is_finite() || !inside {
                continue;
            }
            b.covered += 1;
            let Some((s, p)) = usable(a, x, y) else {
                b.clipped += 1;
                continue;
            };
            b.valid += 1;
            let (ls, lp) = (f64::from(luma(s)), f64::from(luma(p)));
            (sd, sdd) = (sd + lp - ls, sdd + (lp - ls) * (lp - ls));
            for k in 0..3 {
                shift[k] += f64::from(p[k] - s[k]);
            }
            for (nx, ny) in [(x + 1, y), (x, y + 1)] {
                if nx >= x0 + B || ny >= y0 + B {
                    continue;
                }
                if let Some((s2, _)) = usable(a, nx, ny) {
                    let g = f64::from(luma(s2) - luma(s));
                    gs2 += g * g;
                    for k in 0..3 {
                        gk[k] += f64::from(s2[k] - s[k]).powi(2);
                    }
                    // Detail as the unblurred pixels hold it: the blur would hide its loss.
                    let (ds, dp) = sharp_steps(a, i, (ny * a.w + nx) as usize);
                    gs += f64::from(ds);
                    gp += f64::from(dp);
                    pairs += 1;
                }
            }
        }
    }
    if b.valid > 0 {
        let n = f64::from(b.valid);
        b.var_d = (sdd / n - (sd / n) * (sd / n)).max(0.0) as f32;
        b.shift = shift.map(|v| (v / n) as f32);
    }
    if pairs > 0 {
        b.grad_s = (gs / f64::from(pairs)) as f32;
        b.grad_p = (gp / f64::from(pairs)) as f32;
        b.grad2_s = (gs2 / f64::from(pairs)) as f32;
        b.grad2_k = gk.map(|v| (v / f64::from(pairs)) as f32);
    }
    b
}

/// Groups of blocks of like texture the noise is learnt in.
const GROUPS: usize = 16;

/// A noise level that grows with texture, learnt from the panel's blocks: the median value in
/// each group of blocks of like texture, non-decreasing, interpolated between groups and
/// extrapolated past the most textured group by a power law.
struct Trend {
    /// (texture, expected value), texture ascending.
    knots: Vec<(f32, f32)>,
    /// How the value grows with texture past the last group (value ∝ textureᵖ).
    power: f32,
}

impl Trend {
    fn fit(mut pairs: Vec<(f32, f32)>, floor: f32, power: f32) -> Self {
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let groups = GROUPS.min(pairs.len().max(1));
        let mut knots: Vec<(f32, f32)> = Vec::with_capacity(groups);
        for g in 0..groups {
            let part = &pairs[g * pairs.len() / groups..(g + 1) * pairs.len() / groups];
            if part.is_empty() {
                continue;
            }
            let mut v: Vec<f32> = part.iter().map(|p| p.1).collect();
            let key = part[part.len() / 2].0;
            let value = median(&mut v).max(floor);
            let value = knots.last().map_or(value, |k| value.max(k.1));
            knots.push((key, value));
        }
        if knots.is_empty() {
            knots.push((0.0, floor));
        }
        Trend { knots, power }
    }

    fn at(&self, key: f32) -> f32 {
        let k = &self.knots;
        match k.iter().position(|p| p.0 >= key) {
            None => {
                let (t, v) = k[k.len() - 1];
                v * (key / t.max(1e-3)).powf(self.power)
            }
            Some(0) => k[0].1,
            Some(i) => {
                let (a, b) = (k[i - 1], k[i]);
                let f = if b.0 > a.0 {
                    (key - a.0) / (b.0 - a.0)
                } else {
                    1.0
                };
                a.1 + (b.1 - a.1) * f
            }
        }
    }
}

/// How far a block stands out, each in units of its threshold (≥ 1: changed).
#[derive(Clone, Copy, Debug, Default)]
pub struct Score {
    pub structure: f32,
    pub shift: f32,
    /// Detail lost (only in textured blocks).
    pub detail: f32,
    /// Published detail relative to the panel's typical ratio.
    pub detail_ratio: f32,
}

impl Score {
    /// How far past its threshold the block's change is (structure or shift; detail loss alone
    /// is what JPEG does to fine texture everywhere).
    pub fn change(&self) -> f32 {
        self.structure.max(self.shift)
    }
}

/// Thresholds, in multiples of the noise of blocks like it.
const STRUCTURE: f32 = 8.0;
const SHIFT: f32 = 6.0;
/// Detail lost: a ratio below this fraction of the panel's typical one.
const DETAIL_LOST: f32 = 0.7;

/// Each block's score against the panel's noise (`None` for blocks without evidence).
pub fn score(blocks: &[Block]) -> Vec<Option<Score>> {
    let used: Vec<&Block> = blocks.iter().filter(|b| b.checked().is_ok()).collect();
    if used.len() < 12 {
        return vec![None; blocks.len()];
    }
    // Texture as the noise sees it: fine detail (resampling, JPEG and misregistration errors
    // grow with it), not a block's overall spread (a smooth gradient has plenty of that).
    let texture = |b: &Block| b.grad2_s;
    let residual = Trend::fit(
        used.iter().map(|b| (texture(b), b.var_d)).collect(),
        VAR_FLOOR,
        1.0,
    );
    let shifts: [Trend; 3] = std::array::from_fn(|k| {
        Trend::fit(
            used.iter()
                .map(|b| (b.grad2_k[k], b.shift[k].abs()))
                .collect(),
            SHIFT_FLOOR,
            0.5,
        )
    });
    let mut ratios: Vec<f32> = used
        .iter()
        .filter(|b| b.textured())
        .map(|b| b.grad_p / b.grad_s)
        .collect();
    let typical = if ratios.is_empty() {
        1.0
    } else {
        median(&mut ratios)
    };
    blocks
        .iter()
        .map(|b| {
            b.checked().ok()?;
            let t = texture(b);
            let shift = (0..3)
                .map(|k| b.shift[k].abs() / shifts[k].at(b.grad2_k[k]))
                .fold(0f32, f32::max);
            let ratio = if b.textured() {
                b.grad_p / b.grad_s / typical
            } else {
                1.0
            };
            Some(Score {
                structure: b.var_d / residual.at(t) / STRUCTURE,
                shift: shift / SHIFT,
                detail: if b.textured() {
                    DETAIL_LOST / ratio.max(1e-3)
                } else {
                    0.0
                },
                detail_ratio: ratio,
            })
        })
        .collect()
}

pub fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f32::total_cmp).1
}
