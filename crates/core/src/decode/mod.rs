//! Decoding an image within a memory budget.
//!
//! The pixel limit says how large an image may be; it does not say how much memory decoding
//! it takes (a 100 MP 16-bit RGBA PNG is 800 MB decoded, from a file of under a megabyte).
//! Before any pixel is decoded, a [`Plan`] reads the header and works out what the decode
//! will hold at its peak. Images that fit are decoded whole, as they always were; larger ones
//! are decoded reduced (a PNG row by row into a box-filtered smaller image, a JPEG with DCT
//! scaling) to the largest size that fits; formats that can only be decoded whole (TIFF,
//! WebP, GIF) are refused with the memory they would need. A file holding several pictures
//! (animations, multi-page TIFF) is refused: see [`frames`].

pub mod frames;
pub mod gate;
mod png_reduce;

use std::io::{BufRead, Cursor, Seek};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::calibration::Limits;
use crate::ingest::IngestError;

/// What the caller needs of a decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The long side the caller will use at most (`None`: as large as the budget allows).
    pub max_side: Option<u32>,
    /// Keep 16-bit samples as 16-bit (lighting measurement); otherwise 8 bits are enough.
    pub keep_16_bit: bool,
}

impl Request {
    /// The whole image, at full size when the budget allows.
    pub const FULL: Request = Request {
        max_side: None,
        keep_16_bit: false,
    };

    /// At most `side` pixels on the long side.
    pub fn fit(side: u32) -> Self {
        Request {
            max_side: Some(side),
            keep_16_bit: false,
        }
    }
}

/// How an image will be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// Whole, by the `image` decoders.
    Whole,
    /// Row by row into an image `factor` times smaller on each side.
    PngReduced { factor: u32 },
    /// With DCT scaling, by `scale` (2, 4 or 8).
    JpegScaled { scale: u32 },
}

/// What a decode will do and hold, worked out from the header.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes the decode holds at its peak (an estimate on the safe side).
    pub need: u64,
    how: How,
    req: Request,
}

/// An image as decoded, with the size of the original.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub image: DynamicImage,
    pub width: u32,
    pub height: u32,
}

impl Decoded {
    /// Original pixels per decoded pixel (1 when decoded at full size).
    pub fn reduction(&self) -> f64 {
        f64::from(self.width) / f64::from(self.image.width().max(1))
    }
}

/// The budget in bytes.
pub fn budget(limits: &Limits) -> u64 {
    limits.decode_memory_mib.saturating_mul(1024 * 1024)
}

/// Plan the decode of an image of format `format` read from `r` (only its header is read).
/// Errors name `subject`.
pub fn plan<R: BufRead + Seek>(
    mut r: R,
    format: ImageFormat,
    subject: &str,
    limits: &Limits,
    req: Request,
) -> Result<Plan, IngestError> {
    let header = |message: String| IngestError::BadHeader {
        subject: subject.to_string(),
        format: label(format),
        message,
    };
    let h = Header::read(&mut r, format).map_err(header)?;
    check_pixels(&h, subject, limits)?;
    let budget = budget(limits);
    let whole = h.whole_need(req);
    let how = if whole <= budget {
        How::Whole
    } else {
        match format {
            ImageFormat::Png => How::PngReduced {
                factor: png_reduce::factor_within(
                    h.width,
                    h.height,
                    h.bytes_per_pixel,
                    budget,
                    req,
                ),
            },
            ImageFormat::Jpeg => match h.jpeg_scale_within(budget) {
                Some(scale) => How::JpegScaled { scale },
                None => return Err(too_much(subject, &h, h.jpeg_need(8), budget)),
            },
            _ => return Err(too_much(subject, &h, whole, budget)),
        }
    };
    let need = match how {
        How::Whole => whole,
        How::PngReduced { factor } => {
            png_reduce::need(h.width, h.height, h.bytes_per_pixel, factor)
        }
        How::JpegScaled { scale } => h.jpeg_need(scale),
    };
    Ok(Plan {
        format,
        width: h.width,
        height: h.height,
        need,
        how,
        req,
    })
}

/// Decode `bytes` as planned: refused if it holds several pictures, and reduced to the
/// request's long side.
pub fn run(
    bytes: &[u8],
    plan: &Plan,
    subject: &str,
    limits: &Limits,
) -> Result<Decoded, IngestError> {
    let corrupt = |message: String| IngestError::Corrupt {
        subject: subject.to_string(),
        format: label(plan.format),
        message,
    };
    let f = frames::count(bytes, plan.format).map_err(corrupt)?;
    if f.count > 1 {
        return Err(IngestError::MultiFrame {
            subject: subject.to_string(),
            what: f.what,
            count: f.count,
            unit: f.unit,
        });
    }
    let budget = budget(limits);
    let img = match plan.how {
        How::Whole => {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), plan.format);
            let mut l = image::Limits::default();
            l.max_alloc = Some(budget);
            reader.limits(l);
            reader.decode().map_err(|e| corrupt(e.to_string()))?
        }
        How::PngReduced { factor } => {
            png_reduce::decode(bytes, factor, plan.req.keep_16_bit, budget).map_err(corrupt)?
        }
        How::JpegScaled { scale } => {
            let side = plan.width.max(plan.height).div_ceil(scale);
            crate::ingest::decode_jpeg_scaled(bytes, side, budget).map_err(corrupt)?
        }
    };
    Ok(Decoded {
        image: fit(img, plan.req),
        width: plan.width,
        height: plan.height,
    })
}

