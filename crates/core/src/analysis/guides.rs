//! Overlay geometry for the live view: rule-of-thirds grid, vertical midline, the horizontal
//! Frankfort guide, and the edge-difference map against the baseline. Coordinates are frame
//! pixels (x right, y down); the GUI only scales them to the screen.

use image::{GrayImage, RgbImage};

use super::frame::resize_rgb;
use super::pose::face::Landmarks;

/// A line segment in frame pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub a: [f32; 2],
    pub b: [f32; 2],
}

/// The four rule-of-thirds lines of a `w` × `h` frame: two vertical, then two horizontal.
///
/// ```
/// let g = sameframe_core::analysis::guides::thirds(300, 90);
/// assert_eq!(g[0].a, [100.0, 0.0]);
/// assert_eq!(g[3].b, [300.0, 60.0]);
/// ```
pub fn thirds(w: u32, h: u32) -> [Segment; 4] {
    let (w, h) = (w as f32, h as f32);
    [
        Segment {
            a: [w / 3.0, 0.0],
            b: [w / 3.0, h],
        },
        Segment {
            a: [2.0 * w / 3.0, 0.0],
            b: [2.0 * w / 3.0, h],
        },
        Segment {
            a: [0.0, h / 3.0],
            b: [w, h / 3.0],
        },
        Segment {
            a: [0.0, 2.0 * h / 3.0],
            b: [w, 2.0 * h / 3.0],
        },
    ]
}

/// The vertical midline.
pub fn midline(w: u32, h: u32) -> Segment {
    Segment {
        a: [w as f32 / 2.0, 0.0],
        b: [w as f32 / 2.0, h as f32],
    }
}

// FaceMesh indices: tragion proxies (right, left) and orbitale proxies (lower eyelids).
const TRAGION: [usize; 2] = [234, 454];
const ORBITALE: [usize; 2] = [145, 374];

/// Where a face's Frankfort plane crosses the image: one point per side, each halfway between
/// the tragion and the orbitale of that side, so the line shows both its height and its roll.
pub fn frankfort_line(l: &Landmarks) -> Option<Segment> {
    let p = |i: usize| l.points.get(i).map(|p| [p[0], p[1]]);
    let mid = |a: [f32; 2], b: [f32; 2]| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let right = mid(p(TRAGION[0])?, p(ORBITALE[0])?);
    let left = mid(p(TRAGION[1])?, p(ORBITALE[1])?);
    let (a, b) = if right[0] <= left[0] {
        (right, left)
    } else {
        (left, right)
    };
    Some(Segment { a, b })
}

/// The horizontal Frankfort guide across a `w` × `h` frame: at the baseline face's Frankfort
/// height when the baseline has a face (so the patient is brought back to the same height),
/// else at `default_fraction` of the height.
pub fn frankfort_target(
    baseline: Option<&Landmarks>,
    baseline_size: (u32, u32),
    w: u32,
    h: u32,
    default_fraction: f32,
) -> Segment {
    let y = baseline
        .and_then(frankfort_line)
        .map(|s| {
            let scale = h as f32 / baseline_size.1.max(1) as f32;
            (s.a[1] + s.b[1]) / 2.0 * scale
        })
        .unwrap_or(h as f32 * default_fraction.clamp(0.0, 1.0));
    Segment {
        a: [0.0, y],
        b: [w as f32, y],
    }
}

/// Strong edges of an image reduced to `width` × `height`.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeMap {
    pub width: u32,
    pub height: u32,
    /// 1 where an edge is, row-major.
    pub edges: Vec<u8>,
}

impl EdgeMap {
    fn at(&self, x: i64, y: i64) -> bool {
        x >= 0
            && y >= 0
            && x < i64::from(self.width)
            && y < i64::from(self.height)
            && self.edges[(y * i64::from(self.width) + x) as usize] != 0
    }

    fn near(&self, x: i64, y: i64) -> bool {
        (-1..=1).any(|dy| (-1..=1).any(|dx| self.at(x + dx, y + dy)))
    }

    /// How many edge pixels.
    pub fn count(&self) -> usize {
        self.edges.iter().filter(|&&e| e != 0).count()
    }
}

/// The strongest ~12 % of gradients (Sobel) of `img` resampled to `width` × `height`, ignoring
/// gradients too weak to be structure (flat walls, noise).
pub fn edge_map(img: &RgbImage, width: u32, height: u32) -> EdgeMap {
    let (width, height) = (width.max(3), height.max(3));
    let small = resize_rgb(img, width, height);
    let gray: GrayImage = GrayImage::from_fn(width, height, |x, y| {
        let p = small.get_pixel(x, y).0;
        image::Luma([
            ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8,
        ])
    });
    let (w, h) = (width as usize, height as usize);
    let g = gray.as_raw();
    let mut mag = vec![0u16; w * h];
    let mut hist = [0u32; 1024];
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let p = |dx: isize, dy: isize| {
                i32::from(g[(y as isize + dy) as usize * w + (x as isize + dx) as usize])
            };
            let gx = p(1, -1) + 2 * p(1, 0) + p(1, 1) - p(-1, -1) - 2 * p(-1, 0) - p(-1, 1);
            let gy = p(-1, 1) + 2 * p(0, 1) + p(1, 1) - p(-1, -1) - 2 * p(0, -1) - p(1, -1);
            let m = ((gx.abs() + gy.abs()) / 2).min(1023) as u16;
            mag[y * w + x] = m;
            hist[m as usize] += 1;
        }
    }
    let total: u32 = hist.iter().sum();
    let keep = (f64::from(total) * 0.12) as u32;
    let mut acc = 0u32;
    let mut threshold = 1023u16;
    for (v, &n) in hist.iter().enumerate().rev() {
        acc += n;
        if acc >= keep {
            threshold = v as u16;
            break;
        }
    }
    let threshold = threshold.max(40);
    EdgeMap {
        width,
        height,
        edges: mag.iter().map(|&m| u8::from(m > threshold)).collect(),
    }
}

