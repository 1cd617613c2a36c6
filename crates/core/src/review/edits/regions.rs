//! Regions of changed blocks and what changed in them.

use super::blocks::{self, B, Block, Score};
use super::{Aligned, EditKind};

/// A block at least this far past its threshold starts a region …
const SEED: f32 = 1.0;
/// … which takes in neighbours at least this far.
const GROW: f32 = 0.6;
/// A block's score counts at most this much towards its region's evidence (one wild block is
/// not a region).
const CAP: f32 = 6.0;
/// Evidence a region needs to be reported, and to be certain.
const REPORT: f32 = 2.5;
const CERTAIN: f32 = 6.0;

/// A region of changed blocks.
#[derive(Clone, Debug)]
pub struct Found {
    pub kind: EditKind,
    /// Block coordinates: x0, y0, x1, y1 (exclusive).
    pub block_box: [u32; 4],
    pub blocks: u32,
    pub evidence: f32,
    pub detail_ratio: f32,
    pub certain: bool,
}

/// Changed regions of the panel (`bw` blocks per row), strongest first.
pub fn find(a: &Aligned, measured: &[Block], scores: &[Option<Score>], bw: u32) -> Vec<Found> {
    let level = |i: usize| scores[i].map_or(0.0, |s| s.change());
    let mut seen = vec![false; scores.len()];
    let mut out = Vec::new();
    let mut laids = Vec::new();
    for start in 0..scores.len() {
        if seen[start] || level(start) < SEED {
            continue;
        }
        let members = grow(start, &mut seen, bw, |i| level(i) >= GROW);
        let evidence: f32 = members.iter().map(|&i| level(i).min(CAP)).sum();
        if evidence < REPORT {
            continue;
        }
        let block_box = bounds(&members, bw);
        let laid = overlay(a, &members, bw, block_box);
        let kind = kind_of(measured, scores, &members, &laid);
        let mut ratios: Vec<f32> = members
            .iter()
            .filter(|&&i| measured[i].textured())
            .filter_map(|&i| scores[i].map(|s| s.detail_ratio))
            .collect();
        out.push(Found {
            kind,
            block_box,
            blocks: members.len() as u32,
            evidence,
            detail_ratio: if ratios.is_empty() {
                1.0
            } else {
                blocks::median(&mut ratios)
            },
            certain: evidence >= CERTAIN && members.len() >= 2,
        });
        laids.push(laid);
    }
    same_overlay(&mut out, &laids);
    beside_overlays(&mut out);
    out
}

/// A blend without hard edges in the colour of one of the panel's overlays is more of that
/// overlay (a watermark over light skin steps by a few levels only).
fn same_overlay(found: &mut [Found], laids: &[Laid]) {
    let overlays: Vec<&Laid> = found
        .iter()
        .zip(laids)
        .filter(|(f, _)| f.kind == EditKind::Overlay)
        .map(|(_, l)| l)
        .collect();
    for (f, l) in found.iter_mut().zip(laids) {
        if f.kind != EditKind::Overlay && l.blend && overlays.iter().any(|o| o.shares_colour(l)) {
            f.kind = EditKind::Overlay;
            f.certain = false;
        }
    }
}

/// A change that touches an overlay is the overlay's edge or what its compression did around
/// it; one on an overlay's line between two of its parts is a caption's letters where they
/// barely change a light background: the pixels there cannot tell.
fn beside_overlays(found: &mut [Found]) {
    let overlays: Vec<[u32; 4]> = found
        .iter()
        .filter(|f| f.kind == EditKind::Overlay)
        .map(|f| f.block_box)
        .collect();
    for f in found.iter_mut().filter(|f| f.kind != EditKind::Overlay) {
        let b = f.block_box;
        let touches = overlays
            .iter()
            .any(|o| b[0] <= o[2] && o[0] <= b[2] && b[1] <= o[3] && o[1] <= b[3]);
        if touches || on_a_line(b, &overlays) {
            f.kind = EditKind::Overlay;
            f.certain = false;
        }
    }
}

/// Blocks between the parts of one line of text.
const LINE_GAP: u32 = 3;

/// Whether `b` lies on the rows of an overlay to its left and one to its right, each within
/// [`LINE_GAP`] blocks of it.
fn on_a_line(b: [u32; 4], overlays: &[[u32; 4]]) -> bool {
    let rows = |o: &&[u32; 4]| o[1] <= b[1] && b[3] <= o[3];
    let left = overlays
        .iter()
        .filter(rows)
        .any(|o| o[2] <= b[0] && b[0] - o[2] <= LINE_GAP);
    let right = overlays
        .iter()
        .filter(rows)
        .any(|o| b[2] <= o[0] && o[0] - b[2] <= LINE_GAP);
    left && right
}

