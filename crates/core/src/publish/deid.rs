//! De-identification of a publication panel: crop to the treated zone, or mask everything
//! outside it. Zones come from the face landmarks (`calibration/publication.toml`); a copy that
//! must be de-identified is checked afterwards for a face that can still be recognised. Eye
//! bars are not offered: a face with its eyes covered is still recognisable.

use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use super::config::Zone;
use crate::analysis::pose::face::{self, Landmarks};

/// How a panel is de-identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Crop to the treated zone's bounding box.
    Crop,
    /// Keep the treated zone, fill everything else with flat grey (the frame keeps its size
    /// and framing, so before and after still line up).
    Mask,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "crop" => Ok(Method::Crop),
            "mask" => Ok(Method::Mask),
            "eye-bar" | "eyebar" | "eye_bar" | "bar" => Err(
                "eye bars are not de-identification (a face with its eyes covered is still recognisable): use crop or mask".into(),
            ),
            other => Err(format!("unknown de-identification {other:?} (expected crop or mask)")),
        }
    }
}

/// The fill of masked pixels.
pub const MASK_FILL: Rgb<u8> = Rgb([128, 128, 128]);

/// A de-identified panel: its pixels, which of them show the photo, and where it came from in
/// the capture.
#[derive(Clone, Debug)]
pub struct Deidentified {
    pub image: RgbImage,
    /// `true` where the pixel is the photo's (not masked), row-major.
    pub kept: Vec<bool>,
    /// The crop in capture pixels: [x, y, w, h].
    pub crop: [u32; 4],
    pub description: String,
}

/// Why a panel could not be de-identified.
#[derive(Debug, thiserror::Error)]
pub enum DeidError {
    #[error("no face was found, so the zone {zone} (drawn from face landmarks) cannot be placed")]
    NoFace { zone: String },
    #[error("the face model is unavailable: {0}")]
    Model(String),
    #[error("the treated zone {zone} is empty in this photo")]
    Empty { zone: String },
}

type Polygon = Vec<[f32; 2]>;

/// Convex hull (Andrew's monotone chain), counter-clockwise.
fn hull(mut pts: Vec<[f32; 2]>) -> Polygon {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let cross = |o: [f32; 2], a: [f32; 2], b: [f32; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut h: Vec<[f32; 2]> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = h.len();
        let iter: Box<dyn Iterator<Item = &[f32; 2]>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while h.len() >= start + 2 && cross(h[h.len() - 2], h[h.len() - 1], p) <= 0.0 {
                h.pop();
            }
            h.push(p);
        }
        h.pop();
    }
    h
}

/// `poly` grown outward from its centroid by `by` pixels.
fn grow(poly: &Polygon, by: f32) -> Polygon {
    let n = poly.len().max(1) as f32;
    let c = poly
        .iter()
        .fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
    poly.iter()
        .map(|p| {
            let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
            let d = dx.hypot(dy).max(1e-3);
            [p[0] + dx / d * by, p[1] + dy / d * by]
        })
        .collect()
}

fn inside(poly: &Polygon, x: f32, y: f32) -> bool {
    let mut odd = false;
    let mut j = poly.len().wrapping_sub(1);
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[j]);
        if (a[1] > y) != (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0] {
            odd = !odd;
        }
        j = i;
    }
    odd
}

fn landmarks_of(img: &RgbImage) -> Result<Option<Landmarks>, DeidError> {
    let models = face::models().map_err(|e| DeidError::Model(e.to_string()))?;
    models
        .face(img)
        .map_err(|e| DeidError::Model(e.to_string()))
}

/// Which pixels of `img` are the treated zone.
fn zone_mask(
    img: &RgbImage,
    name: &str,
    zone: &Zone,
    margin_iod: f32,
) -> Result<Vec<bool>, DeidError> {
    let (w, h) = img.dimensions();
    if zone.whole_frame {
        return Ok(vec![true; (w * h) as usize]);
    }
    let lm = landmarks_of(img)?;
    if zone.below_chin {
        // No face in a neck or décolleté photo: nothing to hide.
        let Some(lm) = lm else {
            return Ok(vec![true; (w * h) as usize]);
        };
        let margin = crate::analysis::pose::head::interocular_px(&lm) as f32 * margin_iod;
        let chin = lm.points.get(152).map_or(0.0, |p| p[1]) + margin;
        return Ok((0..h)
            .flat_map(|y| (0..w).map(move |_| y as f32 >= chin))
            .collect());
    }
    let lm = lm.ok_or_else(|| DeidError::NoFace { zone: name.into() })?;
    let margin = crate::analysis::pose::head::interocular_px(&lm) as f32 * margin_iod;
    let polys: Vec<Polygon> = zone
        .landmarks
        .iter()
        .map(|g| {
            let pts = g
                .iter()
                .filter_map(|&i| lm.points.get(i).map(|p| [p[0], p[1]]))
                .collect();
            grow(&hull(pts), margin)
        })
        .collect();
    let mut kept = vec![false; (w * h) as usize];
    for p in &polys {
        // Only the pixels of the polygon's bounding box can be inside it.
        let (x0, y0, x1, y1) = p.iter().fold(
            (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
            |(a, b, c, d), q| (a.min(q[0]), b.min(q[1]), c.max(q[0]), d.max(q[1])),
        );
        let span = |lo: f32, hi: f32, n: u32| {
            (lo.floor().max(0.0) as u32).min(n)..(hi.ceil().max(0.0) as u32).min(n)
        };
        for y in span(y0, y1, h) {
            for x in span(x0, x1, w) {
                if inside(p, x as f32 + 0.5, y as f32 + 0.5) {
                    kept[(y * w + x) as usize] = true;
                }
            }
        }
    }
    Ok(kept)
}

/// The bounding box [x, y, w, h] of the kept pixels.
fn bounds(kept: &[bool], w: u32) -> Option<[u32; 4]> {
    let mut b: Option<[u32; 4]> = None;
    for (i, _) in kept.iter().enumerate().filter(|(_, k)| **k) {
        let (x, y) = (i as u32 % w, i as u32 / w);
        b = Some(match b {
            None => [x, y, x, y],
            Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(y), x1.max(x), y1.max(y)],
        });
    }
    b.map(|[x0, y0, x1, y1]| [x0, y0, x1 - x0 + 1, y1 - y0 + 1])
}

