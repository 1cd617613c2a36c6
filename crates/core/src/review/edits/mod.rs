//! Finding local alterations of a published panel against its registered source.
//!
//! Crop, resize, whole-frame colour or levels and mild sharpening are allowed: the source is
//! aligned onto the panel, each channel's tone curve is learnt from the pixel pairs ([`tone`])
//! and so is the whole frame's sharpening ([`sharpen`]). What remains is measured block by
//! block ([`blocks`]) against the panel's own noise for blocks of like texture, so that heavy
//! compression or resizing raise the bar everywhere alike.
//! Blocks that stand out form regions ([`regions`]), told apart by what changed: detail
//! removed (smoothing), a flat colour laid over the picture (text, logos, watermarks: allowed),
//! or content replaced (cloning, healing, liquify, local colour).
//!
//! Where the pixels carry no evidence (outside the source, the panel's border, clipped
//! highlights or shadows, under an overlay) nothing is claimed: [`Coverage`] says how much of
//! the panel that is, and flat blocks, where smoothing cannot show, are counted apart.

pub mod blocks;
pub mod regions;
pub mod register;
pub mod sharpen;
pub mod tone;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::analysis::pose::affine::Affine;

/// What kind of local change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditKind {
    /// Detail removed: skin smoothing, blur, frequency separation.
    Smoothing,
    /// Content replaced or moved: cloning, healing, liquify, selective retouching.
    LocalChange,
    /// Hard-edged additions: captions, labels, logos, watermarks.
    Overlay,
}

/// A region that differs from the source beyond crop, resize and whole-frame colour.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EditRegion {
    pub kind: EditKind,
    /// x, y, w, h in the given image's pixels.
    pub bbox: [u32; 4],
    /// The region's evidence: its blocks' scores in units of the panel's threshold, summed.
    pub strength: f64,
    /// Detail in the published region relative to the source (1 = unchanged).
    pub detail_ratio: f64,
    /// Whether the evidence is beyond what honest copies of the panel show (otherwise the
    /// region is worth a look but not an accusation).
    #[serde(default)]
    pub certain: bool,
}

/// How much of the panel the check could see, in blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub blocks: u32,
    /// Outside the source or at the panel's border.
    pub edge: u32,
    /// Mostly clipped highlights or shadows.
    pub clipped: u32,
    /// Under a text, logo or watermark overlay.
    pub overlay: u32,
    /// Checked, but flat: smoothing cannot show there.
    pub flat: u32,
}

/// Share of the checked blocks under overlays beyond which the panel is overlaid across the
/// frame (a watermark). Measured on the edit benchmark: captions and logos cover 1–5 % of a
/// panel, a diagonal watermark 13–28 %, a panel without overlays 0–2 %.
const OVERLAID: f64 = 0.1;

impl Coverage {
    /// The fraction of the panel's blocks that could not be checked at all.
    pub fn unchecked(&self) -> f64 {
        f64::from(self.edge + self.clipped + self.overlay) / f64::from(self.blocks.max(1))
    }

    /// Whether an overlay lies across the panel (a watermark): its compression disturbs
    /// every block it crosses, so no other change found in the panel is certain.
    pub fn overlaid(&self) -> bool {
        let checked = self.blocks.saturating_sub(self.edge + self.clipped);
        f64::from(self.overlay) >= OVERLAID * f64::from(checked.max(1))
    }
}

/// The edit check of one panel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EditCheck {
    pub regions: Vec<EditRegion>,
    pub coverage: Coverage,
}

impl EditCheck {
    /// Blocks of the panel in flagged regions, of any kind.
    pub fn flagged(&self) -> u32 {
        self.regions
            .iter()
            .map(|r| (r.bbox[2] / blocks::B) * (r.bbox[3] / blocks::B))
            .sum()
    }
}

/// The source aligned over the panel, its colours brought to the panel's.
pub struct Aligned {
    pub w: u32,
    pub h: u32,
    /// The source's colour as the panel's tone curves make it (NaN where it does not cover),
    /// and the panel's, both lightly blurred (see [`Aligned::new`]).
    pub expected: Vec<[f32; 3]>,
    pub published: Vec<[f32; 3]>,
    /// The same, unblurred: an overlay's hard edges are told by them.
    pub sharp_expected: Vec<[f32; 3]>,
    pub sharp_published: Vec<[u8; 3]>,
}

