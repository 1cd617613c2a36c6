//! EXIF parsing: the summary read from any bytes, alone and as a JPEG's APP1 segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sameframe_core::ingest;

fuzz_target!(|data: &[u8]| {
    let _ = ingest::read_exif(data);
    // As the APP1 segment of a minimal JPEG (lengths capped at a segment's maximum).
    let payload = &data[..data.len().min(65_000)];
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
    jpeg.extend(((payload.len() + 8) as u16).to_be_bytes());
    jpeg.extend(b"Exif\0\0");
    jpeg.extend(payload);
    jpeg.extend([0xFF, 0xD9]);
    let (summary, _) = ingest::read_exif(&jpeg);
    if let Some(s) = summary
        && let Some(o) = s.orientation
    {
        // Orientation is applied to images: any value must be handled.
        let _ = ingest::apply_orientation(image::DynamicImage::new_rgb8(2, 3), Some(o));
    }
});
