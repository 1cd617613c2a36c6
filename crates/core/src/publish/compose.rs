//! Layouts of a publication copy: one photo, or several side by side or stacked, each with its
//! label (BEFORE / AFTER and the date) in a band above it, and the variability note in a band
//! below. Text never covers the photo's pixels.

use image::{RgbImage, imageops};
use serde::{Deserialize, Serialize};

use super::lettering::{self, INK, PAPER};

/// How the panels are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Single,
    SideBySide,
    Stacked,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Single => "single",
            Layout::SideBySide => "side-by-side",
            Layout::Stacked => "stacked",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "single" => Ok(Layout::Single),
            "side-by-side" | "sidebyside" | "horizontal" => Ok(Layout::SideBySide),
            "stacked" | "vertical" => Ok(Layout::Stacked),
            other => Err(format!(
                "unknown layout {other:?} (expected single, side-by-side or stacked)"
            )),
        }
    }
}

/// One photo to place, with its label.
pub struct PanelIn<'a> {
    pub image: &'a RgbImage,
    pub label: String,
}

/// The composed copy and where each photo landed: [x, y, w, h] in its pixels.
pub struct Composed {
    pub image: RgbImage,
    pub panels: Vec<[u32; 4]>,
    /// True when any photo was scaled.
    pub resized: bool,
}

/// White space between photos.
pub const GUTTER: u32 = 12;

