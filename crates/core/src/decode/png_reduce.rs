//! A PNG decoded row by row into an image `factor` times smaller on each side (the mean of
//! each `factor` × `factor` block), so an image far larger than memory allows is read with
//! one row and the small image in memory. Interlaced (Adam7) rows arrive pass by pass and are
//! placed where they belong.

use std::io::Cursor;

use image::{DynamicImage, ImageBuffer, Rgb};

use super::{Request, SLACK};

/// Bytes per pixel of the sums (three `f32`).
const SUM_BYTES: u64 = 12;

/// The memory a decode at `factor` holds: the sums, the output and a row.
pub(super) fn need(width: u32, height: u32, bytes_per_pixel: u64, factor: u32) -> u64 {
    let small = u64::from(width.div_ceil(factor)) * u64::from(height.div_ceil(factor));
    small * (SUM_BYTES + 6) + u64::from(width) * bytes_per_pixel + SLACK
}

/// The least factor whose decode fits `budget` (and no larger than the request needs).
pub(super) fn factor_within(
    width: u32,
    height: u32,
    bytes_per_pixel: u64,
    budget: u64,
    req: Request,
) -> u32 {
    let mut f = 2;
    while f < width.max(height) && need(width, height, bytes_per_pixel, f) > budget {
        f += 1;
    }
    if let Some(side) = req.max_side {
        f = f.max(width.max(height) / side.max(1));
    }
    f.max(1)
}

/// Where the rows of each Adam7 pass go: (x offset, y offset, x step, y step).
const ADAM7: [(u32, u32, u32, u32); 7] = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
];

/// The rows of an image in the order the decoder gives them: (y, x offset, x step, pixels).
fn row_order(width: u32, height: u32, interlaced: bool) -> Vec<(u32, u32, u32, u32)> {
    let passes: &[(u32, u32, u32, u32)] = if interlaced { &ADAM7 } else { &[(0, 0, 1, 1)] };
    let mut rows = Vec::new();
    for &(x0, y0, dx, dy) in passes {
        let cols = width.saturating_sub(x0).div_ceil(dx);
        if cols == 0 {
            continue;
        }
        rows.extend((y0..height).step_by(dy as usize).map(|y| (y, x0, dx, cols)));
    }
    rows
}

/// Decode `bytes` reduced by `factor`; 16-bit samples are kept when `keep_16_bit`.
pub(super) fn decode(
    bytes: &[u8],
    factor: u32,
    keep_16_bit: bool,
    budget: u64,
) -> Result<DynamicImage, String> {
    let limits = png::Limits {
        bytes: usize::try_from(budget).unwrap_or(usize::MAX),
    };
    let mut d = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    d.set_transformations(png::Transformations::EXPAND);
    let mut reader = d.read_info().map_err(|e| e.to_string())?;
    let info = reader.info();
    let (w, h, interlaced) = (info.width, info.height, info.interlaced);
    let (color, depth) = reader.output_color_type();
    let channels = color.samples();
    let sixteen = depth == png::BitDepth::Sixteen;
    let sample_bytes = if sixteen { 2 } else { 1 };
    let (sw, sh) = (w.div_ceil(factor), h.div_ceil(factor));
    let mut sums = vec![[0f32; 3]; sw as usize * sh as usize];
    for (y, x0, dx, cols) in row_order(w, h, interlaced) {
        let row = reader
            .next_row()
            .map_err(|e| e.to_string())?
            .ok_or("the PNG image data ends early (truncated)")?;
        let data = row.data();
        if data.len() != cols as usize * channels * sample_bytes {
            return Err("a PNG row has the wrong length".into());
        }
        let line = (y / factor) as usize * sw as usize;
        for (i, px) in data.chunks_exact(channels * sample_bytes).enumerate() {
            let x = x0 + i as u32 * dx;
            let sample = |c: usize| -> f32 {
                let k = c * sample_bytes;
                if sixteen {
                    f32::from(u16::from_be_bytes([px[k], px[k + 1]]))
                } else {
                    f32::from(px[k]) * 257.0
                }
            };
            let rgb = if channels >= 3 {
                [sample(0), sample(1), sample(2)]
            } else {
                [sample(0); 3]
            };
            let cell = &mut sums[line + (x / factor) as usize];
            for c in 0..3 {
                cell[c] += rgb[c];
            }
        }
    }
    // Each cell's mean over the pixels it covers (edge cells cover fewer).
    let covered =
        |i: u32, n: u32| f32::from(u16::try_from((n - i * factor).min(factor)).unwrap_or(u16::MAX));
    let mean = |x: u32, y: u32, c: usize| -> f32 {
        sums[(y * sw + x) as usize][c] / (covered(x, w) * covered(y, h))
    };
    Ok(if keep_16_bit && sixteen {
        let img = ImageBuffer::from_fn(sw, sh, |x, y| {
            Rgb([0, 1, 2].map(|c| mean(x, y, c).round().min(65535.0) as u16))
        });
        DynamicImage::ImageRgb16(img)
    } else {
        let img = ImageBuffer::from_fn(sw, sh, |x, y| {
            Rgb([0, 1, 2].map(|c| (mean(x, y, c) / 257.0).round().min(255.0) as u8))
        });
        DynamicImage::ImageRgb8(img)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam7_rows_cover_every_pixel_once() {
        for (w, h) in [(1, 1), (3, 2), (9, 17), (16, 16)] {
            let mut seen = vec![0u8; (w * h) as usize];
            for (y, x0, dx, cols) in row_order(w, h, true) {
                for i in 0..cols {
                    seen[(y * w + x0 + i * dx) as usize] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{w}×{h}");
        }
    }

    #[test]
    fn the_factor_fits_the_budget() {
        let f = factor_within(9999, 9999, 8, 64 << 20, Request::FULL);
        assert!(need(9999, 9999, 8, f) <= 64 << 20);
        assert!(need(9999, 9999, 8, f - 1) > 64 << 20);
    }
}
