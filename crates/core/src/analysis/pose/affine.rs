//! Affine maps of the plane: what a published image does to a capture (a crop shown at another
//! aspect ratio is a stretch no similarity explains).

use super::similarity::Sim;

/// An affine map `p' = m·p + t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub m: [[f64; 2]; 2],
    pub t: [f64; 2],
}

impl Affine {
    pub fn from_sim(s: &Sim) -> Self {
        Affine {
            m: [[s.a[0], -s.a[1]], [s.a[1], s.a[0]]],
            t: s.b,
        }
    }

    #[inline]
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.m[0][0] * p[0] + self.m[0][1] * p[1] + self.t[0],
            self.m[1][0] * p[0] + self.m[1][1] * p[1] + self.t[1],
        ]
    }

    /// Geometric-mean scale: √|det m|.
    pub fn scale(&self) -> f64 {
        (self.m[0][0] * self.m[1][1] - self.m[0][1] * self.m[1][0])
            .abs()
            .sqrt()
    }

    /// The ratio of the largest to the smallest stretch (1 for a similarity).
    pub fn anisotropy(&self) -> f64 {
        let [[a, b], [c, d]] = self.m;
        let e = (a * a + b * b + c * c + d * d) / 2.0;
        let det = (a * d - b * c).abs();
        let r = (e * e - det * det).max(0.0).sqrt();
        let (s1, s2) = ((e + r).sqrt(), (e - r).max(0.0).sqrt());
        if s2 <= 1e-12 { f64::INFINITY } else { s1 / s2 }
    }

    /// The inverse map, when `m` is invertible.
    pub fn inverse(&self) -> Option<Self> {
        let [[a, b], [c, d]] = self.m;
        let det = a * d - b * c;
        if det.abs() < 1e-12 {
            return None;
        }
        let m = [[d / det, -b / det], [-c / det, a / det]];
        let t = [
            -(m[0][0] * self.t[0] + m[0][1] * self.t[1]),
            -(m[1][0] * self.t[0] + m[1][1] * self.t[1]),
        ];
        Some(Affine { m, t })
    }

    /// `self`, then `next`.
    pub fn then(&self, next: &Affine) -> Affine {
        let m = |i: usize, j: usize| next.m[i][0] * self.m[0][j] + next.m[i][1] * self.m[1][j];
        Affine {
            m: [[m(0, 0), m(0, 1)], [m(1, 0), m(1, 1)]],
            t: next.apply(self.t),
        }
    }

    /// Pixel `i` of an image resampled by `k` (`k` original pixels per pixel, centres
    /// aligned) → the original's pixel coordinates.
    pub fn from_resampled(k: f64) -> Affine {
        Affine {
            m: [[k, 0.0], [0.0, k]],
            t: [0.5 * k - 0.5; 2],
        }
    }

    /// `self` followed by a uniform scale `k`.
    pub fn scaled(&self, k: f64) -> Self {
        Affine {
            m: self.m.map(|r| r.map(|v| v * k)),
            t: self.t.map(|v| v * k),
        }
    }

    /// Least-squares fit mapping `src` onto `dst`.
    pub fn fit(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Option<Self> {
        let n = src.len();
        if n < 3 || dst.len() != n {
            return None;
        }
        let ms = src
            .iter()
            .fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]])
            .map(|v| v / n as f64);
        let md = dst
            .iter()
            .fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]])
            .map(|v| v / n as f64);
        // Normal equations on centred points: m = (Σ d sᵀ)(Σ s sᵀ)⁻¹.
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        let mut ds = [[0.0f64; 2]; 2];
        for (p, q) in src.iter().zip(dst) {
            let (x, y) = (p[0] - ms[0], p[1] - ms[1]);
            let (u, v) = (q[0] - md[0], q[1] - md[1]);
            sxx += x * x;
            sxy += x * y;
            syy += y * y;
            ds[0][0] += u * x;
            ds[0][1] += u * y;
            ds[1][0] += v * x;
            ds[1][1] += v * y;
        }
        let det = sxx * syy - sxy * sxy;
        if det.abs() < 1e-9 {
            return None;
        }
        let inv = [[syy / det, -sxy / det], [-sxy / det, sxx / det]];
        let m = [
            [
                ds[0][0] * inv[0][0] + ds[0][1] * inv[1][0],
                ds[0][0] * inv[0][1] + ds[0][1] * inv[1][1],
            ],
            [
                ds[1][0] * inv[0][0] + ds[1][1] * inv[1][0],
                ds[1][0] * inv[0][1] + ds[1][1] * inv[1][1],
            ],
        ];
        let t = [
            md[0] - (m[0][0] * ms[0] + m[0][1] * ms[1]),
            md[1] - (m[1][0] * ms[0] + m[1][1] * ms[1]),
        ];
        Some(Affine { m, t })
    }
}