/// The edge-difference view: baseline-only edges magenta, frame-only edges green, edges in both
/// (within a pixel) white, everything else transparent.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeDifference {
    pub width: u32,
    pub height: u32,
    /// RGBA, unmultiplied, row-major.
    pub rgba: Vec<u8>,
    /// Fraction of the frame's edges that lie on a baseline edge (1 = the outlines coincide).
    pub agreement: f64,
}

/// Compare two edge maps of the same size. Returns `None` when the sizes differ.
///
/// ```
/// use sameframe_core::analysis::guides::{edge_difference, edge_map};
/// let img = image::RgbImage::from_fn(64, 48, |x, _| image::Rgb([if x < 32 { 20 } else { 220 }; 3]));
/// let e = edge_map(&img, 64, 48);
/// let d = edge_difference(&e, &e).unwrap();
/// assert_eq!(d.agreement, 1.0);
/// ```
pub fn edge_difference(baseline: &EdgeMap, frame: &EdgeMap) -> Option<EdgeDifference> {
    if (baseline.width, baseline.height) != (frame.width, frame.height) {
        return None;
    }
    let (w, h) = (baseline.width as usize, baseline.height as usize);
    let mut rgba = vec![0u8; w * h * 4];
    let (mut on, mut both) = (0usize, 0usize);
    for y in 0..h {
        for x in 0..w {
            let (xi, yi) = (x as i64, y as i64);
            let b = baseline.at(xi, yi);
            let f = frame.at(xi, yi);
            let px = &mut rgba[(y * w + x) * 4..(y * w + x) * 4 + 4];
            if f {
                on += 1;
                if baseline.near(xi, yi) {
                    both += 1;
                    px.copy_from_slice(&[255, 255, 255, 230]);
                } else {
                    px.copy_from_slice(&[40, 255, 90, 230]);
                }
            } else if b && !frame.near(xi, yi) {
                px.copy_from_slice(&[255, 40, 220, 230]);
            }
        }
    }
    Some(EdgeDifference {
        width: baseline.width,
        height: baseline.height,
        rgba,
        agreement: if on == 0 {
            0.0
        } else {
            both as f64 / on as f64
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(shift: i64) -> RgbImage {
        RgbImage::from_fn(320, 240, |x, y| {
            let (x, y) = (x as i64 - shift, y as i64);
            let inside = (80..200).contains(&x) && (60..180).contains(&y);
            let disc = (x - 240).pow(2) + (y - 80).pow(2) < 30 * 30;
            image::Rgb([if inside || disc { 210 } else { 40 }; 3])
        })
    }

    #[test]
    fn thirds_and_midline_sit_where_named() {
        let t = thirds(1920, 1080);
        assert_eq!(t[0].a[0], 640.0);
        assert_eq!(t[1].a[0], 1280.0);
        assert_eq!(t[2].a[1], 360.0);
        assert_eq!(t[3].a[1], 720.0);
        assert_eq!(midline(1920, 1080).a, [960.0, 0.0]);
    }

    #[test]
    fn frankfort_target_follows_the_baseline_face() {
        let mut points = vec![[0.0f32; 3]; 468];
        points[234] = [100.0, 300.0, 0.0];
        points[145] = [160.0, 310.0, 0.0];
        points[454] = [300.0, 300.0, 0.0];
        points[374] = [240.0, 310.0, 0.0];
        let l = Landmarks {
            points,
            presence: 1.0,
        };
        let live = frankfort_line(&l).unwrap();
        assert_eq!(live.a, [130.0, 305.0]);
        assert_eq!(live.b, [270.0, 305.0]);
        // Baseline at half the frame's resolution: the guide scales with it.
        let g = frankfort_target(Some(&l), (960, 540), 1920, 1080, 0.4);
        assert!((g.a[1] - 610.0).abs() < 1e-3 && g.a[1] == g.b[1]);
        let g = frankfort_target(None, (960, 540), 1920, 1080, 0.4);
        assert!((g.a[1] - 432.0).abs() < 1e-3);
    }

    #[test]
    fn identical_outlines_agree_and_a_shift_does_not() {
        let base = edge_map(&scene(0), 160, 120);
        assert!(base.count() > 100, "{}", base.count());
        let same = edge_difference(&base, &edge_map(&scene(0), 160, 120)).unwrap();
        assert!(same.agreement > 0.99, "{}", same.agreement);
        let moved = edge_difference(&base, &edge_map(&scene(24), 160, 120)).unwrap();
        assert!(moved.agreement < 0.5, "{}", moved.agreement);
        // Frame-only edges are green, baseline-only magenta.
        let px = |d: &EdgeDifference, c: [u8; 3]| {
            d.rgba
                .chunks_exact(4)
                .filter(|p| p[3] > 0 && p[..3] == c)
                .count()
        };
        assert!(px(&moved, [40, 255, 90]) > 50 && px(&moved, [255, 40, 220]) > 50);
        assert_eq!(px(&same, [255, 40, 220]), 0);
    }

    #[test]
    fn flat_and_tiny_images_give_no_edges_and_no_panic() {
        let flat = RgbImage::from_pixel(50, 40, image::Rgb([128, 128, 128]));
        assert_eq!(edge_map(&flat, 50, 40).count(), 0);
        let one = RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9]));
        let e = edge_map(&one, 1, 1);
        assert_eq!((e.width, e.height), (3, 3));
        assert!(edge_difference(&e, &edge_map(&flat, 50, 40)).is_none());
    }
}
