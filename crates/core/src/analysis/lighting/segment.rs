//! Splitting the working image into smoothly varying regions of one colour: the raw material
//! of card and chart detection.
//!
//! Regions grow between 4-neighbours whose log-luminance and chromaticity differ little, so a
//! light gradient across a card keeps it whole while its edges stop the growth; a global band
//! around the seed keeps a region from creeping across soft edges into something else.

use crate::analysis::frame::Working;
use crate::analysis::geometry::{Pt, convex_hull, inside_convex, max_area_quad, polygon_area};

/// Neighbour step limits.
const STEP_LOG_Y: f32 = 0.06;
const STEP_CHROMA: f32 = 0.016;
/// Band around the seed.
const BAND_LOG_Y: f32 = 1.6;
const BAND_CHROMA: f32 = 0.05;
/// Below this linear luminance chromaticity is noise.
const DARK: f32 = 0.004;
/// Limit over two steps in the same direction: a soft edge made of small steps still stops the
/// growth, while a smooth light gradient (a small change per pixel) passes.
const SPAN2_LOG_Y: f32 = 0.085;
const SPAN2_CHROMA: f32 = 0.022;
/// A pixel whose smoothed 3×3 neighbourhood spans more than this lies on an edge, even a faint
/// one; regions grow only through flat pixels.
const EDGE_LOG_Y: f32 = 0.045;
const EDGE_CHROMA: f32 = 0.012;

/// One region.
#[derive(Clone, Debug)]
pub struct Region {
    pub label: u32,
    /// Working-image pixel indices.
    pub pixels: Vec<u32>,
    pub mean_rgb: [f32; 3],
    pub mean_log_y: f32,
    pub bbox: [u32; 4],
    pub touches_border: bool,
    pub clipped_fraction: f32,
}

impl Region {
    pub fn len(&self) -> usize {
        self.pixels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    pub fn centroid(&self, width: u32) -> Pt {
        let n = self.pixels.len().max(1) as f64;
        let (mut sx, mut sy) = (0.0, 0.0);
        for &i in &self.pixels {
            sx += f64::from(i % width) + 0.5;
            sy += f64::from(i / width) + 0.5;
        }
        [sx / n, sy / n]
    }
}

/// The segmentation: a label per working pixel and the regions.
#[derive(Clone, Debug)]
pub struct Segmentation {
    pub width: u32,
    pub height: u32,
    pub labels: Vec<u32>,
    pub regions: Vec<Region>,
}

fn features(rgb: [f32; 3]) -> (f32, [f32; 2]) {
    let y = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    let s = (rgb[0] + rgb[1] + rgb[2]).max(1e-6);
    ((y.max(0.0012)).ln(), [rgb[0] / s, rgb[1] / s])
}

/// Pixels whose 3×3 neighbourhood is flat (no edge, however faint, runs through it).
fn flat_pixels(feats: &[(f32, [f32; 2], bool)], width: u32, height: u32) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![true; feats.len()];
    for y in 0..h {
        for x in 0..w {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            let (mut c0, mut c1) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
            let mut dark = false;
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let f = &feats[yy * w + xx];
                    lo = lo.min(f.0);
                    hi = hi.max(f.0);
                    dark |= f.2;
                    for k in 0..2 {
                        c0[k] = c0[k].min(f.1[k]);
                        c1[k] = c1[k].max(f.1[k]);
                    }
                }
            }
            let chroma_edge = !dark && (c1[0] - c0[0] > EDGE_CHROMA || c1[1] - c0[1] > EDGE_CHROMA);
            out[y * w + x] = hi - lo <= EDGE_LOG_Y && !chroma_edge;
        }
    }
    out
}