impl Aligned {
    /// Align `source` over `panel` of `published`, `t` mapping source pixels to published ones.
    pub fn new(
        source: &RgbImage,
        published: &RgbImage,
        t: &Affine,
        panel: &[u32; 4],
    ) -> Option<Self> {
        let inv = t.inverse()?;
        let (pw, ph) = published.dimensions();
        let (x0, y0) = (panel[0].min(pw), panel[1].min(ph));
        let x1 = panel[0].saturating_add(panel[2]).min(pw);
        let y1 = panel[1].saturating_add(panel[3]).min(ph);
        if x1 <= x0 + 2 * blocks::B || y1 <= y0 + 2 * blocks::B {
            return None;
        }
        let (w, h) = (x1 - x0, y1 - y0);
        let mut raw = Vec::with_capacity((w * h) as usize);
        let mut publ = Vec::with_capacity((w * h) as usize);
        for y in y0..y1 {
            for x in x0..x1 {
                let p = inv.apply([f64::from(x) + 0.5, f64::from(y) + 0.5]);
                raw.push(bilinear(source, p[0] - 0.5, p[1] - 0.5));
                publ.push(published.get_pixel(x, y).0);
            }
        }
        let curves = tone::ToneCurves::fit(
            raw.iter()
                .zip(&publ)
                .filter_map(|(s, p)| s.map(|s| (s, *p))),
        );
        let expected: Vec<[f32; 3]> = raw
            .iter()
            .map(|s| s.map_or([f32::NAN; 3], |s| curves.apply(s)))
            .collect();
        let published: Vec<[f32; 3]> = publ.iter().map(|p| p.map(f32::from)).collect();
        // Mild whole-frame sharpening is allowed too.
        let bands = sharpen::Bands::of(&expected, w, h);
        let expected = match sharpen::Sharpening::fit(&expected, &published, &bands) {
            Some(s) => s.apply(&expected, &bands),
            None => expected,
        };
        // Both through the same blur (σ ≈ 1 px): the warp's interpolation softens the source
        // by a different amount at each sub-pixel phase, and two resampling filters render a
        // pattern near the finest the pixels hold (a woven tie) as different moiré; both would
        // show as change. Retouching works at coarser scales.
        let blur = |img: &[[f32; 3]]| binomial(&binomial(img, w, h), w, h);
        Some(Aligned {
            w,
            h,
            expected: blur(&expected),
            published: blur(&published),
            sharp_expected: expected,
            sharp_published: publ,
        })
    }
}

/// A 3 × 3 binomial blur ([1 2 1]/4 each way); NaN wherever a neighbour is.
fn binomial(img: &[[f32; 3]], w: u32, h: u32) -> Vec<[f32; 3]> {
    let (w, h) = (w as usize, h as usize);
    let pass = |src: &[[f32; 3]], step: usize, len: usize, along: fn(usize, usize) -> usize| {
        let mut out = src.to_vec();
        for (i, o) in out.iter_mut().enumerate() {
            let pos = along(i, w);
            *o = if pos == 0 || pos + 1 >= len {
                [f32::NAN; 3]
            } else {
                let (a, b, c) = (src[i - step], src[i], src[i + step]);
                std::array::from_fn(|k| 0.25 * a[k] + 0.5 * b[k] + 0.25 * c[k])
            };
        }
        out
    };
    let across = pass(img, 1, w, |i, w| i % w);
    pass(&across, w, h, |i, w| i / w)
}