/// Plan and run in one step, for bytes already in memory.
///
/// ```
/// use sameframe_core::{calibration::Limits, decode};
/// let mut png = Vec::new();
/// image::RgbImage::new(64, 32)
///     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
///     .unwrap();
/// let d = decode::decode(&png, image::ImageFormat::Png, "x.png", &Limits::default(), decode::Request::fit(16)).unwrap();
/// assert_eq!((d.width, d.image.width(), d.image.height()), (64, 16, 8));
/// ```
pub fn decode(
    bytes: &[u8],
    format: ImageFormat,
    subject: &str,
    limits: &Limits,
    req: Request,
) -> Result<Decoded, IngestError> {
    let p = plan(Cursor::new(bytes), format, subject, limits, req)?;
    run(bytes, &p, subject, limits)
}

/// `img` no longer than `side` on its long side, reduced through a filter as wide as the
/// reduction (a triangle), as the edit check reduces the source it compares with: a box of
/// whole pixels (`thumbnail`) aliases a fine weave (a tie, a lab coat's fabric) into a moiré
/// that the source, reduced properly, does not have.
///
/// ```
/// use sameframe_core::decode::reduce;
/// let img = image::DynamicImage::new_rgb8(64, 32);
/// let small = reduce(img.clone(), 16);
/// assert_eq!((small.width(), small.height()), (16, 8));
/// assert_eq!(reduce(img, 100).width(), 64);
/// ```
pub fn reduce(img: DynamicImage, side: u32) -> DynamicImage {
    if img.width().max(img.height()) > side {
        img.resize(side, side, image::imageops::FilterType::Triangle)
    } else {
        img
    }
}

/// Reduce to the request: no longer than its long side ([`reduce`]), 8 bits unless 16 are
/// asked for.
fn fit(img: DynamicImage, req: Request) -> DynamicImage {
    let img = match req.max_side {
        Some(side) => reduce(img, side),
        None => img,
    };
    let sixteen = matches!(
        img,
        DynamicImage::ImageRgb16(_)
            | DynamicImage::ImageRgba16(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA16(_)
    );
    if sixteen && !req.keep_16_bit {
        DynamicImage::ImageRgb8(img.to_rgb8())
    } else {
        img
    }
}

fn check_pixels(h: &Header, subject: &str, limits: &Limits) -> Result<(), IngestError> {
    if h.width == 0 || h.height == 0 {
        return Err(IngestError::ZeroSized {
            subject: subject.to_string(),
            width: h.width,
            height: h.height,
        });
    }
    let pixels = u64::from(h.width) * u64::from(h.height);
    if pixels > limits.max_pixels() {
        return Err(IngestError::TooLarge {
            subject: subject.to_string(),
            width: h.width,
            height: h.height,
            megapixels: pixels as f64 / 1e6,
            limit_mp: limits.max_megapixels,
        });
    }
    Ok(())
}

fn too_much(subject: &str, h: &Header, need: u64, budget: u64) -> IngestError {
    IngestError::NeedsTooMuchMemory {
        subject: subject.to_string(),
        format: label(h.format),
        width: h.width,
        height: h.height,
        need_mib: need.div_ceil(1024 * 1024),
        budget_mib: budget / (1024 * 1024),
    }
}

/// The name of a format in messages.
pub fn label(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        _ => "image",
    }
}

/// What the header says about the pixels.
#[derive(Clone, Copy, Debug)]
struct Header {
    format: ImageFormat,
    width: u32,
    height: u32,
    /// Bytes per pixel as the decoder produces it.
    bytes_per_pixel: u64,
    /// JPEG: channels, and whether every DCT coefficient is held until the end.
    jpeg: Option<(u64, bool)>,
}

/// Room for a decoder's own buffers, beyond its pixels.
const SLACK: u64 = 16 << 20;

impl Header {
    fn read<R: BufRead + Seek>(r: &mut R, format: ImageFormat) -> Result<Header, String> {
        if format == ImageFormat::Jpeg {
            let mut d = jpeg_decoder::Decoder::new(&mut *r);
            d.read_info().map_err(|e| e.to_string())?;
            let info = d.info().ok_or("no JPEG frame header")?;
            let channels = match info.pixel_format {
                jpeg_decoder::PixelFormat::L8 => 1,
                jpeg_decoder::PixelFormat::L16 => 2,
                jpeg_decoder::PixelFormat::RGB24 => 3,
                jpeg_decoder::PixelFormat::CMYK32 => 4,
            };
            let progressive = info.coding_process != jpeg_decoder::CodingProcess::DctSequential;
            return Ok(Header {
                format,
                width: u32::from(info.width),
                height: u32::from(info.height),
                bytes_per_pixel: channels,
                jpeg: Some((channels, progressive)),
            });
        }
        let d = ImageReader::with_format(&mut *r, format)
            .into_decoder()
            .map_err(|e| e.to_string())?;
        let (width, height) = d.dimensions();
        Ok(Header {
            format,
            width,
            height,
            bytes_per_pixel: u64::from(d.color_type().bytes_per_pixel()),
            jpeg: None,
        })
    }

    fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// The decoded image, and the 8- or 16-bit RGB copy made of it.
    fn whole_need(&self, req: Request) -> u64 {
        if self.format == ImageFormat::Jpeg {
            return self.jpeg_need(1);
        }
        let out = if req.keep_16_bit && self.bytes_per_pixel > 4 {
            6
        } else {
            3
        };
        self.pixels() * (self.bytes_per_pixel + out) + SLACK
    }

    /// A JPEG decoded at 1/`scale`: its coefficients when progressive (held at full size);
    /// whole (`scale` 1, by `image`), the output; scaled (by `jpeg-decoder`), the component
    /// planes and the output.
    fn jpeg_need(&self, scale: u32) -> u64 {
        let (channels, progressive) = self.jpeg.unwrap_or((3, true));
        let coefficients = if progressive {
            self.pixels() * channels * 2
        } else {
            0
        };
        if scale == 1 {
            return coefficients + self.pixels() * channels.max(3) + SLACK;
        }
        let scaled = u64::from(self.width.div_ceil(scale)) * u64::from(self.height.div_ceil(scale));
        coefficients + scaled * (channels + 3) + SLACK
    }

    /// The least DCT scaling whose decode fits `budget`.
    fn jpeg_scale_within(&self, budget: u64) -> Option<u32> {
        [2, 4, 8].into_iter().find(|&s| self.jpeg_need(s) <= budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::files;

    fn limits(budget_mib: u64) -> Limits {
        Limits {
            decode_memory_mib: budget_mib,
            ..Limits::default()
        }
    }

    #[test]
    fn a_png_too_large_to_hold_is_decoded_reduced_with_its_true_colours() {
        for interlaced in [false, true] {
            let png = files::flat_png16(3000, 2000, interlaced);
            let d = decode(
                &png,
                ImageFormat::Png,
                "big.png",
                &limits(32),
                Request::FULL,
            )
            .unwrap();
            assert_eq!((d.width, d.height), (3000, 2000));
            assert!(d.image.width() < 3000, "{interlaced}: decoded at full size");
            let img = d.image.to_rgb8();
            // First band: 0x8000 → 128, then 0x6000 → 96, 0x2000 → 32.
            let p = img.get_pixel(0, 0);
            assert!(
                (i32::from(p[0]) - 128).abs() <= 1 && (i32::from(p[1]) - 96).abs() <= 1,
                "{interlaced}: {p:?}"
            );
            // Second band (rows 64–127 of the original) is darker in red.
            let y = (96.0 / d.reduction()) as u32;
            assert!(img.get_pixel(0, y)[0] < 70, "{interlaced}");
        }
    }

    #[test]
    fn the_reduced_png_matches_the_whole_decode() {
        let png = files::flat_png16(640, 480, false);
        let whole = decode(&png, ImageFormat::Png, "x", &limits(256), Request::FULL).unwrap();
        let small = decode(&png, ImageFormat::Png, "x", &limits(18), Request::FULL).unwrap();
        assert_eq!(whole.image.width(), 640);
        let k = small.reduction();
        let (a, b) = (whole.image.to_rgb8(), small.image.to_rgb8());
        for (x, y) in [(5, 5), (300, 30), (600, 470)] {
            let p = b.get_pixel(x / k as u32, y / k as u32);
            let q = a.get_pixel(x, y);
            assert!(
                (i32::from(p[0]) - i32::from(q[0])).abs() <= 40,
                "{p:?} {q:?}"
            );
        }
    }

    #[test]
    fn a_whole_only_format_beyond_the_budget_is_refused_naming_its_need() {
        let tiff = files::tiff_of(&[image::RgbImage::new(2000, 2000)]);
        let e = decode(
            &tiff,
            ImageFormat::Tiff,
            "scan.tif",
            &limits(8),
            Request::FULL,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("scan.tif") && e.contains("MiB") && e.contains("decode_memory_mib"),
            "{e}"
        );
    }

    #[test]
    fn several_pictures_in_one_file_are_refused() {
        let cases = [
            (files::apng(2), ImageFormat::Png, "animated PNG"),
            (files::animated_webp(3), ImageFormat::WebP, "animated WebP"),
            (files::tiff_pages(2), ImageFormat::Tiff, "multi-page TIFF"),
            (
                files::gif_of(&[image::RgbImage::new(8, 8), image::RgbImage::new(8, 8)]),
                ImageFormat::Gif,
                "animated GIF",
            ),
        ];
        for (bytes, fmt, what) in cases {
            let e = decode(&bytes, fmt, "f", &limits(64), Request::FULL)
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{what}: {e}");
        }
    }
}