fn box3(rgb: &[[f32; 3]], width: u32, height: u32) -> Vec<[f32; 3]> {
    let (w, h) = (width as usize, height as usize);
    let mut tmp = vec![[0f32; 3]; rgb.len()];
    for y in 0..h {
        for x in 0..w {
            let (a, b) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let mut acc = [0f32; 3];
            for xx in a..=b {
                for k in 0..3 {
                    acc[k] += rgb[y * w + xx][k];
                }
            }
            let n = (b - a + 1) as f32;
            tmp[y * w + x] = acc.map(|v| v / n);
        }
    }
    let mut out = vec![[0f32; 3]; rgb.len()];
    for y in 0..h {
        let (a, b) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            let mut acc = [0f32; 3];
            for yy in a..=b {
                for k in 0..3 {
                    acc[k] += tmp[yy * w + x][k];
                }
            }
            let n = (b - a + 1) as f32;
            out[y * w + x] = acc.map(|v| v / n);
        }
    }
    out
}

/// How far (working pixels) a flat-only region stops short of the true edge: the 3×3 smoothing
/// and the 3×3 flatness window each take one pixel.
pub const FLAT_RIM: f64 = 2.0;

/// How regions may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// Through any pixel whose steps are small (keeps textured or marked patches whole).
    Smooth,
    /// Only through flat pixels: even a faint edge closes a region (cards on similar
    /// backgrounds).
    FlatOnly,
}

/// What region growing compares at each working pixel, on a 3×3 box-smoothed copy (sensor
/// and JPEG noise would otherwise split uniform patches): log-luminance, chromaticity, and
/// whether the pixel is too dark for its chromaticity to mean anything. Made once per
/// working image and shared by both growth modes.
#[derive(Clone, Debug)]
pub struct PixelFeatures {
    feats: Vec<(f32, [f32; 2], bool)>,
}

impl PixelFeatures {
    /// The features of every pixel of `w`.
    pub fn new(w: &Working) -> Self {
        let smooth = box3(&w.rgb, w.width, w.height);
        let feats = smooth
            .iter()
            .map(|&c| {
                let (l, ch) = features(c);
                (l, ch, 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2] < DARK)
            })
            .collect();
        Self { feats }
    }
}

/// Segment the working image; regions smaller than `min_pixels` are labelled but not returned.
pub fn segment(w: &Working, min_pixels: usize, growth: Growth) -> Segmentation {
    segment_with(w, &PixelFeatures::new(w), min_pixels, growth)
}

