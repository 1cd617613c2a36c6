//! Whole-frame sharpening, learnt from the pixels like the tone curves: the published image's
//! difference from the expected one, fitted (least squares on luma, over every covered pixel,
//! so that local edits, a minority, barely move it) as two bands of the expected image's own
//! detail — fine (σ ≈ 0.7 px) and coarse (σ ≈ 0.7–1.2 px) — each at one gain for the whole
//! frame. Mild unsharp masking is absorbed; a local change is not, since one gain cannot fit
//! it. A frame that is softer than expected (the fine gain at or below zero: a resize filter
//! softer than the registration's) is left as it is: the panel's noise model already covers
//! that, and a softened expectation makes a translucent watermark stand out more.

use super::blocks::{HIGH, LOW, luma};
use super::regions::sub;

/// Gains beyond these are not sharpening anyone calls mild (nor a resize filter).
const GAIN: std::ops::RangeInclusive<f64> = -1.0..=3.0;
/// Pixels the fit needs.
const MIN_PIXELS: usize = 1000;

/// Whole-frame detail gains: `expected + fine · (e − blur(e)) + coarse · (blur(e) − blur³(e))`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sharpening {
    pub fine: f32,
    pub coarse: f32,
}

impl Sharpening {
    /// Learn the gains that take `expected` (NaN where the source does not cover, its detail
    /// `bands`) to `published`; `None` when too few pixels carry evidence (levels clipped by
    /// the grade or the encoder say nothing of the gain) or the frame is not sharpened.
    ///
    /// ```
    /// use sameframe_core::review::edits::sharpen::{Bands, Sharpening};
    /// // A ramp of stripes, and the same sharpened: each level pushed away from its
    /// // neighbours' mean by 40 % of its difference from it.
    /// let (w, h) = (64u32, 64u32);
    /// let e: Vec<[f32; 3]> = (0..w * h).map(|i| [60.0 + 80.0 * ((i % w / 3) % 2) as f32; 3]).collect();
    /// let bands = Bands::of(&e, w, h);
    /// let p: Vec<[f32; 3]> = e.iter().zip(&bands.fine).map(|(e, f)| e.map(|v| v + 0.4 * f[0])).collect();
    /// let s = Sharpening::fit(&e, &p, &bands).unwrap();
    /// assert!((s.fine - 0.4).abs() < 0.05, "{s:?}");
    /// ```
    pub fn fit(expected: &[[f32; 3]], published: &[[f32; 3]], bands: &Bands) -> Option<Self> {
        let clipped = |c: [f32; 3]| c.iter().any(|v| !(LOW..=HIGH).contains(v));
        // Normal equations of d = g₁ f + g₂ c on luma.
        let (mut ff, mut fc, mut cc, mut fd, mut cd, mut n) = (0f64, 0f64, 0f64, 0f64, 0f64, 0);
        for i in 0..expected.len() {
            let (e, p) = (expected[i], published[i]);
            let (f, c) = (luma(bands.fine[i]), luma(bands.coarse[i]));
            if !(f.is_finite() && c.is_finite()) || clipped(e) || clipped(p) {
                continue;
            }
            let d = f64::from(luma(p) - luma(e));
            let (f, c) = (f64::from(f), f64::from(c));
            (ff, fc, cc, fd, cd, n) = (
                ff + f * f,
                fc + f * c,
                cc + c * c,
                fd + f * d,
                cd + c * d,
                n + 1,
            );
        }
        let det = ff * cc - fc * fc;
        if n < MIN_PIXELS || det <= 1e-9 * ff.max(1.0) * cc.max(1.0) {
            return None;
        }
        let fine = ((fd * cc - cd * fc) / det).clamp(*GAIN.start(), *GAIN.end());
        let coarse = ((cd * ff - fd * fc) / det).clamp(*GAIN.start(), *GAIN.end());
        if fine <= 0.0 {
            return None;
        }
        Some(Sharpening {
            fine: fine as f32,
            coarse: coarse as f32,
        })
    }

    /// `expected` (its detail `bands`) as these gains make it.
    pub fn apply(&self, expected: &[[f32; 3]], bands: &Bands) -> Vec<[f32; 3]> {
        expected
            .iter()
            .zip(bands.fine.iter().zip(&bands.coarse))
            .map(|(e, (f, c))| {
                if !(f[0].is_finite() && c[0].is_finite()) {
                    return *e;
                }
                std::array::from_fn(|k| {
                    (e[k] + self.fine * f[k] + self.coarse * c[k]).clamp(0.0, 255.0)
                })
            })
            .collect()
    }
}

/// The fine band and the coarse band of an image's detail (NaN near any NaN and at the
/// border), made once for both the fit and its application.
pub struct Bands {
    pub fine: Vec<[f32; 3]>,
    pub coarse: Vec<[f32; 3]>,
}

impl Bands {
    /// The bands of `img`, `w × h`.
    pub fn of(img: &[[f32; 3]], w: u32, h: u32) -> Self {
        let b1 = super::binomial(img, w, h);
        let b3 = super::binomial(&super::binomial(&b1, w, h), w, h);
        Bands {
            fine: img.iter().zip(&b1).map(|(a, b)| sub(*a, *b)).collect(),
            coarse: b1.iter().zip(&b3).map(|(a, b)| sub(*a, *b)).collect(),
        }
    }
}
