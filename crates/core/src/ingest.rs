//! Validation of image files before they enter the store: format sniffed from the bytes,
//! dimensions read from the header and checked against the limits *before* decoding, a full
//! decode to catch truncation and corruption, and an EXIF summary.
//!
//! Every error names the file (`subject`) and what is wrong with it.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader};
use serde::{Deserialize, Serialize};

use crate::calibration::Limits;

/// Why a file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{subject}: file is empty")]
    Empty { subject: String },
    #[error("{subject}: not a JPEG, PNG or TIFF image ({found})")]
    UnsupportedFormat { subject: String, found: String },
    #[error("{subject}: file is {size} bytes, more than the limit of {limit} bytes")]
    FileTooLarge {
        subject: String,
        size: u64,
        limit: u64,
    },
    #[error("{subject}: corrupt or truncated {format} header: {message}")]
    BadHeader {
        subject: String,
        format: &'static str,
        message: String,
    },
    #[error("{subject}: image has zero width or height ({width}×{height})")]
    ZeroSized {
        subject: String,
        width: u32,
        height: u32,
    },
    #[error(
        "{subject}: {width}×{height} is {megapixels:.1} MP, more than the limit of {limit_mp:.0} MP (set in limits.toml)"
    )]
    TooLarge {
        subject: String,
        width: u32,
        height: u32,
        megapixels: f64,
        limit_mp: f64,
    },
    #[error("{subject}: corrupt or truncated {format} data: {message}")]
    Corrupt {
        subject: String,
        format: &'static str,
        message: String,
    },
    #[error(
        "{subject}: {what} with {count} {unit}; only single pictures are accepted (another {unit} could show another patient): save each as its own file"
    )]
    MultiFrame {
        subject: String,
        what: &'static str,
        count: u32,
        unit: &'static str,
    },
    #[error(
        "{subject}: decoding this {width}×{height} {format} image would need about {need_mib} MiB, more than the limit of {budget_mib} MiB (decode_memory_mib in limits.toml)"
    )]
    NeedsTooMuchMemory {
        subject: String,
        format: &'static str,
        width: u32,
        height: u32,
        need_mib: u64,
        budget_mib: u64,
    },
    #[error("{subject}: is {what}, not a regular file")]
    NotAFile { subject: String, what: &'static str },
    #[error("could not read {subject}: {message}")]
    Unreadable { subject: String, message: String },
}

/// Read a file a user named, within `limits`: a regular file only (a link to one is
/// followed; a pipe, device or folder is refused before it is opened, so nothing can make the
/// read wait forever), its size checked before reading and the read itself capped.
pub fn read_file(path: &std::path::Path, limits: &Limits) -> Result<Vec<u8>, IngestError> {
    let (f, _) = open_file(path, limits)?;
    read_opened(f, path, limits)
}

/// Open a file a user named for reading, with the checks of [`read_file`]; also returns its
/// size.
pub fn open_file(
    path: &std::path::Path,
    limits: &Limits,
) -> Result<(std::fs::File, u64), IngestError> {
    crate::fsutil::open_regular(path, limits.max_file_bytes()).map_err(|e| read_error(path, e))
}

/// Read an opened file from its start, at most the file size limit.
pub fn read_opened(
    f: std::fs::File,
    path: &std::path::Path,
    limits: &Limits,
) -> Result<Vec<u8>, IngestError> {
    crate::fsutil::read_opened(f, limits.max_file_bytes()).map_err(|e| read_error(path, e))
}

fn read_error(path: &std::path::Path, e: crate::fsutil::ReadError) -> IngestError {
    use crate::fsutil::ReadError;
    let subject = path.display().to_string();
    match e {
        ReadError::NotAFile(what) => IngestError::NotAFile { subject, what },
        ReadError::TooLarge { size, limit } => IngestError::FileTooLarge {
            subject,
            size,
            limit,
        },
        ReadError::Io(e) => IngestError::Unreadable {
            subject,
            message: e.to_string(),
        },
    }
}

