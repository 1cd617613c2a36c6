//! Colour arithmetic in linear light: sRGB decoding and encoding, luminance, CIELAB.
//!
//! Every lighting measurement is made on linear values; 8-bit and 16-bit sRGB are decoded
//! through lookup tables.

use std::sync::OnceLock;

/// Rec. 709 / sRGB luminance weights.
pub const LUMA: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// sRGB transfer function, decoding: `v` in 0..=1 to linear.
///
/// ```
/// use sameframe_core::analysis::color::{srgb_to_linear, linear_to_srgb};
/// assert!((srgb_to_linear(0.5) - 0.2140).abs() < 1e-3);
/// assert!((linear_to_srgb(srgb_to_linear(0.3)) - 0.3).abs() < 1e-5);
/// ```
pub fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// sRGB transfer function, encoding: linear to 0..=1.
pub fn linear_to_srgb(v: f32) -> f32 {
    let v = v.clamp(0.0, 1.0);
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// Linear value of each 8-bit sRGB code.
pub fn lut8() -> &'static [f32; 256] {
    static LUT: OnceLock<[f32; 256]> = OnceLock::new();
    LUT.get_or_init(|| std::array::from_fn(|i| srgb_to_linear(i as f32 / 255.0)))
}

/// Linear value of each 16-bit sRGB code.
pub fn lut16() -> &'static [f32] {
    static LUT: OnceLock<Vec<f32>> = OnceLock::new();
    LUT.get_or_init(|| {
        (0..=65535u32)
            .map(|i| srgb_to_linear(i as f32 / 65535.0))
            .collect()
    })
}

/// Encode a linear value to an 8-bit sRGB code.
pub fn encode8(v: f32) -> u8 {
    (linear_to_srgb(v) * 255.0 + 0.5) as u8
}

/// Relative luminance of linear RGB.
pub fn luminance(rgb: [f32; 3]) -> f32 {
    LUMA[0] * rgb[0] + LUMA[1] * rgb[1] + LUMA[2] * rgb[2]
}

/// Chromaticity of linear RGB: the red and green shares of r + g + b.
pub fn chromaticity(rgb: [f32; 3]) -> [f32; 2] {
    let s = (rgb[0] + rgb[1] + rgb[2]).max(1e-6);
    [rgb[0] / s, rgb[1] / s]
}

/// How far apart two chromaticities are: the larger of the two shares' differences.
pub fn chromaticity_distance(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).abs().max((a[1] - b[1]).abs())
}

/// Linear sRGB (D65) to CIEXYZ.
pub fn rgb_to_xyz(c: [f32; 3]) -> [f32; 3] {
    [
        0.412_456_4 * c[0] + 0.357_576_1 * c[1] + 0.180_437_5 * c[2],
        0.212_672_9 * c[0] + 0.715_152_2 * c[1] + 0.072_175 * c[2],
        0.019_333_9 * c[0] + 0.119_192 * c[1] + 0.950_304_1 * c[2],
    ]
}

/// CIELAB (D65 white) of linear sRGB.
pub fn rgb_to_lab(c: [f32; 3]) -> [f32; 3] {
    let [x, y, z] = rgb_to_xyz(c);
    let white = [0.950_47, 1.0, 1.088_83];
    let f = |t: f32| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x / white[0]), f(y / white[1]), f(z / white[2]));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// Saturation of linear RGB: `(max − min) / max` (0 for black).
pub fn saturation(c: [f32; 3]) -> f32 {
    let mx = c[0].max(c[1]).max(c[2]);
    let mn = c[0].min(c[1]).min(c[2]);
    if mx <= 1e-6 { 0.0 } else { (mx - mn) / mx }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_is_neutral_in_lab() {
        let lab = rgb_to_lab([0.18, 0.18, 0.18]);
        assert!((lab[0] - 49.5).abs() < 0.5, "{lab:?}");
        assert!(lab[1].abs() < 0.05 && lab[2].abs() < 0.05, "{lab:?}");
        let warm = rgb_to_lab([0.22, 0.18, 0.14]);
        assert!(
            warm[1] > 0.0 && warm[2] > 0.0,
            "warm light has positive a*, b*: {warm:?}"
        );
    }

    #[test]
    fn luts_match_the_formula() {
        assert_eq!(lut8()[0], 0.0);
        assert!((lut8()[255] - 1.0).abs() < 1e-6);
        assert!((lut16()[32768] - srgb_to_linear(32768.0 / 65535.0)).abs() < 1e-6);
        assert_eq!(encode8(srgb_to_linear(118.0 / 255.0)), 118);
    }
}