/// The source's colour at a sub-pixel position, `None` outside it.
fn bilinear(img: &RgbImage, sx: f64, sy: f64) -> Option<[f32; 3]> {
    let (sw, sh) = (f64::from(img.width()), f64::from(img.height()));
    if sx < 0.0 || sy < 0.0 || sx >= sw - 1.0 || sy >= sh - 1.0 {
        return None;
    }
    let (ix, iy) = (sx as u32, sy as u32);
    let (fx, fy) = ((sx - f64::from(ix)) as f32, (sy - f64::from(iy)) as f32);
    let px = |x: u32, y: u32| img.get_pixel(x, y).0.map(f32::from);
    let (a, b, c, d) = (
        px(ix, iy),
        px(ix + 1, iy),
        px(ix, iy + 1),
        px(ix + 1, iy + 1),
    );
    Some(std::array::from_fn(|k| {
        (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy
    }))
}

/// Compare `published` (a panel region `panel` of it) with `source`, where `t` maps source
/// pixels to published pixels (an aspect change is a stretch, and as allowed as a resize).
pub fn detect(source: &RgbImage, published: &RgbImage, t: &Affine, panel: &[u32; 4]) -> EditCheck {
    let Some(a) = Aligned::new(source, published, t, panel) else {
        return EditCheck::default();
    };
    let (bw, bh, measured) = blocks::measure(&a);
    let scores = blocks::score(&measured);
    let found = regions::find(&a, &measured, &scores, bw);
    let mut coverage = Coverage {
        blocks: bw * bh,
        ..Coverage::default()
    };
    for (b, s) in measured.iter().zip(&scores) {
        match b.checked() {
            Err(blocks::Unchecked::Edge) => coverage.edge += 1,
            Err(blocks::Unchecked::Clipped) => coverage.clipped += 1,
            Ok(()) if s.is_some() && !b.textured() => coverage.flat += 1,
            Ok(()) => {}
        }
    }
    let mut out = Vec::new();
    for r in found {
        if r.kind == EditKind::Overlay {
            coverage.overlay += r.blocks;
        }
        let [bx0, by0, bx1, by1] = r.block_box;
        out.push(EditRegion {
            kind: r.kind,
            bbox: [
                panel[0] + bx0 * blocks::B,
                panel[1] + by0 * blocks::B,
                (bx1 - bx0) * blocks::B,
                (by1 - by0) * blocks::B,
            ],
            strength: f64::from(r.evidence),
            detail_ratio: f64::from(r.detail_ratio),
            certain: r.certain,
        });
    }
    // Under an overlay across the frame (a watermark), its compression disturbs every block
    // it crosses: nothing the rest of the panel shows is beyond doubt.
    if coverage.overlaid() {
        for r in out.iter_mut().filter(|r| r.kind != EditKind::Overlay) {
            r.certain = false;
        }
    }
    out.sort_by(|a, b| b.strength.total_cmp(&a.strength));
    EditCheck {
        regions: out,
        coverage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: Affine = Affine {
        m: [[1.0, 0.0], [0.0, 1.0]],
        t: [0.0, 0.0],
    };

    fn texture() -> RgbImage {
        let img = image::load_from_memory(include_bytes!(
            "../../../../../fixtures/textures/coffee.jpg"
        ))
        .unwrap()
        .to_rgb8();
        image::imageops::crop_imm(&img, 0, 0, 480, 360).to_image()
    }

    fn reencode(img: &RgbImage) -> RgbImage {
        reencode_at(img, 80)
    }

    #[test]
    fn a_stretch_registered_as_one_is_no_edit() {
        let src = texture();
        // Shown 12 % taller than wide (a crop published at another aspect ratio).
        let (w, h) = (src.width(), (f64::from(src.height()) * 1.12).round() as u32);
        let stretched = reencode(&image::imageops::resize(
            &src,
            w,
            h,
            image::imageops::FilterType::Triangle,
        ));
        let k = f64::from(h) / f64::from(src.height());
        // Pixel centres: y' + ½ = k (y + ½).
        let t = Affine {
            m: [[1.0, 0.0], [0.0, k]],
            t: [0.0, 0.5 * k - 0.5],
        };
        let full = [0, 0, w, h];
        let found = detect(&src, &stretched, &t, &full).regions;
        assert!(found.is_empty(), "{found:?}");
    }

    fn reencode_at(img: &RgbImage, quality: u8) -> RgbImage {
        let mut v = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut v, quality,
        ))
        .unwrap();
        image::load_from_memory(&v).unwrap().to_rgb8()
    }

    #[test]
    fn mild_whole_frame_sharpening_is_allowed() {
        let src = texture();
        let full = [0, 0, src.width(), src.height()];
        let sharp = image::imageops::unsharpen(&src, 1.0, 2);
        for amount in [0.3f32, 0.6, 1.0] {
            let mild = RgbImage::from_fn(src.width(), src.height(), |x, y| {
                let (a, b) = (src.get_pixel(x, y).0, sharp.get_pixel(x, y).0);
                image::Rgb(std::array::from_fn(|k| {
                    (f32::from(a[k]) * (1.0 - amount) + f32::from(b[k]) * amount).round() as u8
                }))
            });
            let found = detect(&src, &reencode_at(&mild, 75), &IDENTITY, &full).regions;
            assert!(found.is_empty(), "amount {amount}: {found:?}");
        }
    }

    #[test]
    fn a_white_caption_is_an_overlay_not_an_accusation() {
        // A light background (a white caption barely changes it), the letters' 2-px white
        // strokes along the bottom, saved at JPEG 75.
        let src = texture();
        let src = RgbImage::from_fn(src.width(), src.height(), |x, y| {
            image::Rgb(src.get_pixel(x, y).0.map(|v| 150 + v / 3))
        });
        let full = [0, 0, src.width(), src.height()];
        let mut captioned = src.clone();
        for (i, x0) in (16..440).step_by(18).enumerate() {
            for y in 320..340 {
                for x in x0..x0 + 12 {
                    let stroke = !(322..338).contains(&y) || x < x0 + 2 || (i % 3 == 0 && y < 331);
                    if stroke {
                        captioned.put_pixel(x, y, image::Rgb([250, 250, 250]));
                    }
                }
            }
        }
        let check = detect(&src, &reencode_at(&captioned, 75), &IDENTITY, &full);
        assert!(!check.regions.is_empty(), "the caption is seen");
        for r in &check.regions {
            assert!(r.kind == EditKind::Overlay || !r.certain, "{r:?}");
        }
    }

    #[test]
    fn under_a_watermark_across_the_frame_a_change_is_worth_a_look_not_certain() {
        // The texture, its left half dark (where the watermark shows as an overlay).
        let src = texture();
        let src = RgbImage::from_fn(src.width(), src.height(), |x, y| {
            let p = src.get_pixel(x, y).0;
            image::Rgb(if x < 240 { p.map(|v| v / 3) } else { p })
        });
        let full = [0, 0, src.width(), src.height()];
        // Diagonal bands of white at 30 % across the frame, and a smoothed patch.
        let patch = image::imageops::crop_imm(&src, 200, 120, 96, 96).to_image();
        let mut smoothed = src.clone();
        image::imageops::replace(&mut smoothed, &image::imageops::blur(&patch, 4.0), 200, 120);
        let mut published = smoothed.clone();
        for (x, y, p) in published.enumerate_pixels_mut() {
            if (20..34).contains(&((x + y) % 160)) {
                p.0 = p.0.map(|v| (f32::from(v) * 0.7 + 255.0 * 0.3) as u8);
            }
        }
        let check = detect(&src, &reencode_at(&published, 75), &IDENTITY, &full);
        assert!(
            check.coverage.overlaid(),
            "{:?} {:?}",
            check.coverage,
            check.regions
        );
        let edits: Vec<_> = check
            .regions
            .iter()
            .filter(|r| r.kind != EditKind::Overlay)
            .collect();
        assert!(!edits.is_empty(), "the smoothing is still shown");
        assert!(edits.iter().all(|r| !r.certain), "{edits:?}");
        // Without the watermark the same smoothing is certain.
        let check = detect(&src, &reencode_at(&smoothed, 75), &IDENTITY, &full);
        assert!(!check.coverage.overlaid());
        assert!(
            check.regions.iter().any(|r| r.certain),
            "{:?}",
            check.regions
        );
    }

    #[test]
    fn whole_frame_colour_is_allowed_and_local_smoothing_is_found() {
        let src = texture();
        // Warmer, brighter, more contrast: a whole-frame change, re-encoded.
        let graded = reencode(&RgbImage::from_fn(src.width(), src.height(), |x, y| {
            let p = src.get_pixel(x, y).0;
            image::Rgb([
                (f32::from(p[0]) * 1.15 + 10.0).min(255.0) as u8,
                (f32::from(p[1]) * 1.05).min(255.0) as u8,
                (f32::from(p[2]) * 0.85) as u8,
            ])
        }));
        let full = [0, 0, src.width(), src.height()];
        assert!(detect(&src, &graded, &IDENTITY, &full).regions.is_empty());
        // Blur a 96×96 patch: smoothing found there.
        let mut retouched = src.clone();
        let patch = image::imageops::crop_imm(&src, 200, 120, 96, 96).to_image();
        let blurred = image::imageops::blur(&patch, 4.0);
        image::imageops::replace(&mut retouched, &blurred, 200, 120);
        let found = detect(&src, &reencode(&retouched), &IDENTITY, &full).regions;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, EditKind::Smoothing, "{found:?}");
        // Located on the patch (200..296, 120..216), within a block.
        let b = found[0].bbox;
        assert!(
            b[0] + 16 >= 200
                && b[1] + 16 >= 120
                && b[0] + b[2] <= 296 + 16
                && b[1] + b[3] <= 216 + 16,
            "{b:?}"
        );
        assert!(b[2] * b[3] >= 96 * 96 / 3, "{b:?}");
    }
}