/// The container formats the store accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    Jpeg,
    Png,
    Tiff,
}

impl ImageKind {
    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpeg",
            ImageKind::Png => "png",
            ImageKind::Tiff => "tiff",
        }
    }

    /// The upper-case name used in messages.
    pub fn label(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "JPEG",
            ImageKind::Png => "PNG",
            ImageKind::Tiff => "TIFF",
        }
    }

    /// The `image` crate's name for the format.
    pub fn image_format(self) -> ImageFormat {
        match self {
            ImageKind::Jpeg => ImageFormat::Jpeg,
            ImageKind::Png => ImageFormat::Png,
            ImageKind::Tiff => ImageFormat::Tiff,
        }
    }

    /// Parse the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jpeg" => Some(ImageKind::Jpeg),
            "png" => Some(ImageKind::Png),
            "tiff" => Some(ImageKind::Tiff),
            _ => None,
        }
    }
}

/// Identify the container from its first bytes; other well-known formats get a helpful name.
pub fn sniff(bytes: &[u8], subject: &str) -> Result<ImageKind, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::Empty {
            subject: subject.to_string(),
        });
    }
    let starts = |m: &[u8]| bytes.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageKind::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageKind::Png);
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return Ok(ImageKind::Tiff);
    }
    let found = if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        match &bytes[8..12] {
            b"heic" | b"heix" | b"mif1" | b"msf1" | b"hevc" => {
                "a HEIC/HEIF photo: export it as JPEG from the phone or camera app".to_string()
            }
            b"avif" => "an AVIF image".to_string(),
            _ => "an ISO media (MP4/MOV) file".to_string(),
        }
    } else if starts(b"GIF8") {
        "a GIF image".to_string()
    } else if starts(b"RIFF") && bytes.len() >= 12 && &bytes[8..12] == b"WEBP" {
        "a WebP image".to_string()
    } else if starts(b"%PDF") {
        "a PDF document".to_string()
    } else if starts(b"BM") {
        "a BMP image".to_string()
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("starts with bytes {}", head.join(" "))
    };
    Err(IngestError::UnsupportedFormat {
        subject: subject.to_string(),
        found,
    })
}

/// What the import needs to know about a valid image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageInfo {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    pub exif: Option<ExifSummary>,
    /// A malformed EXIF block does not stop an import; the problem is reported here.
    pub exif_error: Option<String>,
}

/// The camera settings a comparability check needs, read from EXIF.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ExifSummary {
    pub make: Option<String>,
    pub model: Option<String>,
    pub lens: Option<String>,
    pub focal_length_mm: Option<f64>,
    pub focal_length_35mm: Option<u32>,
    pub exposure_time_s: Option<f64>,
    pub f_number: Option<f64>,
    pub iso: Option<u32>,
    /// "auto" or "manual".
    pub white_balance: Option<String>,
    pub flash_fired: Option<bool>,
    pub orientation: Option<u32>,
    pub subject_distance_m: Option<f64>,
    /// Local date-time of capture, `YYYY-MM-DDTHH:MM:SS` with `±HH:MM` when the camera recorded it.
    pub capture_date: Option<String>,
}

/// Everything an import checks, in order: header and limits, container structure, EXIF, and a
/// decode of a preview (at most `PREVIEW_SIDE` pixels on the long side). Returns the info and
/// the upright preview.
pub fn validate(
    bytes: &[u8],
    subject: &str,
    limits: &Limits,
) -> Result<(ImageInfo, DynamicImage), IngestError> {
    let (kind, width, height) = check_header(bytes, subject, limits)?;
    check_structure(bytes, kind, subject)?;
    let (exif, exif_error) = read_exif(bytes);
    let preview = decode_preview(bytes, kind, subject, limits)?;
    let preview = apply_orientation(preview, exif.as_ref().and_then(|e| e.orientation));
    Ok((
        ImageInfo {
            kind,
            width,
            height,
            exif,
            exif_error,
        },
        preview,
    ))
}