/// [`segment`] with the pixel features made already (`px`, of the same working image; features
/// of another size are made again).
pub fn segment_with(
    w: &Working,
    px: &PixelFeatures,
    min_pixels: usize,
    growth: Growth,
) -> Segmentation {
    let (width, height) = (w.width, w.height);
    let n = (width * height) as usize;
    let own;
    let feats = match px.feats.len() == n {
        true => &px.feats,
        false => {
            own = PixelFeatures::new(w);
            &own.feats
        }
    };
    let flat = match growth {
        Growth::FlatOnly => flat_pixels(feats, width, height),
        Growth::Smooth => vec![true; n],
    };
    let mut labels = vec![u32::MAX; n];
    let mut regions = Vec::new();
    let mut queue = Vec::new();
    let mut next = 0u32;
    let mut members: Vec<u32> = Vec::new();
    for start in 0..n {
        if labels[start] != u32::MAX {
            continue;
        }
        let label = next;
        next += 1;
        let seed = feats[start];
        labels[start] = label;
        queue.clear();
        if flat[start] {
            queue.push(start as u32);
        }
        members.clear();
        if !flat[start] {
            // A lone edge pixel: its own one-pixel region.
            members.push(start as u32);
        }
        while let Some(p) = queue.pop() {
            members.push(p);
            let (px, py) = (p % width, p / width);
            let fp = feats[p as usize];
            let mut try_push = |q: u32, behind: Option<u32>| {
                let qi = q as usize;
                if labels[qi] != u32::MAX || !flat[qi] {
                    return;
                }
                let fq = feats[qi];
                if (fq.0 - fp.0).abs() > STEP_LOG_Y || (fq.0 - seed.0).abs() > BAND_LOG_Y {
                    return;
                }
                let fb = behind.map(|b| feats[b as usize]);
                if fb.is_some_and(|fb| (fq.0 - fb.0).abs() > SPAN2_LOG_Y) {
                    return;
                }
                let both_dark = fq.2 && fp.2;
                if !both_dark {
                    let dc = (fq.1[0] - fp.1[0]).abs().max((fq.1[1] - fp.1[1]).abs());
                    let ds = (fq.1[0] - seed.1[0]).abs().max((fq.1[1] - seed.1[1]).abs());
                    if dc > STEP_CHROMA || (!seed.2 && ds > BAND_CHROMA) {
                        return;
                    }
                    if let Some(fb) = fb.filter(|fb| !fb.2) {
                        let d2 = (fq.1[0] - fb.1[0]).abs().max((fq.1[1] - fb.1[1]).abs());
                        if d2 > SPAN2_CHROMA {
                            return;
                        }
                    }
                }
                labels[qi] = label;
                queue.push(q);
            };
            if px > 0 {
                try_push(p - 1, (px + 1 < width).then(|| p + 1));
            }
            if px + 1 < width {
                try_push(p + 1, (px > 0).then(|| p - 1));
            }
            if py > 0 {
                try_push(p - width, (py + 1 < height).then(|| p + width));
            }
            if py + 1 < height {
                try_push(p + width, (py > 0).then(|| p - width));
            }
        }
        if members.len() < min_pixels {
            continue;
        }
        let mut sum = [0f64; 3];
        let mut sum_l = 0f64;
        let mut clip = 0f64;
        let mut bbox = [u32::MAX, u32::MAX, 0, 0];
        let mut touches = false;
        for &m in &members {
            let c = w.rgb[m as usize];
            sum[0] += f64::from(c[0]);
            sum[1] += f64::from(c[1]);
            sum[2] += f64::from(c[2]);
            sum_l += f64::from(feats[m as usize].0);
            clip += f64::from(w.clipped[m as usize]);
            let (x, y) = (m % width, m / width);
            bbox = [
                bbox[0].min(x),
                bbox[1].min(y),
                bbox[2].max(x),
                bbox[3].max(y),
            ];
            if x == 0 || y == 0 || x + 1 == width || y + 1 == height {
                touches = true;
            }
        }
        let k = members.len() as f64;
        regions.push(Region {
            label,
            mean_rgb: [
                (sum[0] / k) as f32,
                (sum[1] / k) as f32,
                (sum[2] / k) as f32,
            ],
            mean_log_y: (sum_l / k) as f32,
            bbox,
            touches_border: touches,
            clipped_fraction: (clip / k) as f32,
            pixels: members.clone(),
        });
    }
    Segmentation {
        width,
        height,
        labels,
        regions,
    }
}

/// How well a set of pixels fills a quadrilateral.
#[derive(Clone, Debug)]
pub struct QuadFit {
    /// Corners in working pixels (pixel-square corners), TL, TR, BR, BL.
    pub quad: [Pt; 4],
    /// Intersection over union of the pixels and the quad.
    pub iou: f64,
    pub area: f64,
}

