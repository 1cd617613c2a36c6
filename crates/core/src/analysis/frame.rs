//! A camera frame or photo as the analyses see it: 8-bit or 16-bit sRGB, read as linear light
//! through lookup tables, plus a reduced "working" copy for detection.

use std::borrow::Cow;

use image::{DynamicImage, ImageBuffer, Rgb, RgbImage};

use super::color::{LUMA, lut8, lut16};

/// 16-bit RGB.
pub type Rgb16Image = ImageBuffer<Rgb<u16>, Vec<u16>>;

/// A frame in 8-bit or 16-bit sRGB.
#[derive(Clone, Debug)]
pub enum Frame<'a> {
    U8(Cow<'a, RgbImage>),
    U16(Cow<'a, Rgb16Image>),
}

impl<'a> Frame<'a> {
    /// Borrow an 8-bit RGB image.
    pub fn rgb8(img: &'a RgbImage) -> Self {
        Frame::U8(Cow::Borrowed(img))
    }

    /// View any decoded image; converts (once) when it is neither 8-bit nor 16-bit RGB.
    pub fn from_dynamic(img: &'a DynamicImage) -> Self {
        match img {
            DynamicImage::ImageRgb8(i) => Frame::U8(Cow::Borrowed(i)),
            DynamicImage::ImageRgb16(i) => Frame::U16(Cow::Borrowed(i)),
            _ if Self::is_deep(img) => Frame::U16(Cow::Owned(img.to_rgb16())),
            _ => Frame::U8(Cow::Owned(img.to_rgb8())),
        }
    }

    /// Whether `img` has more than 8 bits per channel: [`Frame::from_dynamic`] keeps it at 16
    /// bits, and an 8-bit copy of it would lose precision the analyses use.
    pub fn is_deep(img: &DynamicImage) -> bool {
        matches!(
            img,
            DynamicImage::ImageRgb16(_)
                | DynamicImage::ImageLuma16(_)
                | DynamicImage::ImageLumaA16(_)
                | DynamicImage::ImageRgba16(_)
                | DynamicImage::ImageRgb32F(_)
                | DynamicImage::ImageRgba32F(_)
        )
    }

    pub fn width(&self) -> u32 {
        match self {
            Frame::U8(i) => i.width(),
            Frame::U16(i) => i.width(),
        }
    }

    pub fn height(&self) -> u32 {
        match self {
            Frame::U8(i) => i.height(),
            Frame::U16(i) => i.height(),
        }
    }

    /// The largest code of the encoding (the sensor's limit as recorded).
    pub fn max_code(&self) -> u32 {
        match self {
            Frame::U8(_) => 255,
            Frame::U16(_) => 65535,
        }
    }

    /// Raw codes at a pixel.
    #[inline]
    pub fn raw(&self, x: u32, y: u32) -> [u32; 3] {
        match self {
            Frame::U8(i) => {
                let p = i.get_pixel(x, y).0;
                [u32::from(p[0]), u32::from(p[1]), u32::from(p[2])]
            }
            Frame::U16(i) => {
                let p = i.get_pixel(x, y).0;
                [u32::from(p[0]), u32::from(p[1]), u32::from(p[2])]
            }
        }
    }

    /// Linear RGB at a pixel.
    #[inline]
    pub fn linear(&self, x: u32, y: u32) -> [f32; 3] {
        match self {
            Frame::U8(i) => {
                let l = lut8();
                let p = i.get_pixel(x, y).0;
                [
                    l[usize::from(p[0])],
                    l[usize::from(p[1])],
                    l[usize::from(p[2])],
                ]
            }
            Frame::U16(i) => {
                let l = lut16();
                let p = i.get_pixel(x, y).0;
                [
                    l[usize::from(p[0])],
                    l[usize::from(p[1])],
                    l[usize::from(p[2])],
                ]
            }
        }
    }

    /// Luma on the 0–255 scale (gamma-encoded, as focus measures are usually defined).
    #[inline]
    pub fn luma255(&self, x: u32, y: u32) -> f32 {
        let [r, g, b] = self.raw(x, y);
        let s = 255.0 / self.max_code() as f32;
        (LUMA[0] * r as f32 + LUMA[1] * g as f32 + LUMA[2] * b as f32) * s
    }

    /// An 8-bit copy (for display and encoders).
    pub fn to_rgb8(&self) -> RgbImage {
        match self {
            Frame::U8(i) => i.clone().into_owned(),
            Frame::U16(i) => DynamicImage::ImageRgb16(i.clone().into_owned()).to_rgb8(),
        }
    }
}

/// A reduced copy in linear light, averaged over `factor × factor` blocks (averaging in linear
/// light is what a smaller sensor would have recorded).
#[derive(Clone, Debug)]
pub struct Working {
    pub width: u32,
    pub height: u32,
    /// Full-resolution pixels per working pixel.
    pub factor: u32,
    pub rgb: Vec<[f32; 3]>,
    /// Fraction of each block's pixels at the encoding's upper limit in some channel.
    pub clipped: Vec<f32>,
}

impl Working {
    /// Reduce `frame` so its long side is at most `max_side`.
    pub fn new(frame: &Frame<'_>, max_side: u32) -> Self {
        let (fw, fh) = (frame.width(), frame.height());
        let factor = fw.max(fh).div_ceil(max_side.max(1)).max(1);
        let (w, h) = ((fw / factor).max(1), (fh / factor).max(1));
        let mut rgb = vec![[0f32; 3]; (w * h) as usize];
        let mut clipped = vec![0f32; (w * h) as usize];
        let n = (factor * factor) as f32;
        match frame {
            Frame::U8(img) => {
                // Row-wise over the raw buffer: the hot path for camera frames.
                let lut = lut8();
                let raw = img.as_raw();
                let stride = fw as usize * 3;
                let f = factor as usize;
                for wy in 0..h as usize {
                    let out_row = wy * w as usize;
                    for y in wy * f..(wy + 1) * f {
                        let row = &raw[y * stride..y * stride + w as usize * f * 3];
                        for (wx, block) in row.chunks_exact(f * 3).enumerate() {
                            let acc = &mut rgb[out_row + wx];
                            let mut clip = 0u32;
                            for p in block.chunks_exact(3) {
                                acc[0] += lut[usize::from(p[0])];
                                acc[1] += lut[usize::from(p[1])];
                                acc[2] += lut[usize::from(p[2])];
                                clip += u32::from(p[0] >= 254 || p[1] >= 254 || p[2] >= 254);
                            }
                            clipped[out_row + wx] += clip as f32;
                        }
                    }
                }
            }
            Frame::U16(_) => {
                let top = frame.max_code().saturating_sub(frame.max_code() / 255);
                for wy in 0..h {
                    for wx in 0..w {
                        let i = (wy * w + wx) as usize;
                        for y in wy * factor..(wy + 1) * factor {
                            for x in wx * factor..(wx + 1) * factor {
                                let l = frame.linear(x, y);
                                for k in 0..3 {
                                    rgb[i][k] += l[k];
                                }
                                let r = frame.raw(x, y);
                                if r.iter().any(|&v| v >= top) {
                                    clipped[i] += 1.0;
                                }
                            }
                        }
                    }
                }
            }
        }
        for (c, k) in rgb.iter_mut().zip(clipped.iter_mut()) {
            *c = c.map(|v| v / n);
            *k /= n;
        }
        Working {
            width: w,
            height: h,
            factor,
            rgb,
            clipped,
        }
    }

    #[inline]
    pub fn at(&self, x: u32, y: u32) -> [f32; 3] {
        self.rgb[(y * self.width + x) as usize]
    }
}

/// The image reduced so its long side is at most `side` (borrowed when it already fits).
///
/// ```
/// let img = image::RgbImage::new(4000, 3000);
/// assert_eq!(sameframe_core::analysis::frame::fit_within(&img, 1600).dimensions(), (1600, 1200));
/// let small = image::RgbImage::new(800, 600);
/// assert!(matches!(sameframe_core::analysis::frame::fit_within(&small, 1600), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn fit_within(img: &RgbImage, side: u32) -> Cow<'_, RgbImage> {
    let (w, h) = img.dimensions();
    if w.max(h) <= side {
        return Cow::Borrowed(img);
    }
    let k = f64::from(side) / f64::from(w.max(h));
    Cow::Owned(resize_rgb(
        img,
        ((f64::from(w) * k).round() as u32).max(1),
        ((f64::from(h) * k).round() as u32).max(1),
    ))
}