/// The long side of the preview decoded at import (thumbnails and fingerprints come from it).
pub const PREVIEW_SIDE: u32 = 512;

/// JPEG previews are decoded at the strongest DCT reduction that keeps this long side.
const PREVIEW_MIN_SIDE: u32 = 400;

/// Format, dimensions and limits from the header alone.
pub fn check_header(
    bytes: &[u8],
    subject: &str,
    limits: &Limits,
) -> Result<(ImageKind, u32, u32), IngestError> {
    if bytes.len() as u64 > limits.max_file_bytes() {
        return Err(IngestError::FileTooLarge {
            subject: subject.to_string(),
            size: bytes.len() as u64,
            limit: limits.max_file_bytes(),
        });
    }
    let kind = sniff(bytes, subject)?;
    let reader = ImageReader::with_format(Cursor::new(bytes), kind.image_format());
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| IngestError::BadHeader {
            subject: subject.to_string(),
            format: kind.label(),
            message: e.to_string(),
        })?;
    if width == 0 || height == 0 {
        return Err(IngestError::ZeroSized {
            subject: subject.to_string(),
            width,
            height,
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels() {
        return Err(IngestError::TooLarge {
            subject: subject.to_string(),
            width,
            height,
            megapixels: pixels as f64 / 1e6,
            limit_mp: limits.max_megapixels,
        });
    }
    Ok((kind, width, height))
}

/// Decode an image (header already checked), rejecting truncated data and files holding
/// several pictures, within the decode memory limit (see [`crate::decode`]).
pub fn decode(
    bytes: &[u8],
    kind: ImageKind,
    subject: &str,
    limits: &Limits,
    req: crate::decode::Request,
) -> Result<crate::decode::Decoded, IngestError> {
    check_structure(bytes, kind, subject)?;
    crate::decode::decode(bytes, kind.image_format(), subject, limits, req)
}

/// Check the container's structure without decoding pixels: a JPEG's segments, the markers
/// inside its entropy-coded data and its end-of-image marker; a PNG's chunk CRCs and its IEND
/// chunk. Catches truncation and most corruption in a few milliseconds (TIFF is checked by
/// decoding).
pub fn check_structure(bytes: &[u8], kind: ImageKind, subject: &str) -> Result<(), IngestError> {
    let result = match kind {
        ImageKind::Jpeg => jpeg_structure(bytes),
        ImageKind::Png => png_structure(bytes),
        ImageKind::Tiff => Ok(()),
    };
    result.map_err(|message| IngestError::Corrupt {
        subject: subject.to_string(),
        format: kind.label(),
        message,
    })
}

/// Walk a JPEG: segments by their lengths (so an EXIF thumbnail's markers inside APP1 are
/// skipped), then each scan's entropy-coded data, where `FF` may only be followed by `00`
/// (stuffing), `D0`–`D7` (restart), or a marker that starts the next segment. Data after EOI
/// (motion photos, MPF previews) is allowed.
fn jpeg_structure(bytes: &[u8]) -> Result<(), String> {
    let truncated = || "the file ends before the JPEG end-of-image marker (truncated)".to_string();
    let mut i = 2; // after SOI
    let mut seen_sos = false;
    loop {
        // Skip fill bytes before a marker.
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&ff), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return Err(truncated());
        };
        if ff != 0xFF {
            return Err(format!("expected a marker at byte {i}, found {ff:#04x}"));
        }
        match marker {
            0xD9 if seen_sos => return Ok(()),
            0xD9 => return Err("end-of-image marker before any image data".into()),
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            0x00 => return Err(format!("invalid marker at byte {i}")),
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (bytes.get(i + 2), bytes.get(i + 3)) else {
            return Err(truncated());
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < 2 {
            return Err(format!(
                "segment at byte {i} has an impossible length {len}"
            ));
        }
        i += 2 + len;
        if i > bytes.len() {
            return Err(truncated());
        }
        if marker != 0xDA {
            continue;
        }
        seen_sos = true;
        // Entropy-coded data up to the next marker.
        loop {
            let Some(off) = bytes[i..].iter().position(|&b| b == 0xFF) else {
                return Err(truncated());
            };
            i += off;
            match bytes.get(i + 1) {
                None => return Err(truncated()),
                Some(0x00 | 0xD0..=0xD7) => i += 2,
                Some(0xFF) => i += 1,
                Some(_) => break, // a real marker: back to the segment walk
            }
        }
    }
}

/// Walk a PNG's chunks, checking each CRC, up to a complete IEND.
fn png_structure(bytes: &[u8]) -> Result<(), String> {
    let mut i = 8;
    let mut first = true;
    while let Some(head) = bytes.get(i..i + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = i + 12 + len;
        if end > bytes.len() {
            return Err("the file ends inside a PNG chunk (truncated)".into());
        }
        let ty = &bytes[i + 4..i + 8];
        if first && ty != b"IHDR" {
            return Err("the first PNG chunk is not IHDR".into());
        }
        first = false;
        let stored = u32::from_be_bytes([
            bytes[end - 4],
            bytes[end - 3],
            bytes[end - 2],
            bytes[end - 1],
        ]);
        if crc32fast::hash(&bytes[i + 4..end - 4]) != stored {
            return Err(format!(
                "CRC mismatch in the {} chunk at byte {i} (damaged data)",
                String::from_utf8_lossy(ty)
            ));
        }
        if ty == b"IEND" {
            return Ok(());
        }
        i = end;
    }
    Err("the file ends before the PNG IEND chunk (truncated)".into())
}

/// Decode a preview at most [`PREVIEW_SIDE`] pixels on its long side. JPEGs are decoded with
/// DCT scaling (every coefficient is still entropy-decoded, so damage is still found, but the
/// inverse transform runs at 1/2 to 1/8 size); other formats are decoded within the decode
/// memory limit. Either is then reduced by [`crate::decode::reduce`].
pub fn decode_preview(
    bytes: &[u8],
    kind: ImageKind,
    subject: &str,
    limits: &Limits,
) -> Result<DynamicImage, IngestError> {
    let img = if kind == ImageKind::Jpeg {
        decode_jpeg_scaled(bytes, PREVIEW_MIN_SIDE, crate::decode::budget(limits)).map_err(
            |message| IngestError::Corrupt {
                subject: subject.to_string(),
                format: kind.label(),
                message,
            },
        )?
    } else {
        decode(bytes, kind, subject, limits, crate::decode::Request::FULL)?.image
    };
    Ok(crate::decode::reduce(img, PREVIEW_SIDE))
}

/// Decode a JPEG with DCT scaling to the smallest size whose long side is at least `side`,
/// the decoder holding at most `budget` bytes.
pub(crate) fn decode_jpeg_scaled(
    bytes: &[u8],
    side: u32,
    budget: u64,
) -> Result<DynamicImage, String> {
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.set_max_decoding_buffer_size(usize::try_from(budget).unwrap_or(usize::MAX));
    d.read_info().map_err(|e| e.to_string())?;
    let info = d.info().ok_or("no JPEG frame header")?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let long = w.max(h).max(1);
    let req = |v: u32| u16::try_from((v * side).div_ceil(long).max(1)).unwrap_or(u16::MAX);
    let (ow, oh) = d.scale(req(w), req(h)).map_err(|e| e.to_string())?;
    let px = d.decode().map_err(|e| e.to_string())?;
    let (ow, oh) = (u32::from(ow), u32::from(oh));
    let info = d.info().ok_or("no JPEG frame header")?;
    let bad = || "decoded buffer has the wrong size".to_string();
    Ok(match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(ow, oh, px).ok_or_else(bad)?)
        }
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(ow, oh, px).ok_or_else(bad)?)
        }
        jpeg_decoder::PixelFormat::L16 => {
            let v: Vec<u16> = px
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            DynamicImage::ImageLuma16(image::ImageBuffer::from_raw(ow, oh, v).ok_or_else(bad)?)
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            // Adobe CMYK JPEGs store inverted values; this is the usual approximation.
            let rgb: Vec<u8> = px
                .chunks_exact(4)
                .flat_map(|c| {
                    let k = u16::from(c[3]);
                    [c[0], c[1], c[2]].map(|v| (u16::from(v) * k / 255) as u8)
                })
                .collect();
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(ow, oh, rgb).ok_or_else(bad)?)
        }
    })
}