/// Fit the largest quadrilateral inscribed in the pixels' hull and measure the overlap.
pub fn fit_quad(pixels: &[u32], labels: &[u32], label_set: &[u32], width: u32) -> Option<QuadFit> {
    let height = (labels.len() as u32) / width.max(1);
    let member = |x: i64, y: i64| -> bool {
        if x < 0 || y < 0 || x >= i64::from(width) || y >= i64::from(height) {
            return false;
        }
        label_set.contains(&labels[(y as u32 * width + x as u32) as usize])
    };
    let mut boundary = Vec::new();
    for &p in pixels {
        let (x, y) = (i64::from(p % width), i64::from(p / width));
        if !(member(x - 1, y) && member(x + 1, y) && member(x, y - 1) && member(x, y + 1)) {
            let (fx, fy) = (x as f64, y as f64);
            boundary.extend([
                [fx, fy],
                [fx + 1.0, fy],
                [fx, fy + 1.0],
                [fx + 1.0, fy + 1.0],
            ]);
        }
    }
    let hull = convex_hull(boundary);
    let quad = max_area_quad(&hull)?;
    let area = polygon_area(&quad);
    // Count quad pixels and overlap over the quad's bounding box.
    let (x0, x1) = (
        quad.iter()
            .map(|p| p[0])
            .fold(f64::INFINITY, f64::min)
            .floor()
            .max(0.0) as u32,
        quad.iter()
            .map(|p| p[0])
            .fold(0.0, f64::max)
            .ceil()
            .min(f64::from(width)) as u32,
    );
    let (y0, y1) = (
        quad.iter()
            .map(|p| p[1])
            .fold(f64::INFINITY, f64::min)
            .floor()
            .max(0.0) as u32,
        quad.iter()
            .map(|p| p[1])
            .fold(0.0, f64::max)
            .ceil()
            .min(f64::from(height)) as u32,
    );
    let mut in_quad = 0usize;
    let mut inter = 0usize;
    for y in y0..y1 {
        for x in x0..x1 {
            if inside_convex(&quad, [f64::from(x) + 0.5, f64::from(y) + 0.5]) {
                in_quad += 1;
                if member(i64::from(x), i64::from(y)) {
                    inter += 1;
                }
            }
        }
    }
    let union = pixels.len() + in_quad - inter;
    Some(QuadFit {
        quad,
        iou: inter as f64 / union.max(1) as f64,
        area,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::frame::{Frame, Working};

    #[test]
    fn features_shared_by_both_growth_modes_segment_as_features_made_for_each() {
        let img = image::RgbImage::from_fn(160, 120, |x, y| {
            image::Rgb([((x * 5 + y * 3) % 256) as u8, (x % 40 * 6) as u8, 120])
        });
        let w = Working::new(&Frame::rgb8(&img), 160);
        let px = PixelFeatures::new(&w);
        for growth in [Growth::Smooth, Growth::FlatOnly, Growth::Smooth] {
            let (shared, own) = (segment_with(&w, &px, 12, growth), segment(&w, 12, growth));
            assert_eq!(shared.labels, own.labels, "{growth:?}");
            assert_eq!(shared.regions.len(), own.regions.len(), "{growth:?}");
            assert!(shared.labels.iter().all(|&l| l != u32::MAX));
        }
        // Features of another image's size are made again, not read out of bounds.
        let small = Working::new(&Frame::rgb8(&img), 40);
        let other = segment_with(&w, &PixelFeatures::new(&small), 12, Growth::FlatOnly);
        assert_eq!(other.labels, segment(&w, 12, Growth::FlatOnly).labels);
    }

    #[test]
    fn a_gradient_card_is_one_region_and_fits_a_quad() {
        let img = image::RgbImage::from_fn(200, 150, |x, y| {
            if (50..150).contains(&x) && (40..110).contains(&y) {
                // 18 % grey with a light gradient left to right.
                let v = 100.0 + f32::from(x as u16 - 50) * 0.4;
                image::Rgb([v as u8, v as u8, v as u8])
            } else {
                image::Rgb([((x * 7 + y * 13) % 200) as u8, 90, ((x * y) % 255) as u8])
            }
        });
        let w = Working::new(&Frame::rgb8(&img), 200);
        let seg = segment(&w, 50, Growth::FlatOnly);
        let card = seg.regions.iter().max_by_key(|r| r.len()).unwrap();
        assert!(card.len() >= 95 * 65, "{}", card.len());
        let fit = fit_quad(&card.pixels, &seg.labels, &[card.label], seg.width).unwrap();
        assert!(fit.iou > 0.95, "{}", fit.iou);
        let quad = crate::analysis::geometry::offset_quad(&fit.quad, FLAT_RIM);
        assert!(
            (quad[0][0] - 50.0).abs() < 1.0 && (quad[2][1] - 110.0).abs() < 1.0,
            "{quad:?}"
        );
    }
}
