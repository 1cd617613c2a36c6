//! Similarity transforms `z' = a·z + b` (complex form: `a = s·e^{iφ}`), their least-squares fit,
//! and RANSAC on the two-point minimal model.
//!
//! In image coordinates (y down), multiplying by `e^{iφ}` turns clockwise on screen for φ > 0;
//! the public convention's θ (counter-clockwise positive) is `−φ`.

/// `p' = a·p + b` with `a = (a_re, a_im)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sim {
    pub a: [f64; 2],
    pub b: [f64; 2],
}

impl Sim {
    pub const IDENTITY: Sim = Sim {
        a: [1.0, 0.0],
        b: [0.0, 0.0],
    };

    /// Apply to a point.
    #[inline]
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a[0] * p[0] - self.a[1] * p[1] + self.b[0],
            self.a[1] * p[0] + self.a[0] * p[1] + self.b[1],
        ]
    }

    pub fn scale(&self) -> f64 {
        self.a[0].hypot(self.a[1])
    }

    /// φ: clockwise on screen for positive values.
    pub fn phi(&self) -> f64 {
        self.a[1].atan2(self.a[0])
    }

    /// The transform between full-resolution images when each working pixel averages
    /// `f × f` full pixels: full = f·w + (f − 1)/2 (the block's centre), so
    /// `p_f = (f_f/f_b)·a·(p_b − o_b) + f_f·b + o_f` with `o = (f − 1)/2`.
    pub fn rescaled(&self, base_factor: f64, frame_factor: f64) -> Sim {
        let k = frame_factor / base_factor;
        let a = [self.a[0] * k, self.a[1] * k];
        let (ob, of) = ((base_factor - 1.0) / 2.0, (frame_factor - 1.0) / 2.0);
        Sim {
            a,
            b: [
                self.b[0] * frame_factor + of - (a[0] * ob - a[1] * ob),
                self.b[1] * frame_factor + of - (a[1] * ob + a[0] * ob),
            ],
        }
    }

    /// From scale, φ and translation.
    pub fn from_parts(s: f64, phi: f64, b: [f64; 2]) -> Sim {
        Sim {
            a: [s * phi.cos(), s * phi.sin()],
            b,
        }
    }

    /// The inverse transform.
    pub fn inverse(&self) -> Sim {
        let d = self.a[0] * self.a[0] + self.a[1] * self.a[1];
        let ai = [self.a[0] / d, -self.a[1] / d];
        let b = [
            -(ai[0] * self.b[0] - ai[1] * self.b[1]),
            -(ai[1] * self.b[0] + ai[0] * self.b[1]),
        ];
        Sim { a: ai, b }
    }
}

/// Least-squares similarity mapping `src` onto `dst` (optionally weighted).
pub fn fit(src: &[[f64; 2]], dst: &[[f64; 2]], w: Option<&[f64]>) -> Option<Sim> {
    let n = src.len();
    if n < 2 || dst.len() != n {
        return None;
    }
    let wt = |i: usize| w.map_or(1.0, |w| w[i]);
    let sw: f64 = (0..n).map(wt).sum();
    if sw <= 0.0 {
        return None;
    }
    let ms = [
        (0..n).map(|i| wt(i) * src[i][0]).sum::<f64>() / sw,
        (0..n).map(|i| wt(i) * src[i][1]).sum::<f64>() / sw,
    ];
    let md = [
        (0..n).map(|i| wt(i) * dst[i][0]).sum::<f64>() / sw,
        (0..n).map(|i| wt(i) * dst[i][1]).sum::<f64>() / sw,
    ];
    let (mut num_re, mut num_im, mut den) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (zx, zy) = (src[i][0] - ms[0], src[i][1] - ms[1]);
        let (ux, uy) = (dst[i][0] - md[0], dst[i][1] - md[1]);
        // u · conj(z)
        num_re += wt(i) * (ux * zx + uy * zy);
        num_im += wt(i) * (uy * zx - ux * zy);
        den += wt(i) * (zx * zx + zy * zy);
    }
    if den <= 1e-12 {
        return None;
    }
    let a = [num_re / den, num_im / den];
    let b = [
        md[0] - (a[0] * ms[0] - a[1] * ms[1]),
        md[1] - (a[1] * ms[0] + a[0] * ms[1]),
    ];
    Some(Sim { a, b })
}

/// RANSAC result.
#[derive(Clone, Debug)]
pub struct Consensus {
    pub sim: Sim,
    pub inliers: Vec<usize>,
}

