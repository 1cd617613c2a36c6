//! Text drawn into a publication copy: panel labels and the variability note, in a band of
//! their own (never over the photo's pixels).

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use image::{Rgb, RgbImage};

/// Dark text on a white band.
pub const INK: Rgb<u8> = Rgb([20, 20, 20]);
pub const PAPER: Rgb<u8> = Rgb([255, 255, 255]);

fn font() -> Option<FontRef<'static>> {
    FontRef::try_from_slice(epaint_default_fonts::HACK_REGULAR).ok()
}

/// Characters the font has no glyph for become '?', so nothing is silently dropped.
fn drawable(f: &FontRef<'_>, c: char) -> char {
    if c == ' ' || f.glyph_id(c).0 != 0 {
        c
    } else {
        '?'
    }
}

/// The width of `text` in pixels at `px` pixels per em.
pub fn width(text: &str, px: f32) -> f32 {
    let Some(f) = font() else { return 0.0 };
    let s = f.as_scaled(PxScale::from(px));
    text.chars()
        .map(|c| s.h_advance(f.glyph_id(drawable(&f, c))))
        .sum()
}

/// Split `text` into lines no wider than `max_w` pixels (a word longer than a line is cut).
pub fn wrap(text: &str, px: f32, max_w: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if width(&candidate, px) <= max_w || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::take(&mut line));
            line = word.to_string();
        }
        while width(&line, px) > max_w && line.chars().count() > 1 {
            let keep = (1..line.chars().count())
                .rev()
                .find(|&n| width(&line.chars().take(n).collect::<String>(), px) <= max_w)
                .unwrap_or(1);
            lines.push(line.chars().take(keep).collect());
            line = line.chars().skip(keep).collect();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Draw one line of `text` with its top-left corner at (`x`, `y`), blending `ink` over the
/// image by glyph coverage; pixels outside the image are skipped.
pub fn draw(img: &mut RgbImage, text: &str, x: f32, y: f32, px: f32, ink: Rgb<u8>) {
    let Some(f) = font() else { return };
    let s = f.as_scaled(PxScale::from(px));
    let mut pen = x;
    let baseline = y + s.ascent();
    for c in text.chars() {
        let id = f.glyph_id(drawable(&f, c));
        let glyph = id.with_scale_and_position(PxScale::from(px), point(pen, baseline));
        pen += s.h_advance(id);
        let Some(outline) = f.outline_glyph(glyph) else {
            continue;
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, cover| {
            let (px_x, px_y) = (
                b.min.x as i64 + i64::from(gx),
                b.min.y as i64 + i64::from(gy),
            );
            if px_x < 0
                || px_y < 0
                || px_x >= i64::from(img.width())
                || px_y >= i64::from(img.height())
            {
                return;
            }
            let p = img.get_pixel_mut(px_x as u32, px_y as u32);
            let a = cover.clamp(0.0, 1.0);
            for k in 0..3 {
                p.0[k] = (f32::from(p.0[k]) * (1.0 - a) + f32::from(ink.0[k]) * a).round() as u8;
            }
        });
    }
}

/// The line height at `px` pixels per em.
pub fn line_height(px: f32) -> f32 {
    font().map_or(px * 1.2, |f| {
        let s = f.as_scaled(PxScale::from(px));
        s.height() + s.line_gap()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_text_darkens_pixels_inside_its_width_only() {
        let mut img = RgbImage::from_pixel(400, 60, PAPER);
        draw(&mut img, "Individual results vary", 10.0, 10.0, 24.0, INK);
        let w = width("Individual results vary", 24.0);
        assert!(w > 200.0 && w < 390.0, "{w}");
        let dark = |x0: u32, x1: u32| {
            (x0..x1)
                .flat_map(|x| (0..60).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 128)
                .count()
        };
        assert!(dark(10, 10 + w as u32) > 300);
        assert_eq!(dark(12 + w as u32, 400), 0);
    }

    #[test]
    fn wrapping_keeps_every_word_and_respects_the_width() {
        let text = "Individual results vary. This patient's result is not a promise";
        let lines = wrap(text, 20.0, 200.0);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| width(l, 20.0) <= 200.0));
        assert_eq!(lines.join(" "), text);
        let long = wrap("supercalifragilisticexpialidocious", 20.0, 60.0);
        assert!(long.len() > 2 && long.concat() == "supercalifragilisticexpialidocious");
    }
}
