//! Files made to test what the product accepts: several pictures in one file (an animated
//! PNG, WebP or GIF, a multi-page TIFF), and images within the limits that would need a lot of
//! memory decoded whole.

use std::io::Cursor;

use image::{Rgb, RgbImage, RgbaImage};

/// A small coloured picture, `k` choosing the colour.
fn swatch(w: u32, h: u32, k: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            k.wrapping_mul(60),
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
        ])
    })
}

/// A TIFF holding `pages` pictures of 16 × 16.
pub fn tiff_pages(pages: usize) -> Vec<u8> {
    let images: Vec<RgbImage> = (0..pages).map(|k| swatch(16, 16, k as u8)).collect();
    tiff_of(&images)
}

/// A multi-page TIFF of `images`, each a page.
pub fn tiff_of(images: &[RgbImage]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut enc = tiff::encoder::TiffEncoder::new(&mut out).expect("tiff encoder");
        for img in images {
            enc.write_image::<tiff::encoder::colortype::RGB8>(
                img.width(),
                img.height(),
                img.as_raw(),
            )
            .expect("tiff page");
        }
    }
    out.into_inner()
}

/// An animated PNG of `frames` frames of 16 × 16.
pub fn apng(frames: usize) -> Vec<u8> {
    let images: Vec<RgbImage> = (0..frames).map(|k| swatch(16, 16, k as u8)).collect();
    apng_of(&images)
}

/// An animated PNG of `images` (all the size of the first).
pub fn apng_of(images: &[RgbImage]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let (w, h) = images[0].dimensions();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_animated(images.len() as u32, 0).expect("apng");
        let mut writer = enc.write_header().expect("png header");
        for img in images {
            writer.write_image_data(img.as_raw()).expect("apng frame");
        }
        writer.finish().expect("png end");
    }
    out
}

/// An animated WebP of `frames` frames of 16 × 16.
pub fn animated_webp(frames: usize) -> Vec<u8> {
    let images: Vec<RgbImage> = (0..frames).map(|k| swatch(16, 16, k as u8)).collect();
    animated_webp_of(&images)
}

/// An animated WebP of `images` (lossless frames, all the size of the first).
pub fn animated_webp_of(images: &[RgbImage]) -> Vec<u8> {
    let (w, h) = images[0].dimensions();
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let chunk = |tag: &[u8], data: &[u8]| {
        let mut c = tag.to_vec();
        c.extend((data.len() as u32).to_le_bytes());
        c.extend(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02, 0, 0, 0]; // animation
    vp8x.extend(u24(w - 1));
    vp8x.extend(u24(h - 1));
    body.extend(chunk(b"VP8X", &vp8x));
    body.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for img in images {
        let mut still = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut still)
            .encode(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .expect("webp frame");
        // The still's image chunk (after RIFF size WEBP) becomes the frame's payload.
        let mut frame = Vec::new();
        frame.extend(u24(0));
        frame.extend(u24(0));
        frame.extend(u24(w - 1));
        frame.extend(u24(h - 1));
        frame.extend(u24(100));
        frame.push(0);
        frame.extend(&still[12..]);
        body.extend(chunk(b"ANMF", &frame));
    }
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// An animated GIF of `images`.
pub fn gif_of(images: &[RgbImage]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for img in images {
            let rgba: RgbaImage = image::DynamicImage::ImageRgb8(img.clone()).to_rgba8();
            enc.encode_frame(image::Frame::new(rgba))
                .expect("gif frame");
        }
    }
    out
}

/// A PNG of `w` × `h` 16-bit RGBA pixels that compresses to almost nothing (a flat colour
/// in bands): within a pixel limit, yet 8 bytes a pixel decoded whole. With `interlaced`, the
/// rows are stored in Adam7's seven passes.
pub fn flat_png16(w: u32, h: u32, interlaced: bool) -> Vec<u8> {
    use std::io::Write;
    let pixel = |y: u32| -> [u8; 8] {
        let r: u16 = if (y / 64).is_multiple_of(2) {
            0x8000
        } else {
            0x4000
        };
        let mut px = [0u8; 8];
        px[0..2].copy_from_slice(&r.to_be_bytes());
        px[2..4].copy_from_slice(&0x6000u16.to_be_bytes());
        px[4..6].copy_from_slice(&0x2000u16.to_be_bytes());
        px[6..8].copy_from_slice(&0xFFFFu16.to_be_bytes());
        px
    };
    // (x offset, y offset, x step, y step) of each pass; one pass of everything otherwise.
    let passes: &[(u32, u32, u32, u32)] = if interlaced {
        &[
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ]
    } else {
        &[(0, 0, 1, 1)]
    };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    for &(x0, y0, dx, dy) in passes {
        let cols = w.saturating_sub(x0).div_ceil(dx);
        if cols == 0 {
            continue;
        }
        let mut y = y0;
        while y < h {
            let mut row = vec![0u8]; // filter: none
            for _ in 0..cols {
                row.extend(pixel(y));
            }
            z.write_all(&row).expect("zlib");
            y += dy;
        }
    }
    let idat = z.finish().expect("zlib");
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([16, 6, 0, 0, u8::from(interlaced)]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (ty, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &idat), (b"IEND", &[])] {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(ty);
        out.extend(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    out
}