/// RANSAC over correspondences with the two-point similarity model; scale is limited to
/// `scale_range`. Deterministic (seeded).
pub fn ransac(
    src: &[[f64; 2]],
    dst: &[[f64; 2]],
    threshold: f64,
    scale_range: (f64, f64),
    seed: u64,
) -> Option<Consensus> {
    let n = src.len();
    if n < 2 {
        return None;
    }
    let mut state = seed | 1;
    let mut rand = |k: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % k as u64) as usize
    };
    let t2 = threshold * threshold;
    let count = |s: &Sim| {
        (0..n)
            .filter(|&i| {
                let p = s.apply(src[i]);
                (p[0] - dst[i][0]).powi(2) + (p[1] - dst[i][1]).powi(2) <= t2
            })
            .count()
    };
    let mut best: Option<(usize, Sim)> = None;
    let mut iters = 0usize;
    let mut max_iters = 2000usize;
    // Few correspondences: every pair is drawn once, in order (cheaper than the random
    // draws the adaptive stop would allow, and the best consensus for certain).
    let pairs = n * (n - 1) / 2;
    let exhaustive = pairs <= 300;
    let (mut pi, mut pj) = (0usize, 0usize);
    while iters < if exhaustive { pairs } else { max_iters } {
        iters += 1;
        let (i, j) = if exhaustive {
            pj += 1;
            if pj >= n {
                pi += 1;
                pj = pi + 1;
            }
            (pi, pj)
        } else {
            (rand(n), rand(n))
        };
        if i == j {
            continue;
        }
        let (zs, zd) = (
            [src[i][0] - src[j][0], src[i][1] - src[j][1]],
            [dst[i][0] - dst[j][0], dst[i][1] - dst[j][1]],
        );
        let den = zs[0] * zs[0] + zs[1] * zs[1];
        if den < 25.0 {
            continue; // points too close to fix rotation and scale
        }
        let a = [
            (zd[0] * zs[0] + zd[1] * zs[1]) / den,
            (zd[1] * zs[0] - zd[0] * zs[1]) / den,
        ];
        let s = a[0].hypot(a[1]);
        if s < scale_range.0 || s > scale_range.1 {
            continue;
        }
        let b = [
            dst[i][0] - (a[0] * src[i][0] - a[1] * src[i][1]),
            dst[i][1] - (a[1] * src[i][0] + a[0] * src[i][1]),
        ];
        let sim = Sim { a, b };
        let c = count(&sim);
        if best.as_ref().is_none_or(|(bc, _)| c > *bc) {
            best = Some((c, sim));
            // Adaptive stop: 99.9 % confidence of having drawn two inliers.
            let w = c as f64 / n as f64;
            if w > 0.0 {
                let need = ((1.0 - 0.999f64).ln() / (1.0 - w * w).max(1e-12).ln()).ceil();
                max_iters = max_iters.min(need.max(50.0) as usize);
            }
        }
    }
    let (_, mut sim) = best?;
    // Refit on the inliers, twice.
    let mut inliers = Vec::new();
    for _ in 0..2 {
        inliers = (0..n)
            .filter(|&i| {
                let p = sim.apply(src[i]);
                (p[0] - dst[i][0]).powi(2) + (p[1] - dst[i][1]).powi(2) <= t2
            })
            .collect();
        if inliers.len() < 2 {
            break;
        }
        let s: Vec<[f64; 2]> = inliers.iter().map(|&i| src[i]).collect();
        let d: Vec<[f64; 2]> = inliers.iter().map(|&i| dst[i]).collect();
        if let Some(f) = fit(&s, &d, None) {
            sim = f;
        }
    }
    Some(Consensus { sim, inliers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_and_ransac_recover_a_similarity() {
        let truth = Sim::from_parts(1.1, 0.2, [5.0, -3.0]);
        let mut src = Vec::new();
        let mut dst = Vec::new();
        for i in 0..60 {
            let p = [(i * 37 % 100) as f64, (i * 53 % 80) as f64];
            src.push(p);
            dst.push(if i % 3 == 0 {
                [(i * 11 % 90) as f64, (i * 7 % 70) as f64]
            } else {
                truth.apply(p)
            });
        }
        let c = ransac(&src, &dst, 1.0, (0.5, 2.0), 7).unwrap();
        assert_eq!(c.inliers.len(), 40);
        assert!((c.sim.scale() - 1.1).abs() < 1e-9 && (c.sim.phi() - 0.2).abs() < 1e-9);
        let back = c.sim.inverse().apply(c.sim.apply([3.0, 4.0]));
        assert!((back[0] - 3.0).abs() < 1e-9 && (back[1] - 4.0).abs() < 1e-9);
    }
}