/// The 4-connected blocks reachable from `start` through blocks that `take`.
fn grow(start: usize, seen: &mut [bool], bw: u32, take: impl Fn(usize) -> bool) -> Vec<usize> {
    let bh = seen.len() as u32 / bw;
    let mut stack = vec![start];
    seen[start] = true;
    let mut members = Vec::new();
    while let Some(i) = stack.pop() {
        members.push(i);
        let (x, y) = (i as u32 % bw, i as u32 / bw);
        let around = [
            (x > 0).then(|| i - 1),
            (x + 1 < bw).then(|| i + 1),
            (y > 0).then(|| i - bw as usize),
            (y + 1 < bh).then(|| i + bw as usize),
        ];
        for j in around.into_iter().flatten() {
            if !seen[j] && take(j) {
                seen[j] = true;
                stack.push(j);
            }
        }
    }
    members
}

fn bounds(members: &[usize], bw: u32) -> [u32; 4] {
    let xs = || members.iter().map(|&i| i as u32 % bw);
    let ys = || members.iter().map(|&i| i as u32 / bw);
    [
        xs().min().unwrap_or(0),
        ys().min().unwrap_or(0),
        xs().max().unwrap_or(0) + 1,
        ys().max().unwrap_or(0) + 1,
    ]
}

/// Smoothing when most of the region's changed blocks lost detail (a blur also moves the
/// means beside edges); an overlay when the
/// changed pixels are a flat colour laid over the picture; otherwise a local change.
fn kind_of(
    measured: &[Block],
    scores: &[Option<Score>],
    members: &[usize],
    laid: &Laid,
) -> EditKind {
    if laid.hard {
        return EditKind::Overlay;
    }
    let (mut smooth, mut other) = (0, 0);
    for &i in members {
        let Some(s) = scores[i] else { continue };
        if s.change() < GROW {
            continue;
        }
        if measured[i].textured() && s.detail >= 1.0 {
            smooth += 1;
        } else {
            other += 1;
        }
    }
    if smooth > other {
        EditKind::Smoothing
    } else {
        EditKind::LocalChange
    }
}

/// A change that is over this distance (in levels, RGB) from the expected colour counts.
const CHANGED: f32 = 14.0;
/// Fraction of changed pixels a blend with one colour must explain …
const EXPLAINED: f32 = 0.75;
/// … at one opacity (within ±0.15) for most of them.
const ONE_OPACITY: f32 = 0.6;

/// Whether a region is an overlay: most of its blocks' changes are one colour laid over the
/// picture ([`blend`]; each block its own colour and opacity, so a caption over a face and a
/// shirt, or a watermark across the frame, is seen as one), with the hard edges of something
/// laid on rather than feathered in ([`hard_edged`]).
pub fn overlay(a: &Aligned, members: &[usize], bw: u32, block_box: [u32; 4]) -> Laid {
    let mut colours: Vec<[f32; 3]> = Vec::new();
    let mut undecided: Vec<Vec<Change>> = Vec::new();
    let (mut judged, mut blended) = (0, 0);
    for &i in members {
        let (x, y) = (i as u32 % bw, i as u32 / bw);
        let pixels = changed_pixels(a, [x, y, x + 1, y + 1]);
        match blend(&pixels) {
            None => {}
            Some(Some(colour)) => {
                judged += pixels.len();
                blended += pixels.len();
                if !colours.iter().any(|c| norm(sub(*c, colour)) < CHANGED) && colours.len() < 4 {
                    colours.push(colour);
                }
            }
            Some(None) => {
                judged += pixels.len();
                undecided.push(pixels);
            }
        }
    }
    // A block whose own fit went astray (a few strokes among their compression halo) may
    // still be explained by a colour the region's other blocks agree on — only where they
    // already mostly say so: retouching leaves a few blocks that look like a flat colour, not
    // a third of them.
    if blended as f32 >= AGREED * judged as f32 {
        blended += undecided
            .iter()
            .filter(|p| {
                colours
                    .iter()
                    .any(|&c| blends_with(p, c) || opaque_with(p, c))
            })
            .map(Vec::len)
            .sum::<usize>();
    }
    let blend = judged > 0 && blended as f32 >= BLENDED * judged as f32;
    Laid {
        blend,
        hard: hard_edged(a, block_box, &colours, blend),
        colours,
    }
}