/// Fast resampling: an integer box reduction to within 2× of the target, then bilinear.
pub fn resize_rgb(img: &RgbImage, nw: u32, nh: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let k = (w / nw.max(1)).min(h / nh.max(1)).max(1);
    let reduced;
    let src = if k >= 2 {
        let (rw, rh) = (w / k, h / k);
        let raw = img.as_raw();
        let mut acc = vec![0u32; (rw * rh * 3) as usize];
        for y in 0..(rh * k) as usize {
            let row = &raw[y * w as usize * 3..(y * w as usize + (rw * k) as usize) * 3];
            let out = &mut acc
                [(y / k as usize) * rw as usize * 3..(y / k as usize + 1) * rw as usize * 3];
            for (x, p) in row.chunks_exact(3).enumerate() {
                let o = (x / k as usize) * 3;
                out[o] += u32::from(p[0]);
                out[o + 1] += u32::from(p[1]);
                out[o + 2] += u32::from(p[2]);
            }
        }
        let n = k * k;
        reduced = RgbImage::from_raw(
            rw,
            rh,
            acc.iter().map(|&v| ((v + n / 2) / n) as u8).collect(),
        )
        .unwrap_or_else(|| RgbImage::new(rw, rh));
        &reduced
    } else {
        img
    };
    let (sw, sh) = src.dimensions();
    if (sw, sh) == (nw, nh) {
        return src.clone();
    }
    let (fx, fy) = (f64::from(sw) / f64::from(nw), f64::from(sh) / f64::from(nh));
    let raw = src.as_raw();
    let mut out = vec![0u8; (nw * nh * 3) as usize];
    for y in 0..nh as usize {
        let sy = ((y as f64 + 0.5) * fy - 0.5).clamp(0.0, f64::from(sh - 1));
        let y0 = sy as usize;
        let y1 = (y0 + 1).min(sh as usize - 1);
        let wy = (sy - y0 as f64) as f32;
        for x in 0..nw as usize {
            let sx = ((x as f64 + 0.5) * fx - 0.5).clamp(0.0, f64::from(sw - 1));
            let x0 = sx as usize;
            let x1 = (x0 + 1).min(sw as usize - 1);
            let wx = (sx - x0 as f64) as f32;
            for c in 0..3 {
                let p = |xx: usize, yy: usize| f32::from(raw[(yy * sw as usize + xx) * 3 + c]);
                let v = (p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx) * (1.0 - wy)
                    + (p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx) * wy;
                out[(y * nw as usize + x) * 3 + c] = (v + 0.5) as u8;
            }
        }
    }
    RgbImage::from_raw(nw, nh, out).unwrap_or_else(|| RgbImage::new(nw, nh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deep_image_is_kept_at_16_bits_and_any_other_at_8() {
        let rgb = DynamicImage::ImageRgb8(RgbImage::new(4, 3));
        let all = [
            rgb.clone(),
            DynamicImage::ImageLuma8(rgb.to_luma8()),
            DynamicImage::ImageLumaA8(rgb.to_luma_alpha8()),
            DynamicImage::ImageRgba8(rgb.to_rgba8()),
            DynamicImage::ImageRgb16(rgb.to_rgb16()),
            DynamicImage::ImageLuma16(rgb.to_luma16()),
            DynamicImage::ImageLumaA16(rgb.to_luma_alpha16()),
            DynamicImage::ImageRgba16(rgb.to_rgba16()),
            DynamicImage::ImageRgb32F(rgb.to_rgb32f()),
            DynamicImage::ImageRgba32F(rgb.to_rgba32f()),
        ];
        for img in &all {
            let sixteen = matches!(Frame::from_dynamic(img), Frame::U16(_));
            assert_eq!(sixteen, Frame::is_deep(img), "{:?}", img.color());
            assert_eq!(
                sixteen,
                img.color().bytes_per_pixel() > img.color().channel_count()
            );
        }
    }
}
