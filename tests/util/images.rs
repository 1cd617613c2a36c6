//! Test images generated on the fly: photos-like content per seed, in JPEG, PNG and TIFF, with
//! real or malformed EXIF.

use std::io::Cursor;

use image::{ImageFormat, RgbImage};

/// A deterministic pseudo-random generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A textured scene that differs per seed.
pub fn scene(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng(seed);
    let blobs: Vec<(f64, f64, f64, [f64; 3])> = (0..12)
        .map(|_| {
            (
                rng.unit() * f64::from(w),
                rng.unit() * f64::from(h),
                (0.05 + rng.unit() * 0.2) * f64::from(w.max(h)),
                [rng.unit() * 255.0, rng.unit() * 255.0, rng.unit() * 255.0],
            )
        })
        .collect();
    let mut noise = Rng(seed ^ 0xABCD);
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (f64::from(x), f64::from(y));
        let mut c = [
            60.0 + 100.0 * fx / f64::from(w),
            80.0,
            60.0 + 100.0 * fy / f64::from(h),
        ];
        for (bx, by, r, col) in &blobs {
            let d2 = ((fx - bx).powi(2) + (fy - by).powi(2)) / (r * r);
            let a = (-d2).exp();
            for k in 0..3 {
                c[k] = c[k] * (1.0 - a) + col[k] * a;
            }
        }
        let n = (noise.unit() - 0.5) * 16.0;
        image::Rgb(c.map(|v| (v + n).clamp(0.0, 255.0) as u8))
    })
}

pub fn encode(img: &RgbImage, fmt: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), fmt).unwrap();
    out
}

pub fn jpeg(w: u32, h: u32, seed: u64) -> Vec<u8> {
    encode(&scene(w, h, seed), ImageFormat::Jpeg)
}

pub fn png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    encode(&scene(w, h, seed), ImageFormat::Png)
}

pub fn tiff(w: u32, h: u32, seed: u64) -> Vec<u8> {
    encode(&scene(w, h, seed), ImageFormat::Tiff)
}

/// Camera settings to write as EXIF.
pub struct Exif<'a> {
    pub make: &'a str,
    pub model: &'a str,
    pub lens: &'a str,
    pub date_time_original: &'a str,
    pub offset: &'a str,
    pub exposure: (u32, u32),
    pub f_number: (u32, u32),
    pub iso: u16,
    pub focal: (u32, u32),
    pub flash: u16,
    pub white_balance: u16,
    pub orientation: u16,
}

impl Default for Exif<'_> {
    fn default() -> Self {
        Exif {
            make: "Canon",
            model: "EOS R6",
            lens: "RF100mm F2.8 L MACRO IS USM",
            date_time_original: "2026:03:14 09:30:00",
            offset: "+01:00",
            exposure: (1, 125),
            f_number: (80, 10),
            iso: 200,
            focal: (100, 1),
            flash: 1,
            white_balance: 1,
            orientation: 1,
        }
    }
}

struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    bytes: Vec<u8>,
}

fn ascii(tag: u16, s: &str) -> Entry {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    Entry {
        tag,
        typ: 2,
        count: b.len() as u32,
        bytes: b,
    }
}
fn short(tag: u16, v: u16) -> Entry {
    Entry {
        tag,
        typ: 3,
        count: 1,
        bytes: v.to_le_bytes().to_vec(),
    }
}
fn long(tag: u16, v: u32) -> Entry {
    Entry {
        tag,
        typ: 4,
        count: 1,
        bytes: v.to_le_bytes().to_vec(),
    }
}
fn rational(tag: u16, (n, d): (u32, u32)) -> Entry {
    let mut b = n.to_le_bytes().to_vec();
    b.extend_from_slice(&d.to_le_bytes());
    Entry {
        tag,
        typ: 5,
        count: 1,
        bytes: b,
    }
}

/// Lay out IFDs (each a sorted entry list) starting at `start`; the last LONG of IFD i+1's
/// pointer is patched by the caller through `pointer_fix`.
fn layout(ifds: &mut [Vec<Entry>]) -> Vec<u8> {
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    let ifd_sizes: Vec<usize> = ifds.iter().map(|e| 2 + 12 * e.len() + 4).collect();
    let ifd_offsets: Vec<usize> = ifd_sizes
        .iter()
        .scan(8usize, |acc, s| {
            let o = *acc;
            *acc += s;
            Some(o)
        })
        .collect();
    // IFD 0 points to IFD 1 through the ExifIFD tag.
    if ifds.len() > 1 {
        for e in ifds[0].iter_mut() {
            if e.tag == 0x8769 {
                e.bytes = (ifd_offsets[1] as u32).to_le_bytes().to_vec();
            }
        }
    }
    let mut data_at = 8 + ifd_sizes.iter().sum::<usize>();
    let mut data = Vec::new();
    for ifd in ifds.iter() {
        out.extend_from_slice(&(ifd.len() as u16).to_le_bytes());
        for e in ifd {
            out.extend_from_slice(&e.tag.to_le_bytes());
            out.extend_from_slice(&e.typ.to_le_bytes());
            out.extend_from_slice(&e.count.to_le_bytes());
            if e.bytes.len() <= 4 {
                let mut v = e.bytes.clone();
                v.resize(4, 0);
                out.extend_from_slice(&v);
            } else {
                out.extend_from_slice(&(data_at as u32).to_le_bytes());
                data.extend_from_slice(&e.bytes);
                data_at += e.bytes.len();
                if e.bytes.len() % 2 == 1 {
                    data.push(0);
                    data_at += 1;
                }
            }
        }
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out.extend_from_slice(&data);
    out
}

/// The TIFF block of an EXIF segment.
pub fn exif_tiff(e: &Exif<'_>) -> Vec<u8> {
    let mut ifd0 = vec![
        ascii(0x010F, e.make),
        ascii(0x0110, e.model),
        short(0x0112, e.orientation),
        long(0x8769, 0),
    ];
    ifd0.sort_by_key(|x| x.tag);
    let mut exif = vec![
        rational(0x829A, e.exposure),
        rational(0x829D, e.f_number),
        short(0x8827, e.iso),
        ascii(0x9003, e.date_time_original),
        ascii(0x9011, e.offset),
        rational(0x920A, e.focal),
        short(0x9209, e.flash),
        short(0xA403, e.white_balance),
        ascii(0xA434, e.lens),
    ];
    exif.sort_by_key(|x| x.tag);
    layout(&mut [ifd0, exif])
}

/// Insert an APP1 segment with `payload` (after the `Exif\0\0` header) right after SOI.
pub fn with_app1(jpeg: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend_from_slice(payload);
    let len = (seg.len() + 2) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&seg);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A JPEG carrying the given EXIF.
pub fn jpeg_with_exif(w: u32, h: u32, seed: u64, e: &Exif<'_>) -> Vec<u8> {
    with_app1(&jpeg(w, h, seed), &exif_tiff(e))
}

/// A JPEG whose EXIF block is garbage (bad byte order and offsets).
pub fn jpeg_with_malformed_exif(w: u32, h: u32, seed: u64) -> Vec<u8> {
    with_app1(
        &jpeg(w, h, seed),
        b"XX\x2a\x00\xff\xff\xff\x7fgarbage-garbage-garbage",
    )
}

/// A PNG whose header claims `w`×`h` (the data is a 1×1 image), for limit tests.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = encode(&RgbImage::new(1, 1), ImageFormat::Png);
    // IHDR data starts at 16: width, height (big-endian); fix the CRC after.
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}