/// What a region's changes say of an overlay.
#[derive(Clone, Debug, Default)]
pub struct Laid {
    /// Most of its blocks are one colour laid over the picture …
    pub blend: bool,
    /// … with hard edges: an overlay.
    pub hard: bool,
    /// The colours its blocks were laid in.
    pub colours: Vec<[f32; 3]>,
}

impl Laid {
    /// Whether it shares a colour with `other`: the same caption or watermark, elsewhere
    /// over a lighter part of the picture (where its edges are soft).
    fn shares_colour(&self, other: &Laid) -> bool {
        self.colours
            .iter()
            .any(|c| other.colours.iter().any(|o| norm(sub(*c, *o)) < CHANGED))
    }
}

/// A change at least this large (levels) right beside an unchanged pixel is a hard edge …
const HARD: f32 = 2.5 * CHANGED;
/// … and an overlay's boundary is mostly hard edges.
const HARD_SHARE: f32 = 0.3;
/// A region that is not a blend in most of its blocks (a caption's thin strokes at JPEG 75,
/// whose compression halo outweighs them) is still an overlay when its edges in the colour
/// of its blended blocks are a good part of all its edges and most of them hard: retouching
/// that happens to match a flat colour somewhere is feathered in (at most half of such edges
/// hard, measured on the edit benchmark's 350 local edits).
const LAID_PART: f32 = 0.2;
const LAID_HARD_SHARE: f32 = 0.6;
const LAID_MIN_EDGE: u32 = 24;

/// Whether the box's changes begin with a step rather than a ramp: a caption, a logo or a
/// watermark is laid on with hard edges; retouching is feathered in, so that where its change
/// first exceeds the noise it is barely above it.
///
/// Counted twice: over all the box's edge pixels, and over those whose change is one of the
/// region's `colours` laid over the picture — compression rings around a laid-on shape (a
/// logo at JPEG 75) with small changes of other colours, which are edges of nothing. A
/// region that is a `blend` needs a third of either hard; one that is not needs its edges in
/// those colours to be many and mostly hard.
fn hard_edged(a: &Aligned, block_box: [u32; 4], colours: &[[f32; 3]], blend: bool) -> bool {
    let [(edge, hard), (laid_edge, laid_hard)] = edge_counts(a, block_box, colours);
    let share = |edge: u32, hard: u32, bar: f32| edge > 0 && hard as f32 >= bar * edge as f32;
    if blend {
        share(edge, hard, HARD_SHARE) || share(laid_edge, laid_hard, HARD_SHARE)
    } else {
        laid_edge >= LAID_MIN_EDGE
            && laid_edge as f32 >= LAID_PART * edge as f32
            && share(laid_edge, laid_hard, LAID_HARD_SHARE)
    }
}

/// Whether the change at (x, y) is one of `colours` laid over the picture.
fn laid_in(a: &Aligned, x: u32, y: u32, colours: &[[f32; 3]]) -> bool {
    let pixel = Change::at(a, (y * a.w + x) as usize);
    colours
        .iter()
        .any(|&c| explained(&pixel, c).is_some_and(|alpha| alpha >= 0.1))
}

/// (edge pixels, hard ones) of the box: all of them, and those laid in `colours`.
fn edge_counts(a: &Aligned, block_box: [u32; 4], colours: &[[f32; 3]]) -> [(u32, u32); 2] {
    // NaN (outside the source) is never a change.
    let changed = |m: f32| m.is_finite() && m > CHANGED;
    let size = |x: u32, y: u32| norm(Change::at(a, (y * a.w + x) as usize).change);
    let (x0, y0) = (block_box[0] * B, block_box[1] * B);
    let (x1, y1) = (
        (block_box[2] * B).min(a.w - 1),
        (block_box[3] * B).min(a.h - 1),
    );
    let (mut edge, mut hard, mut laid_edge, mut laid_hard) = (0u32, 0u32, 0u32, 0u32);
    for y in y0.max(1)..y1 {
        for x in x0.max(1)..x1 {
            let m = size(x, y);
            if !changed(m) {
                continue;
            }
            let beside = [
                size(x - 1, y),
                size(x + 1, y),
                size(x, y - 1),
                size(x, y + 1),
            ];
            // Isolated pixels are compression noise, not the edge of anything.
            let alone = !beside.iter().any(|&n| changed(n));
            if !alone && beside.iter().any(|&n| n <= CHANGED) {
                edge += 1;
                hard += u32::from(m >= HARD);
                if laid_in(a, x, y, colours) {
                    laid_edge += 1;
                    laid_hard += u32::from(m >= HARD);
                }
            }
        }
    }
    [(edge, hard), (laid_edge, laid_hard)]
}

/// Share of a region's blocks that must be blends on their own before the others are tried
/// with their colours.
const AGREED: f32 = 0.3;