/// Read the EXIF summary. `(None, None)` when there is no EXIF; `(None, Some(problem))` when the
/// block is malformed.
pub fn read_exif(bytes: &[u8]) -> (Option<ExifSummary>, Option<String>) {
    use exif::{In, Tag, Value};
    let parsed = exif::Reader::new().read_from_container(&mut Cursor::new(bytes));
    let ex = match parsed {
        Ok(ex) => ex,
        Err(exif::Error::NotFound(_)) => return (None, None),
        Err(e) => return (None, Some(format!("malformed EXIF: {e}"))),
    };
    let field = |tag: Tag| {
        ex.get_field(tag, In::PRIMARY)
            .or_else(|| ex.fields().find(|f| f.tag == tag))
    };
    let text = |tag: Tag| -> Option<String> {
        match &field(tag)?.value {
            Value::Ascii(parts) => {
                let s: String = parts
                    .iter()
                    .map(|p| {
                        String::from_utf8_lossy(p)
                            .trim_matches(char::from(0))
                            .trim()
                            .to_string()
                    })
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                (!s.is_empty()).then_some(s)
            }
            _ => None,
        }
    };
    let rational = |tag: Tag| -> Option<f64> {
        match &field(tag)?.value {
            Value::Rational(v) => v.first().filter(|r| r.denom != 0).map(|r| r.to_f64()),
            Value::SRational(v) => v.first().filter(|r| r.denom != 0).map(|r| r.to_f64()),
            _ => None,
        }
        .filter(|x| x.is_finite())
    };
    let uint = |tag: Tag| field(tag).and_then(|f| f.value.get_uint(0));
    let capture_date = text(Tag::DateTimeOriginal)
        .or_else(|| text(Tag::DateTime))
        .and_then(|d| {
            let dt = chrono::NaiveDateTime::parse_from_str(d.trim(), "%Y:%m:%d %H:%M:%S").ok()?;
            let base = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
            let offset = text(Tag::OffsetTimeOriginal).filter(|o| {
                o.len() == 6
                    && (o.starts_with('+') || o.starts_with('-'))
                    && o.as_bytes()[3] == b':'
            });
            Some(match offset {
                Some(o) => format!("{base}{o}"),
                None => base,
            })
        });
    let summary = ExifSummary {
        make: text(Tag::Make),
        model: text(Tag::Model),
        lens: text(Tag::LensModel),
        focal_length_mm: rational(Tag::FocalLength),
        focal_length_35mm: uint(Tag::FocalLengthIn35mmFilm).filter(|&v| v > 0),
        exposure_time_s: rational(Tag::ExposureTime),
        f_number: rational(Tag::FNumber),
        iso: uint(Tag::PhotographicSensitivity),
        white_balance: uint(Tag::WhiteBalance)
            .map(|v| if v == 0 { "auto" } else { "manual" }.to_string()),
        flash_fired: uint(Tag::Flash).map(|v| v & 1 == 1),
        orientation: uint(Tag::Orientation).filter(|v| (1..=8).contains(v)),
        subject_distance_m: rational(Tag::SubjectDistance).filter(|d| *d > 0.0),
        capture_date,
    };
    (Some(summary), None)
}

