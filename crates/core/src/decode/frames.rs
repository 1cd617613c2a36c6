//! How many pictures a file holds. Decoders show the first frame of an animated PNG, WebP or
//! GIF and the first page of a TIFF; a viewer shows them all. A file that holds more than one
//! picture cannot be traced to its sources by its first frame (the second could be another
//! patient), so it is counted here, from the container alone, without decoding any pixels.
//!
//! JPEG is one picture: the secondary images of a multi-picture (MPF) JPEG are previews and
//! depth maps that browsers and image viewers do not show.

use image::ImageFormat;

/// The pictures in a file, and what they are called in its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frames {
    pub count: u32,
    /// "frames" (animations) or "pages" (TIFF).
    pub unit: &'static str,
    /// "an animated PNG", "a multi-page TIFF"…
    pub what: &'static str,
}

impl Frames {
    fn one() -> Self {
        Frames {
            count: 1,
            unit: "frames",
            what: "an image",
        }
    }
}

/// Count the pictures in `bytes` of format `fmt`. A container too damaged to walk is an error
/// (the decoder would fail on it too).
///
/// ```
/// use sameframe_core::decode::frames::count;
/// let mut png = Vec::new();
/// image::RgbImage::new(4, 4)
///     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
///     .unwrap();
/// assert_eq!(count(&png, image::ImageFormat::Png).unwrap().count, 1);
/// ```
pub fn count(bytes: &[u8], fmt: ImageFormat) -> Result<Frames, String> {
    match fmt {
        ImageFormat::Png => png(bytes),
        ImageFormat::WebP => webp(bytes),
        ImageFormat::Gif => gif(bytes),
        ImageFormat::Tiff => tiff(bytes),
        _ => Ok(Frames::one()),
    }
}

/// An APNG announces its frames in an `acTL` chunk before the image data.
fn png(bytes: &[u8]) -> Result<Frames, String> {
    let mut i = 8;
    while let Some(head) = bytes.get(i..i + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let ty = &head[4..8];
        if ty == b"IDAT" || ty == b"IEND" {
            break;
        }
        if ty == b"acTL" {
            let d = bytes
                .get(i + 8..i + 12)
                .ok_or("the PNG acTL chunk is cut short")?;
            return Ok(Frames {
                count: u32::from_be_bytes([d[0], d[1], d[2], d[3]]).max(1),
                unit: "frames",
                what: "an animated PNG",
            });
        }
        i = i.saturating_add(12).saturating_add(len);
    }
    Ok(Frames::one())
}

/// An animated WebP holds one `ANMF` chunk per frame.
fn webp(bytes: &[u8]) -> Result<Frames, String> {
    let mut i = 12;
    let mut frames = 0u32;
    while let Some(head) = bytes.get(i..i + 8) {
        if &head[0..4] == b"ANMF" {
            frames += 1;
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        // Chunks are padded to an even length.
        i = i.saturating_add(8).saturating_add(len + (len & 1));
    }
    Ok(if frames > 0 {
        Frames {
            count: frames,
            unit: "frames",
            what: "an animated WebP",
        }
    } else {
        Frames::one()
    })
}

/// A GIF is a sequence of blocks: extensions, image descriptors (one per frame), a trailer.
fn gif(bytes: &[u8]) -> Result<Frames, String> {
    let cut = || "the GIF ends inside a block (truncated)".to_string();
    let flags = *bytes.get(10).ok_or_else(cut)?;
    let mut i = 13 + colour_table(flags);
    let mut frames = 0u32;
    loop {
        match bytes.get(i) {
            Some(0x3B) | None => break,
            Some(0x21) => i = skip_sub_blocks(bytes, i + 2).ok_or_else(cut)?,
            Some(0x2C) => {
                frames += 1;
                let flags = *bytes.get(i + 9).ok_or_else(cut)?;
                // Descriptor, local colour table, LZW code size, then the data sub-blocks.
                i = skip_sub_blocks(bytes, i + 10 + colour_table(flags) + 1).ok_or_else(cut)?;
            }
            Some(b) => return Err(format!("unexpected GIF block {b:#04x} at byte {i}")),
        }
    }
    Ok(Frames {
        count: frames.max(1),
        unit: "frames",
        what: "an animated GIF",
    })
}

/// Bytes of the colour table a GIF flags byte announces.
fn colour_table(flags: u8) -> usize {
    if flags & 0x80 != 0 {
        3 << ((flags & 0x07) + 1)
    } else {
        0
    }
}

/// The offset after a run of GIF sub-blocks starting at `i`.
fn skip_sub_blocks(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let n = usize::from(*bytes.get(i)?);
        i += 1;
        if n == 0 {
            return Some(i);
        }
        i += n;
    }
}

