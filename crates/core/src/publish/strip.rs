//! Encoding a copy with no metadata at all: no EXIF, XMP, IPTC, ICC, comment or JFIF segment
//! in a JPEG, no text or time chunk in a PNG. The provenance manifest is added after this.

use image::RgbImage;

/// Encode `img` as JPEG (`quality` 1–100) with no application segment.
pub fn jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|e| format!("could not encode the copy as JPEG: {e}"))?;
    Ok(without_app_segments(&out))
}

/// Encode `img` as PNG with only the chunks its pixels need.
pub fn png(img: &RgbImage) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| format!("could not encode the copy as PNG: {e}"))?;
    Ok(out)
}

/// The segments of a JPEG up to and including its start of scan, as (marker, byte range from
/// the segment's 0xFF). Empty when the bytes do not start like a JPEG; a segment cut short ends
/// the list at the file's end.
pub fn header_segments(jpeg: &[u8]) -> Vec<(u8, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return out;
    }
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        let end = (i + 2 + len).min(jpeg.len());
        out.push((marker, i..end));
        if marker == 0xDA {
            break;
        }
        i = end;
    }
    out
}

/// A JPEG's bytes without its APPn and COM segments (everything before the first frame
/// header that is not needed to decode it).
pub fn without_app_segments(jpeg: &[u8]) -> Vec<u8> {
    let segments = header_segments(jpeg);
    let Some(last) = segments.last() else {
        return jpeg.to_vec();
    };
    let rest = last.1.end;
    let mut out = vec![0xFF, 0xD8];
    for (marker, r) in &segments {
        let metadata = (0xE0..=0xEF).contains(marker) || *marker == 0xFE;
        if !metadata {
            out.extend_from_slice(&jpeg[r.clone()]);
        }
    }
    // The entropy-coded data and the rest follow as they are.
    out.extend_from_slice(&jpeg[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jpeg_has_no_application_segment_and_still_decodes() {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
        let j = jpeg(&img, 90).unwrap();
        let segments = header_segments(&j);
        assert_eq!(
            segments.last().map(|(m, _)| *m),
            Some(0xDA),
            "the walk reaches the scan"
        );
        for (m, _) in &segments {
            assert!(!(0xE0..=0xEF).contains(m) && *m != 0xFE, "marker {m:X}");
        }
        let back = image::load_from_memory(&j).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (64, 48));
        let d = back.get_pixel(40, 20).0[0].abs_diff(160);
        assert!(d < 8, "{d}");
    }
}
