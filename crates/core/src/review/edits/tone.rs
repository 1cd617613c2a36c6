//! Whole-frame colour, learnt from the pixels: for each channel, the published level that a
//! source level became (the median over every pixel pair, so overlays and local edits, a
//! minority, do not move it), made monotonic. Brightness, contrast, levels, gamma, colour
//! balance and any other per-channel tone curve are absorbed; a local change is not.

/// Source levels per bin of the curve.
const BIN: usize = 4;
const BINS: usize = 256 / BIN;
/// Pixel pairs a bin needs before its median is trusted.
const MIN_PAIRS: u32 = 12;

/// One tone curve per channel, source level → published level.
#[derive(Clone, Debug)]
pub struct ToneCurves {
    /// Published level at each bin's centre, per channel.
    at: [[f32; BINS]; 3],
}

impl ToneCurves {
    /// Learn the curves from aligned pairs (source, published).
    ///
    /// ```
    /// use sameframe_core::review::edits::tone::ToneCurves;
    /// // A published copy 20 % brighter in every channel (each level seen 20 times: a level
    /// // seen by fewer than a dozen pixels is filled in from its neighbours).
    /// let pairs: Vec<([f32; 3], [u8; 3])> = (0..4000u32)
    ///     .map(|i| (i % 200) as f32)
    ///     .map(|v| ([v; 3], [(v * 1.2).round() as u8; 3]))
    ///     .collect();
    /// let curves = ToneCurves::fit(pairs.iter().copied());
    /// assert!((curves.apply([100.0; 3])[0] - 120.0).abs() < 3.0);
    /// ```
    pub fn fit(pairs: impl Iterator<Item = ([f32; 3], [u8; 3])>) -> Self {
        let mut hist = vec![[[0u32; 256]; BINS]; 3];
        for (s, p) in pairs {
            for k in 0..3 {
                let b = (s[k].clamp(0.0, 255.0) as usize / BIN).min(BINS - 1);
                hist[k][b][usize::from(p[k])] += 1;
            }
        }
        let at = std::array::from_fn(|k| curve(&hist[k]));
        ToneCurves { at }
    }

    /// The published colour a source colour is expected to become.
    pub fn apply(&self, s: [f32; 3]) -> [f32; 3] {
        std::array::from_fn(|k| {
            let x = (s[k] / BIN as f32 - 0.5).clamp(0.0, (BINS - 1) as f32);
            let i = (x as usize).min(BINS - 2);
            let f = x - i as f32;
            self.at[k][i] * (1.0 - f) + self.at[k][i + 1] * f
        })
    }
}

/// One channel's curve from its per-bin histograms of published levels.
fn curve(hist: &[[u32; 256]]) -> [f32; BINS] {
    let mut value = [f32::NAN; BINS];
    let mut weight = [0f32; BINS];
    for (b, h) in hist.iter().enumerate() {
        let n: u32 = h.iter().sum();
        if n >= MIN_PAIRS {
            value[b] = median_level(h, n);
            weight[b] = n as f32;
        }
    }
    fill_gaps(&mut value);
    isotonic(&mut value, &weight);
    value
}

/// The median of a histogram of levels holding `n` counts.
fn median_level(h: &[u32; 256], n: u32) -> f32 {
    let mut acc = 0;
    for (v, c) in h.iter().enumerate() {
        acc += c;
        if 2 * acc >= n {
            return v as f32;
        }
    }
    255.0
}

/// Bins without enough pairs: interpolated between their neighbours, or carried on with a
/// slope of one past the last known bin (identity when no bin is known).
fn fill_gaps(v: &mut [f32; BINS]) {
    let known: Vec<usize> = (0..BINS).filter(|&i| v[i].is_finite()).collect();
    let centre = |i: usize| (i * BIN) as f32 + BIN as f32 / 2.0 - 0.5;
    let (Some(&first), Some(&last)) = (known.first(), known.last()) else {
        *v = std::array::from_fn(centre);
        return;
    };
    for i in 0..BINS {
        if v[i].is_finite() {
            continue;
        }
        v[i] = if i < first {
            v[first] - (centre(first) - centre(i))
        } else if i > last {
            v[last] + (centre(i) - centre(last))
        } else {
            let lo = known
                .iter()
                .rev()
                .find(|&&k| k < i)
                .copied()
                .unwrap_or(first);
            let hi = known.iter().find(|&&k| k > i).copied().unwrap_or(last);
            let f = (i - lo) as f32 / (hi - lo).max(1) as f32;
            v[lo] * (1.0 - f) + v[hi] * f
        };
    }
}

/// Weighted isotonic (non-decreasing) regression by pooling adjacent violators.
fn isotonic(v: &mut [f32; BINS], w: &[f32; BINS]) {
    // Blocks of (mean, weight, length).
    let mut blocks: Vec<(f32, f32, usize)> = Vec::with_capacity(BINS);
    for i in 0..BINS {
        blocks.push((v[i], w[i].max(0.5), 1));
        while blocks.len() > 1 {
            let (m2, w2, l2) = blocks[blocks.len() - 1];
            let (m1, w1, l1) = blocks[blocks.len() - 2];
            if m1 <= m2 {
                break;
            }
            blocks.truncate(blocks.len() - 2);
            blocks.push(((m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, l1 + l2));
        }
    }
    let mut i = 0;
    for (m, _, l) in blocks {
        for _ in 0..l {
            v[i] = m.clamp(0.0, 255.0);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gamma_curve_with_a_local_minority_is_learnt() {
        let gamma = |v: f32| 255.0 * (v / 255.0).powf(0.8);
        let mut pairs = Vec::new();
        for i in 0..20_000u32 {
            let s = (i % 256) as f32;
            let p = if i % 10 == 0 {
                250.0 // a white overlay on 10 % of the pixels
            } else {
                gamma(s)
            };
            pairs.push(([s, s, s], [p.round() as u8; 3]));
        }
        let c = ToneCurves::fit(pairs.into_iter());
        for s in [10.0, 64.0, 128.0, 200.0, 250.0] {
            assert!((c.apply([s; 3])[1] - gamma(s)).abs() < 3.0, "{s}");
        }
    }

    #[test]
    fn curves_are_monotonic_and_fill_unseen_levels() {
        // Only mid-tones seen, and a noisy, locally decreasing relation.
        let pairs = (60..180u32).flat_map(|s| {
            (0..20u32).map(move |j| ([s as f32; 3], [(s + (j % 5) * 2 + (s % 7)) as u8; 3]))
        });
        let c = ToneCurves::fit(pairs);
        let mut last = -1.0;
        for s in 0..256 {
            let v = c.apply([s as f32; 3])[0];
            assert!(v >= last - 1e-3, "{s}: {v} < {last}");
            last = v;
        }
        assert!((c.apply([20.0; 3])[0] - 24.0).abs() < 8.0);
    }
}