/// Share of a region's judged blocks, weighed by their changed pixels (a caption's blocks
/// outweigh the few misregistered pixels of the texture beside it), that must be blends.
const BLENDED: f32 = 0.6;

/// Whether changed pixels are one colour `c` laid over the picture at one opacity α:
/// published = expected + α (c − expected), and which colour; `None` when too few pixels
/// changed to tell. Text, logos and watermarks are; cloned, moved or smoothed content, whose
/// changes follow the picture's own texture, is not.
fn blend(changed: &[Change]) -> Option<Option<[f32; 3]>> {
    if changed.len() < 24 {
        return None;
    }
    // The colour that explains the most pixels at one opacity: fitted on all the changed
    // pixels, then again on those at the commonest opacity (antialiased and ringing edges are
    // at others).
    let Some((mut colour, _)) = blend_fit(changed.iter()) else {
        return Some(opaque(changed));
    };
    for _ in 0..2 {
        let mode = commonest(&opacities(changed, colour));
        let near = changed
            .iter()
            .filter(|c| explained(c, colour).is_some_and(|x| (x - mode).abs() <= 0.15));
        match blend_fit(near) {
            Some((c, _)) => colour = c,
            None => break,
        }
    }
    if blends_with(changed, colour) {
        return Some(Some(colour));
    }
    Some(opaque(changed))
}

/// Share of a block's changed pixels with the most change whose published colour is taken as
/// an opaque overlay's.
const CORE: f32 = 0.25;
/// How much of an opaque overlay's changes must point one way (a caption's strokes are
/// lighter, or darker, than everything they cover; smoothing moves pixels both ways).
const COHERENT: f32 = 0.7;
/// Share of the change (by size) an opaque colour must explain.
const OPAQUE_EXPLAINED: f32 = 0.85;
/// Pixels at this opacity or more are covered, and at least this share of them must be.
const COVERED: f32 = 0.75;
const COVERED_SHARE: f32 = 0.3;

/// An opaque colour laid over the picture with soft edges (thin strokes antialiased, or
/// blurred by resizing and compression, so that no one opacity explains most pixels): the
/// published colour of the most changed pixels, when it explains most changes, the changes
/// mostly point one way, and a good part of them are (nearly) covered.
fn opaque(changed: &[Change]) -> Option<[f32; 3]> {
    let mut by_size: Vec<&Change> = changed.iter().collect();
    by_size.sort_by(|a, b| norm(b.change).total_cmp(&norm(a.change)));
    let core = &by_size[..((changed.len() as f32 * CORE) as usize).max(1)];
    let colour: [f32; 3] = std::array::from_fn(|k| {
        core.iter()
            .map(|c| c.expected[k] + c.change[k])
            .sum::<f32>()
            / core.len() as f32
    });
    opaque_with(changed, colour).then_some(colour)
}

/// Whether `colour`, laid opaque with soft edges, explains the changes: most of the change
/// (weighed by size: compression's halo around thin strokes is small) lies on the way from
/// the expected colour to `colour`, it mostly points one way, and a good part of the pixels
/// are (nearly) covered.
fn opaque_with(changed: &[Change], colour: [f32; 3]) -> bool {
    let n = changed.len() as f32;
    let mean: [f32; 3] =
        std::array::from_fn(|k| changed.iter().map(|c| c.change[k]).sum::<f32>() / n);
    let total: f32 = changed.iter().map(|c| norm(c.change)).sum();
    let (mut laid, mut covered) = (0.0, 0.0);
    for c in changed {
        if let Some(alpha) = explained(c, colour) {
            laid += norm(c.change);
            covered += f32::from(u8::from(alpha >= COVERED));
        }
    }
    laid >= OPAQUE_EXPLAINED * total
        && norm(mean) * n >= COHERENT * total
        && covered >= COVERED_SHARE * n
}

/// Whether `colour` at one opacity explains most changed pixels.
fn blends_with(changed: &[Change], colour: [f32; 3]) -> bool {
    let alphas = opacities(changed, colour);
    let mode = commonest(&alphas);
    let at_one = alphas.iter().filter(|x| (*x - mode).abs() <= 0.15).count();
    alphas.len() as f32 >= EXPLAINED * changed.len() as f32
        && at_one as f32 >= ONE_OPACITY * alphas.len() as f32
}

/// The opacities at which `colour` explains each change it explains.
fn opacities(changed: &[Change], colour: [f32; 3]) -> Vec<f32> {
    changed
        .iter()
        .filter_map(|c| explained(c, colour))
        .collect()
}