/// A TIFF's pages are its chain of image directories; a directory marked as a reduced-size
/// copy (a thumbnail) or a transparency mask is not a page.
fn tiff(bytes: &[u8]) -> Result<Frames, String> {
    let r = TiffReader::new(bytes).ok_or("not a TIFF header")?;
    let mut offset = r.first_ifd().ok_or("the TIFF header is cut short")?;
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0u32;
    while offset != 0 {
        if !seen.insert(offset) || seen.len() > 10_000 {
            return Err(format!(
                "the TIFF directory chain loops back to byte {offset}"
            ));
        }
        let (subfile, next) = r
            .ifd(offset)
            .ok_or_else(|| format!("the TIFF directory at byte {offset} is cut short"))?;
        if subfile & 0b101 == 0 {
            pages += 1;
        }
        offset = next;
    }
    Ok(Frames {
        count: pages.max(1),
        unit: "pages",
        what: "a multi-page TIFF",
    })
}

/// Just enough of TIFF and BigTIFF to walk the directory chain.
struct TiffReader<'a> {
    bytes: &'a [u8],
    little: bool,
    big: bool,
}

impl<'a> TiffReader<'a> {
    fn new(bytes: &'a [u8]) -> Option<Self> {
        let little = match bytes.get(0..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let mut r = TiffReader {
            bytes,
            little,
            big: false,
        };
        r.big = r.uint(2, 2)? == 43;
        Some(r)
    }

    fn uint(&self, at: u64, n: usize) -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b = self.bytes.get(at..at.checked_add(n)?)?;
        let mut v = 0u64;
        for k in 0..n {
            let byte = if self.little { b[n - 1 - k] } else { b[k] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    }

    fn first_ifd(&self) -> Option<u64> {
        if self.big {
            self.uint(8, 8)
        } else {
            self.uint(4, 4)
        }
    }

    /// The directory at `at`: its NewSubfileType (0 when absent) and the next directory.
    fn ifd(&self, at: u64) -> Option<(u64, u64)> {
        let (count_len, entry_len, off_len) = if self.big { (8, 20, 8) } else { (2, 12, 4) };
        let n = self.uint(at, count_len)?;
        let first = at + count_len as u64;
        let mut subfile = 0;
        for e in 0..n.min(65_536) {
            let entry = first + e * entry_len;
            if self.uint(entry, 2)? == 254 {
                // LONG (or LONG8 in BigTIFF), the value inline.
                let ty = self.uint(entry + 2, 2)?;
                let value_at = entry + if self.big { 12 } else { 8 };
                subfile = match ty {
                    3 => self.uint(value_at, 2)?,
                    16 => self.uint(value_at, 8)?,
                    _ => self.uint(value_at, 4)?,
                };
            }
        }
        let next = self.uint(first + n * entry_len, off_len)?;
        Some((subfile, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};

    fn animated_gif(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = GifEncoder::new(&mut out);
            for k in 0..n {
                let img = RgbaImage::from_pixel(8, 8, image::Rgba([k as u8 * 40, 0, 0, 255]));
                enc.encode_frame(Frame::from_parts(
                    img,
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                ))
                .unwrap();
            }
        }
        out
    }

    #[test]
    fn gif_frames_are_counted() {
        for n in [1, 2, 5] {
            assert_eq!(
                count(&animated_gif(n), ImageFormat::Gif).unwrap().count,
                n as u32
            );
        }
        // Cut anywhere: counted up to the cut or refused as damaged, never more.
        let g = animated_gif(3);
        for end in 0..g.len() {
            if let Ok(f) = count(&g[..end], ImageFormat::Gif) {
                assert!(f.count <= 3);
            }
        }
    }

    #[test]
    fn tiff_pages_are_counted_and_loops_refused() {
        let one = crate::testkit::files::tiff_pages(1);
        assert_eq!(count(&one, ImageFormat::Tiff).unwrap().count, 1);
        let three = crate::testkit::files::tiff_pages(3);
        let f = count(&three, ImageFormat::Tiff).unwrap();
        assert_eq!((f.count, f.unit), (3, "pages"));
        // Point the last directory's "next" back at the first.
        let mut looped = crate::testkit::files::tiff_pages(2);
        let first = u32::from_le_bytes(looped[4..8].try_into().unwrap());
        let r = TiffReader::new(&looped).unwrap();
        let (_, second) = r.ifd(u64::from(first)).unwrap();
        let n = r.uint(second, 2).unwrap();
        let next_at = (second + 2 + n * 12) as usize;
        looped[next_at..next_at + 4].copy_from_slice(&first.to_le_bytes());
        assert!(
            count(&looped, ImageFormat::Tiff)
                .unwrap_err()
                .contains("loops")
        );
    }

    #[test]
    fn animated_png_and_webp_are_counted() {
        let apng = crate::testkit::files::apng(3);
        assert_eq!(count(&apng, ImageFormat::Png).unwrap().count, 3);
        let webp = crate::testkit::files::animated_webp(2);
        assert_eq!(count(&webp, ImageFormat::WebP).unwrap().count, 2);
    }
}