/// De-identify `img` by `method`, keeping zone `name`.
pub fn apply(
    img: &RgbImage,
    method: Method,
    name: &str,
    zone: &Zone,
    margin_iod: f32,
) -> Result<Deidentified, DeidError> {
    let w = img.width();
    let kept = zone_mask(img, name, zone, margin_iod)?;
    let crop = bounds(&kept, w).ok_or_else(|| DeidError::Empty { zone: name.into() })?;
    let mut out = img.clone();
    for (i, p) in out.pixels_mut().enumerate() {
        if !kept[i] {
            *p = MASK_FILL;
        }
    }
    let (image, kept) = match method {
        Method::Mask => (out, kept),
        Method::Crop => {
            let [x, y, cw, ch] = crop;
            let sub = image::imageops::crop_imm(&out, x, y, cw, ch).to_image();
            let k = (y..y + ch)
                .flat_map(|yy| (x..x + cw).map(move |xx| (xx, yy)))
                .map(|(xx, yy)| kept[(yy * w + xx) as usize])
                .collect();
            (sub, k)
        }
    };
    let verb = match method {
        Method::Crop => "cropped to",
        Method::Mask => "masked outside",
    };
    Ok(Deidentified {
        image,
        kept,
        crop: if method == Method::Crop {
            crop
        } else {
            [0, 0, w, img.height()]
        },
        description: format!("de-identified: {verb} the treated zone {name}"),
    })
}

/// When a face can still be recognised in `d` (both eyes and the mouth visible, unmasked), a
/// sentence saying so.
pub fn recognisable_face(d: &Deidentified) -> Result<Option<String>, DeidError> {
    let models = face::models().map_err(|e| DeidError::Model(e.to_string()))?;
    let Some(det) = models
        .detect(&d.image)
        .map_err(|e| DeidError::Model(e.to_string()))?
    else {
        return Ok(None);
    };
    let (w, h) = d.image.dimensions();
    let shown = |p: [f32; 2]| {
        let (x, y) = (p[0].round() as i64, p[1].round() as i64);
        x >= 0
            && y >= 0
            && x < i64::from(w)
            && y < i64::from(h)
            && d.kept[(y as u32 * w + x as u32) as usize]
    };
    let [re, le, _, mouth, ..] = det.keypoints;
    Ok((shown(re) && shown(le) && shown(mouth)).then(|| {
        "a face (both eyes and the mouth) is still visible after de-identification".to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_of_a_square_with_an_inner_point_is_the_square() {
        let h = hull(vec![
            [0.0, 0.0],
            [10.0, 0.0],
            [10.0, 10.0],
            [0.0, 10.0],
            [5.0, 5.0],
        ]);
        assert_eq!(h.len(), 4);
        assert!(inside(&h, 5.0, 5.0));
        assert!(!inside(&h, 11.0, 5.0));
        let g = grow(&h, 2.0);
        assert!(inside(&g, 10.5, 5.0));
    }

    #[test]
    fn whole_frame_zone_keeps_everything_and_eye_bars_are_refused() {
        let img = RgbImage::from_pixel(40, 30, Rgb([200, 150, 120]));
        let z = Zone {
            whole_frame: true,
            ..Default::default()
        };
        let d = apply(&img, Method::Crop, "scalp", &z, 0.25).unwrap();
        assert_eq!(d.crop, [0, 0, 40, 30]);
        assert!(d.kept.iter().all(|k| *k));
        assert!(
            "eye-bar"
                .parse::<Method>()
                .unwrap_err()
                .contains("not de-identification")
        );
    }

    #[test]
    fn a_landmark_zone_without_a_face_is_refused_by_name() {
        let img = RgbImage::from_pixel(64, 64, Rgb([90, 90, 90]));
        let z = Zone {
            landmarks: vec![vec![1, 2, 3]],
            ..Default::default()
        };
        let e = apply(&img, Method::Mask, "cheeks", &z, 0.25).unwrap_err();
        assert!(e.to_string().contains("cheeks"), "{e}");
    }
}