/// The commonest opacity, to a tenth.
fn commonest(alphas: &[f32]) -> f32 {
    let mut hist = [0u32; 13];
    for a in alphas {
        hist[((a * 10.0).round() as usize).min(12)] += 1;
    }
    let windowed = |i: usize| -> u32 {
        (i.saturating_sub(1)..=(i + 1).min(12))
            .map(|j| hist[j])
            .sum()
    };
    (0..13).max_by_key(|&i| windowed(i)).unwrap_or(10) as f32 / 10.0
}

/// A pixel whose published colour is far from the expected one.
struct Change {
    expected: [f32; 3],
    change: [f32; 3],
}

impl Change {
    /// The unblurred pixel `i` of the aligned pair (an overlay's edge is sharp).
    fn at(a: &Aligned, i: usize) -> Self {
        let expected = a.sharp_expected[i];
        Change {
            expected,
            change: sub(a.sharp_published[i].map(f32::from), expected),
        }
    }
}

/// The box's pixels whose change is more than [`CHANGED`] (unblurred: an overlay's edge is
/// sharp).
fn changed_pixels(a: &Aligned, block_box: [u32; 4]) -> Vec<Change> {
    let mut out = Vec::new();
    for y in block_box[1] * B..block_box[3] * B {
        for x in block_box[0] * B..block_box[2] * B {
            let c = Change::at(a, (y * a.w + x) as usize);
            if c.expected[0].is_finite() && norm(c.change) > CHANGED {
                out.push(c);
            }
        }
    }
    out
}

/// Background spread (levels) assumed when fitting an overlay's opacity.
const PRIOR: f64 = 6.0;

/// Least squares for change = α c − α expected, one α for all channels: (c, α), when α is an
/// opacity (0.1–1) and c a colour.
fn blend_fit<'a>(pixels: impl Iterator<Item = &'a Change>) -> Option<([f32; 3], f32)> {
    let (mut n, mut sr, mut ss, mut srs, mut sss) = (0f64, [0f64; 3], [0f64; 3], 0f64, 0f64);
    for c in pixels {
        n += 1.0;
        for k in 0..3 {
            let (r, s) = (f64::from(c.change[k]), f64::from(c.expected[k]));
            sr[k] += r;
            ss[k] += s;
            srs += r * s;
            sss += s * s;
        }
    }
    if n < 12.0 {
        return None;
    }
    let cov: f64 = srs - (0..3).map(|k| sr[k] * ss[k] / n).sum::<f64>();
    let var: f64 = sss - (0..3).map(|k| ss[k] * ss[k] / n).sum::<f64>();
    // Over a flat background the opacity cannot be told from the colour: lean towards opaque
    // (as if the background varied by `PRIOR` levels).
    let prior = n * 3.0 * PRIOR * PRIOR;
    let alpha = -(cov - prior) / (var + prior);
    // Beyond opaque is opaque (the slope of a change over a dark, noisy background).
    let alpha = alpha.min(1.0);
    if alpha < 0.1 {
        return None;
    }
    let colour: [f32; 3] = std::array::from_fn(|k| ((sr[k] + alpha * ss[k]) / n / alpha) as f32);
    colour
        .iter()
        .all(|v| (-20.0..=275.0).contains(v))
        .then_some((colour, alpha as f32))
}

/// The opacity at which `colour` over the expected pixel explains its change, if it does.
fn explained(c: &Change, colour: [f32; 3]) -> Option<f32> {
    let v = sub(colour, c.expected);
    let vv = dot(v, v);
    if vv < CHANGED * CHANGED {
        return None;
    }
    let alpha = (dot(c.change, v) / vv).clamp(0.0, 1.2);
    let off = norm(sub(c.change, v.map(|x| x * alpha)));
    (off <= CHANGED.max(0.35 * norm(c.change))).then_some(alpha)
}

pub(super) fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    std::array::from_fn(|k| a[k] - b[k])
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn norm(a: [f32; 3]) -> f32 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_between_parts_of_a_caption_line_is_on_it() {
        let parts = [[2, 10, 8, 11], [12, 10, 20, 12]];
        // Between them, on their rows.
        assert!(on_a_line([9, 10, 11, 11], &parts));
        // Above the line, or with only one part beside it, or too far from a part.
        assert!(!on_a_line([9, 8, 11, 9], &parts));
        assert!(!on_a_line([21, 10, 23, 11], &parts));
        assert!(!on_a_line(
            [9, 10, 11, 11],
            &[[2, 10, 8, 11], [15, 10, 20, 11]]
        ));
        // Taller than the line.
        assert!(!on_a_line([9, 9, 11, 12], &parts));
    }
}