/// Undo the EXIF orientation of a decoded image so it is shown as the photographer framed it.
pub fn apply_orientation(img: DynamicImage, orientation: Option<u32>) -> DynamicImage {
    match orientation {
        Some(2) => img.fliph(),
        Some(3) => img.rotate180(),
        Some(4) => img.flipv(),
        Some(5) => img.rotate90().fliph(),
        Some(6) => img.rotate90(),
        Some(7) => img.rotate270().fliph(),
        Some(8) => img.rotate270(),
        _ => img,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn sniff_names_other_formats() {
        let e = sniff(b"%PDF-1.7 whatever", "doc.pdf").unwrap_err();
        assert!(e.to_string().contains("doc.pdf") && e.to_string().contains("PDF"));
        let mut heic = vec![0, 0, 0, 24];
        heic.extend_from_slice(b"ftypheic0000");
        assert!(sniff(&heic, "x").unwrap_err().to_string().contains("HEIC"));
        assert!(matches!(sniff(b"", "x"), Err(IngestError::Empty { .. })));
    }

    #[test]
    fn valid_png_and_jpeg_pass() {
        let (info, img) = validate(&png(40, 30), "a.png", &Limits::default()).unwrap();
        assert_eq!(
            (info.kind, info.width, info.height),
            (ImageKind::Png, 40, 30)
        );
        assert_eq!((img.width(), img.height()), (40, 30));
        let full = decode(
            &png(40, 30),
            ImageKind::Png,
            "a.png",
            &Limits::default(),
            crate::decode::Request::FULL,
        )
        .unwrap();
        assert_eq!(full.image.width(), 40);
        let (info, _) = validate(&jpeg(64, 48), "a.jpg", &Limits::default()).unwrap();
        assert_eq!(info.kind, ImageKind::Jpeg);
    }

    #[test]
    fn truncated_files_are_refused() {
        for (name, bytes) in [("t.png", png(64, 64)), ("t.jpg", jpeg(256, 256))] {
            for cut in [bytes.len() / 2, bytes.len() - 3, 40] {
                let r = validate(&bytes[..cut], name, &Limits::default());
                assert!(r.is_err(), "{name} cut at {cut} was accepted");
                assert!(r.unwrap_err().to_string().contains(name));
            }
        }
    }

    #[test]
    fn damaged_structure_is_found_without_decoding() {
        let mut j = jpeg(256, 256);
        // An invalid marker inside the entropy-coded data.
        let sos = j.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let at = sos + 40;
        j[at] = 0xFF;
        j[at + 1] = 0x12;
        assert!(check_structure(&j, ImageKind::Jpeg, "x.jpg").is_err());
        let mut p = png(32, 32);
        let n = p.len();
        p[n / 2] ^= 1;
        let e = check_structure(&p, ImageKind::Png, "x.png").unwrap_err();
        assert!(e.to_string().contains("CRC"), "{e}");
    }

    #[test]
    fn preview_is_small_and_upright() {
        let (info, prev) = validate(&jpeg(1600, 900), "a.jpg", &Limits::default()).unwrap();
        assert_eq!((info.width, info.height), (1600, 900));
        assert!(prev.width() <= PREVIEW_SIDE && prev.width() >= PREVIEW_SIDE / 2);
        assert!(prev.width() > prev.height());
    }

    #[test]
    fn pixel_limit_is_checked_from_the_header() {
        let limits = Limits {
            max_megapixels: 0.001,
            max_file_mib: 10,
            ..Limits::default()
        };
        let e = validate(&png(40, 30), "big.png", &limits).unwrap_err();
        assert!(matches!(e, IngestError::TooLarge { .. }), "{e}");
    }
}
