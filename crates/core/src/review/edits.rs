//! Finding local alterations of a published panel against its registered source.
//!
//! Crop, resize and whole-frame colour or levels are allowed: the source is aligned onto the
//! panel and its colours are matched channel by channel (histogram matching, which absorbs any
//! monotonic tone curve). What remains, block by block, is compared with the panel's own
//! spread of differences (re-encoding noise); blocks far outside it form regions, classified by
//! how their detail changed: removed (smoothing), added with hard edges (text, logos,
//! watermarks), or replaced (cloning, liquify, selective retouching).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::analysis::pose::affine::Affine;

/// Block size in panel pixels.
const B: u32 = 16;

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
    /// Mean difference in the region relative to the panel's typical difference.
    pub strength: f64,
    /// Detail in the published region relative to the source (1 = unchanged).
    pub detail_ratio: f64,
}

/// Compare `published` (a panel region `panel` of it) with `source`, where `t` maps source
/// pixels to published pixels (an aspect change is a stretch, and as allowed as a resize).
pub fn detect(
    source: &RgbImage,
    published: &RgbImage,
    t: &Affine,
    panel: &[u32; 4],
) -> Vec<EditRegion> {
    let Some(inv) = t.inverse() else {
        return Vec::new();
    };
    let (sw, sh) = (f64::from(source.width()), f64::from(source.height()));
    let (pw, ph) = published.dimensions();
    let x0 = panel[0].min(pw);
    let y0 = panel[1].min(ph);
    let x1 = (panel[0] + panel[2]).min(pw);
    let y1 = (panel[1] + panel[3]).min(ph);
    if x1 <= x0 + 2 * B || y1 <= y0 + 2 * B {
        return Vec::new();
    }
    let (w, h) = (x1 - x0, y1 - y0);
    // Aligned source over the panel (None where the source does not cover it).
    let mut warped: Vec<Option<[f32; 3]>> = Vec::with_capacity((w * h) as usize);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = inv.apply([f64::from(x) + 0.5, f64::from(y) + 0.5]);
            let (sx, sy) = (p[0] - 0.5, p[1] - 0.5);
            if sx < 0.0 || sy < 0.0 || sx >= sw - 1.0 || sy >= sh - 1.0 {
                warped.push(None);
                continue;
            }
            let (ix, iy) = (sx as u32, sy as u32);
            let (fx, fy) = ((sx - f64::from(ix)) as f32, (sy - f64::from(iy)) as f32);
            let px = |xx: u32, yy: u32| source.get_pixel(xx, yy).0.map(f32::from);
            let (a, b, c, d) = (
                px(ix, iy),
                px(ix + 1, iy),
                px(ix, iy + 1),
                px(ix + 1, iy + 1),
            );
            warped.push(Some(std::array::from_fn(|k| {
                (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy
            })));
        }
    }
    // Whole-frame colour: match each source channel's histogram to the panel's.
    let mut maps = [[0f32; 256]; 3];
    for (k, map) in maps.iter_mut().enumerate() {
        let mut hs = [0u64; 256];
        let mut hp = [0u64; 256];
        for (i, s) in warped.iter().enumerate() {
            if let Some(s) = s {
                let (x, y) = (x0 + i as u32 % w, y0 + i as u32 / w);
                hs[(s[k].round() as usize).min(255)] += 1;
                hp[usize::from(published.get_pixel(x, y).0[k])] += 1;
            }
        }
        let total: u64 = hs.iter().sum();
        if total == 0 {
            return Vec::new();
        }
        let cdf = |h: &[u64; 256]| {
            let mut c = [0f64; 256];
            let mut acc = 0u64;
            for (i, v) in h.iter().enumerate() {
                acc += v;
                c[i] = acc as f64 / total as f64;
            }
            c
        };
        let (cs, cp) = (cdf(&hs), cdf(&hp));
        let mut j = 0usize;
        for (i, m) in map.iter_mut().enumerate() {
            while j < 255 && cp[j] < cs[i] {
                j += 1;
            }
            *m = j as f32;
        }
    }
    let luma = |c: [f32; 3]| 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    let (bw, bh) = (w / B, h / B);
    // Per block: mean |difference|, detail (gradient energy) of both, coverage, edge contrast.
    struct Blk {
        diff: f64,
        ep: f64,
        es: f64,
        covered: bool,
        saturated: f64,
    }
    let mut blocks: Vec<Blk> = Vec::with_capacity((bw * bh) as usize);
    for by in 0..bh {
        for bx in 0..bw {
            let (mut diff, mut ep, mut es, mut n, mut sat) = (0f64, 0f64, 0f64, 0u32, 0f64);
            let mut covered = true;
            for yy in 0..B {
                for xx in 0..B {
                    let (lx, ly) = (bx * B + xx, by * B + yy);
                    let i = (ly * w + lx) as usize;
                    let Some(s) = warped[i] else {
                        covered = false;
                        continue;
                    };
                    let sm = [
                        maps[0][(s[0].round() as usize).min(255)],
                        maps[1][(s[1].round() as usize).min(255)],
                        maps[2][(s[2].round() as usize).min(255)],
                    ];
                    let p = published.get_pixel(x0 + lx, y0 + ly).0.map(f32::from);
                    // A channel pushed to its limit by a whole-frame grade carries no evidence.
                    let clipped = p
                        .iter()
                        .chain(sm.iter())
                        .any(|&v| !(4.0..=251.0).contains(&v));
                    if !clipped {
                        diff += f64::from((luma(p) - luma(sm)).abs());
                    }
                    let mx = p.iter().copied().fold(0f32, f32::max);
                    let mn = p.iter().copied().fold(255f32, f32::min);
                    if mx > 0.0 && (mx - mn) / mx > 0.7 && mx > 150.0 {
                        sat += 1.0;
                    }
                    n += 1;
                    if xx + 1 < B && yy + 1 < B {
                        let (i_r, i_d) = (i + 1, i + w as usize);
                        if let (Some(sr), Some(sd)) = (warped[i_r], warped[i_d]) {
                            let pr = published.get_pixel(x0 + lx + 1, y0 + ly).0.map(f32::from);
                            let pd = published.get_pixel(x0 + lx, y0 + ly + 1).0.map(f32::from);
                            ep +=
                                f64::from((luma(pr) - luma(p)).abs() + (luma(pd) - luma(p)).abs());
                            es +=
                                f64::from((luma(sr) - luma(s)).abs() + (luma(sd) - luma(s)).abs());
                        }
                    }
                }
            }
            blocks.push(Blk {
                diff: diff / f64::from(n.max(1)),
                ep,
                es,
                covered: covered && n == B * B,
                saturated: sat / f64::from(n.max(1)),
            });
        }
    }
    let mut diffs: Vec<f64> = blocks
        .iter()
        .filter(|b| b.covered)
        .map(|b| b.diff)
        .collect();
    if diffs.len() < 12 {
        return Vec::new();
    }
    let med = median(&mut diffs);
    let mut dev: Vec<f64> = diffs.iter().map(|d| (d - med).abs()).collect();
    let mad = median(&mut dev).max(0.5);
    let threshold = (med + 7.0 * 1.4826 * mad).max(med * 2.5).max(9.0);
    let mut ratios: Vec<f64> = blocks
        .iter()
        .filter(|b| b.covered && b.es > 1.0)
        .map(|b| b.ep / b.es)
        .collect();
    let typical_ratio = if ratios.is_empty() {
        1.0
    } else {
        median(&mut ratios)
    };
    let flagged: Vec<bool> = blocks
        .iter()
        .map(|b| b.covered && b.diff > threshold)
        .collect();
    // Connected regions of flagged blocks.
    let mut seen = vec![false; flagged.len()];
    let mut out = Vec::new();
    for start in 0..flagged.len() {
        if !flagged[start] || seen[start] {
            continue;
        }
        let mut stack = vec![start];
        seen[start] = true;
        let mut members = Vec::new();
        while let Some(i) = stack.pop() {
            members.push(i);
            let (bx, by) = ((i as u32) % bw, (i as u32) / bw);
            let mut push = |nx: u32, ny: u32| {
                let j = (ny * bw + nx) as usize;
                if flagged[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if bx > 0 {
                push(bx - 1, by);
            }
            if bx + 1 < bw {
                push(bx + 1, by);
            }
            if by > 0 {
                push(bx, by - 1);
            }
            if by + 1 < bh {
                push(bx, by + 1);
            }
        }
        let strength = members.iter().map(|&i| blocks[i].diff).sum::<f64>()
            / members.len() as f64
            / med.max(1.0);
        // A lone block needs to stand out very strongly (noise, clipped colour and JPEG make
        // isolated blocks differ now and then).
        if members.len() < 2 && strength < 12.0 {
            continue;
        }
        // The region's typical block: its edges (where retouched meets untouched) would skew a
        // sum.
        let mut block_ratios: Vec<f64> = members
            .iter()
            .filter(|&&i| blocks[i].es > 1.0)
            .map(|&i| blocks[i].ep / blocks[i].es / typical_ratio)
            .collect();
        let ratio = if block_ratios.is_empty() {
            1.0
        } else {
            median(&mut block_ratios)
        };
        let saturated =
            members.iter().map(|&i| blocks[i].saturated).sum::<f64>() / members.len() as f64;
        let kind = if ratio < 0.75 {
            EditKind::Smoothing
        } else if ratio > 1.5 || saturated > 0.2 {
            EditKind::Overlay
        } else {
            EditKind::LocalChange
        };
        let bx0 = members.iter().map(|&i| i as u32 % bw).min().unwrap_or(0);
        let by0 = members.iter().map(|&i| i as u32 / bw).min().unwrap_or(0);
        let bx1 = members.iter().map(|&i| i as u32 % bw).max().unwrap_or(0) + 1;
        let by1 = members.iter().map(|&i| i as u32 / bw).max().unwrap_or(0) + 1;
        out.push(EditRegion {
            kind,
            bbox: [x0 + bx0 * B, y0 + by0 * B, (bx1 - bx0) * B, (by1 - by0) * B],
            strength,
            detail_ratio: ratio,
        });
    }
    out.sort_by(|a, b| b.strength.total_cmp(&a.strength));
    out
}

fn median(v: &mut [f64]) -> f64 {
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f64::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: Affine = Affine {
        m: [[1.0, 0.0], [0.0, 1.0]],
        t: [0.0, 0.0],
    };

    fn texture() -> RgbImage {
        let img =
            image::load_from_memory(include_bytes!("../../../../fixtures/textures/coffee.jpg"))
                .unwrap()
                .to_rgb8();
        image::imageops::crop_imm(&img, 0, 0, 480, 360).to_image()
    }

    fn reencode(img: &RgbImage) -> RgbImage {
        let mut v = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut v, 80,
        ))
        .unwrap();
        image::load_from_memory(&v).unwrap().to_rgb8()
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
        let found = detect(&src, &stretched, &t, &full);
        assert!(found.is_empty(), "{found:?}");
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
        assert!(detect(&src, &graded, &IDENTITY, &full).is_empty());
        // Blur a 96×96 patch: smoothing found there.
        let mut retouched = src.clone();
        let patch = image::imageops::crop_imm(&src, 200, 120, 96, 96).to_image();
        let blurred = image::imageops::blur(&patch, 4.0);
        image::imageops::replace(&mut retouched, &blurred, 200, 120);
        let found = detect(&src, &reencode(&retouched), &IDENTITY, &full);
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