/// The photos' common height (side by side) or width (stacked) so the copy's long side is at
/// most `long_side`; photos are never enlarged.
fn common_extent(panels: &[PanelIn<'_>], layout: Layout, long_side: u32) -> u32 {
    let n = panels.len() as f64;
    let gaps = f64::from(GUTTER) * (n - 1.0);
    let long = f64::from(long_side);
    let (along, across): (Vec<f64>, u32) = match layout {
        Layout::Stacked => (
            panels
                .iter()
                .map(|p| f64::from(p.image.height()) / f64::from(p.image.width()))
                .collect(),
            panels.iter().map(|p| p.image.width()).min().unwrap_or(1),
        ),
        _ => (
            panels
                .iter()
                .map(|p| f64::from(p.image.width()) / f64::from(p.image.height()))
                .collect(),
            panels.iter().map(|p| p.image.height()).min().unwrap_or(1),
        ),
    };
    let ratio: f64 = along.iter().sum();
    // extent·ratio + gaps is the long run; the extent itself the short one.
    let fit_run = (long - gaps) / ratio;
    let e = fit_run.min(long).min(f64::from(across)).floor().max(16.0);
    e as u32
}

/// The text size for a copy whose photos span `span` pixels across.
fn text_px(span: u32) -> f32 {
    (span as f32 * 0.022).clamp(14.0, 64.0)
}

/// Compose `panels` by `layout`, the note (when any) burned in below.
pub fn compose(
    panels: &[PanelIn<'_>],
    layout: Layout,
    long_side: u32,
    note: Option<&str>,
) -> Composed {
    let e = common_extent(panels, layout, long_side);
    let scaled: Vec<RgbImage> = panels
        .iter()
        .map(|p| {
            let (w, h) = p.image.dimensions();
            let (nw, nh) = match layout {
                Layout::Stacked => (
                    e,
                    (f64::from(h) * f64::from(e) / f64::from(w)).round() as u32,
                ),
                _ => (
                    (f64::from(w) * f64::from(e) / f64::from(h)).round() as u32,
                    e,
                ),
            };
            let (nw, nh) = (nw.max(1), nh.max(1));
            if (nw, nh) == (w, h) {
                p.image.clone()
            } else {
                imageops::resize(p.image, nw, nh, imageops::FilterType::Triangle)
            }
        })
        .collect();
    let resized = scaled
        .iter()
        .zip(panels)
        .any(|(s, p)| s.dimensions() != p.image.dimensions());
    let span = match layout {
        Layout::Stacked => e,
        _ => scaled.iter().map(RgbImage::width).sum::<u32>() + GUTTER * (scaled.len() as u32 - 1),
    };
    let px = text_px(span);
    let label_band = (lettering::line_height(px) * 1.5).ceil() as u32;
    let pad = (px * 0.5).ceil();
    let note_lines = note
        .map(|n| lettering::wrap(n, px, span as f32 - 2.0 * pad))
        .unwrap_or_default();
    let note_band = if note_lines.is_empty() {
        0
    } else {
        (lettering::line_height(px) * note_lines.len() as f32 + 2.0 * pad).ceil() as u32
    };
    let (width, photos_h, rects) = place(&scaled, layout, label_band);
    let mut img = RgbImage::from_pixel(width, photos_h + note_band, PAPER);
    for ((s, r), p) in scaled.iter().zip(&rects).zip(panels) {
        imageops::replace(&mut img, s, i64::from(r[0]), i64::from(r[1]));
        let label_y = r[1] as f32 - label_band as f32
            + (label_band as f32 - lettering::line_height(px)) / 2.0;
        lettering::draw(&mut img, &p.label, r[0] as f32 + pad, label_y, px, INK);
    }
    for (i, line) in note_lines.iter().enumerate() {
        let y = photos_h as f32 + pad + i as f32 * lettering::line_height(px);
        lettering::draw(&mut img, line, pad, y, px, INK);
    }
    Composed {
        image: img,
        panels: rects,
        resized,
    }
}

/// Where each scaled photo goes, below its label band: the copy's width, the height down to
/// the end of the photos, and the photo rectangles.
fn place(scaled: &[RgbImage], layout: Layout, label_band: u32) -> (u32, u32, Vec<[u32; 4]>) {
    let mut rects = Vec::with_capacity(scaled.len());
    let (mut x, mut y) = (0u32, 0u32);
    for s in scaled {
        match layout {
            Layout::Stacked => {
                rects.push([0, y + label_band, s.width(), s.height()]);
                y += label_band + s.height() + GUTTER;
            }
            _ => {
                rects.push([x, label_band, s.width(), s.height()]);
                x += s.width() + GUTTER;
            }
        }
    }
    let width = rects.iter().map(|r| r[0] + r[2]).max().unwrap_or(1);
    let height = rects.iter().map(|r| r[1] + r[3]).max().unwrap_or(1);
    (width, height, rects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn photo(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([v, v / 2, 60]))
    }

    #[test]
    fn side_by_side_fits_the_long_side_and_keeps_the_photos_pixels() {
        let (a, b) = (photo(1600, 1200, 200), photo(1600, 1200, 100));
        let panels = [
            PanelIn {
                image: &a,
                label: "BEFORE 2026-01-10".into(),
            },
            PanelIn {
                image: &b,
                label: "AFTER 2026-03-12".into(),
            },
        ];
        let c = compose(
            &panels,
            Layout::SideBySide,
            1080,
            Some("Individual results vary."),
        );
        assert!(c.image.width() <= 1080, "{}", c.image.width());
        assert!(c.resized);
        assert_eq!(c.panels.len(), 2);
        let [x, y, w, h] = c.panels[1];
        assert_eq!(c.image.get_pixel(x + w / 2, y + h / 2).0, [100, 50, 60]);
        assert!(c.panels[0][0] + c.panels[0][2] + GUTTER <= x);
        // Labels above the photos, the note below them: dark pixels in both bands.
        let dark_rows = |y0: u32, y1: u32| {
            (y0..y1).any(|yy| (0..c.image.width()).any(|xx| c.image.get_pixel(xx, yy).0[0] < 100))
        };
        assert!(dark_rows(0, y));
        assert!(dark_rows(y + h, c.image.height()));
    }

    #[test]
    fn small_photos_are_not_enlarged_and_stacking_aligns_widths() {
        let (a, b) = (photo(300, 200, 200), photo(320, 200, 100));
        let panels = [
            PanelIn {
                image: &a,
                label: "BEFORE".into(),
            },
            PanelIn {
                image: &b,
                label: "AFTER".into(),
            },
        ];
        let c = compose(&panels, Layout::Stacked, 4096, None);
        assert_eq!(c.panels[0][2], 300);
        assert_eq!(c.panels[1][2], 300);
        assert!(c.panels[1][1] > c.panels[0][1] + c.panels[0][3]);
        assert!("bar".parse::<Layout>().is_err());
    }
}
