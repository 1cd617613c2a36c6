//! Plane geometry for the analyses: convex hulls, quadrilaterals, homographies and similarity
//! transforms.

/// A point `[x, y]` in pixels (y down).
pub type Pt = [f64; 2];

/// Cross product of `(b − a) × (c − a)`.
fn cross(a: Pt, b: Pt, c: Pt) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

/// Convex hull (monotone chain), counter-clockwise in a y-up frame.
pub fn convex_hull(mut pts: Vec<Pt>) -> Vec<Pt> {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut lower: Vec<Pt> = Vec::new();
    for &p in &pts {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], p) <= 0.0 {
            lower.pop();
        }
        lower.push(p);
    }
    let mut upper: Vec<Pt> = Vec::new();
    for &p in pts.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], p) <= 0.0 {
            upper.pop();
        }
        upper.push(p);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// Whether `p` is inside a simple polygon (even-odd rule; any winding).
///
/// ```
/// use sameframe_core::analysis::geometry::inside_polygon;
/// let square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
/// assert!(inside_polygon(&square, [5.0, 5.0]));
/// assert!(!inside_polygon(&square, [11.0, 5.0]));
/// ```
pub fn inside_polygon(poly: &[Pt], p: Pt) -> bool {
    let mut odd = false;
    let mut j = poly.len().wrapping_sub(1);
    for (i, a) in poly.iter().enumerate() {
        let b = poly[j];
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            odd = !odd;
        }
        j = i;
    }
    odd
}

/// Area of a simple polygon.
pub fn polygon_area(poly: &[Pt]) -> f64 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let mut s = 0.0;
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        s += a[0] * b[1] - b[0] * a[1];
    }
    s.abs() / 2.0
}

/// The quadrilateral of largest area with corners on the hull (the hull is thinned to at most
/// 48 vertices first). `None` for fewer than 4 vertices.
pub fn max_area_quad(hull: &[Pt]) -> Option<[Pt; 4]> {
    if hull.len() < 4 {
        return None;
    }
    let step = hull.len().div_ceil(48);
    let h: Vec<Pt> = hull.iter().step_by(step).copied().collect();
    let n = h.len();
    if n < 4 {
        return None;
    }
    let tri = |a: Pt, b: Pt, c: Pt| cross(a, b, c).abs() / 2.0;
    let mut best = (0.0, [0usize; 4]);
    for i in 0..n {
        for k in i + 2..n {
            let mut best_j = (0.0, i + 1);
            for j in i + 1..k {
                let a = tri(h[i], h[j], h[k]);
                if a > best_j.0 {
                    best_j = (a, j);
                }
            }
            let mut best_l = (0.0, usize::MAX);
            for l in (k + 1..n).chain(0..i) {
                let a = tri(h[k], h[l], h[i]);
                if a > best_l.0 {
                    best_l = (a, l);
                }
            }
            if best_l.1 == usize::MAX {
                continue;
            }
            let area = best_j.0 + best_l.0;
            if area > best.0 {
                best = (area, [i, best_j.1, k, best_l.1]);
            }
        }
    }
    if best.0 <= 0.0 {
        return None;
    }
    Some(order_quad(best.1.map(|i| h[i])))
}

/// Order corners top-left, top-right, bottom-right, bottom-left (y down).
pub fn order_quad(q: [Pt; 4]) -> [Pt; 4] {
    let cx = q.iter().map(|p| p[0]).sum::<f64>() / 4.0;
    let cy = q.iter().map(|p| p[1]).sum::<f64>() / 4.0;
    let mut v = q.to_vec();
    // Clockwise on screen (y down) starting from the angle of the top-left direction.
    v.sort_by(|a, b| {
        let aa = (a[1] - cy).atan2(a[0] - cx);
        let ab = (b[1] - cy).atan2(b[0] - cx);
        aa.total_cmp(&ab)
    });
    // atan2 in y-down coordinates increases clockwise; the top-left corner has the smallest
    // x + y.
    let start = (0..4)
        .min_by(|&i, &j| (v[i][0] + v[i][1]).total_cmp(&(v[j][0] + v[j][1])))
        .unwrap_or(0);
    [
        v[start],
        v[(start + 1) % 4],
        v[(start + 2) % 4],
        v[(start + 3) % 4],
    ]
}

/// Interior angles of a quad in degrees.
pub fn quad_angles(q: &[Pt; 4]) -> [f64; 4] {
    std::array::from_fn(|i| {
        let p = q[i];
        let a = q[(i + 3) % 4];
        let b = q[(i + 1) % 4];
        let v1 = [a[0] - p[0], a[1] - p[1]];
        let v2 = [b[0] - p[0], b[1] - p[1]];
        let dot = v1[0] * v2[0] + v1[1] * v2[1];
        let n = (v1[0].hypot(v1[1]) * v2[0].hypot(v2[1])).max(1e-12);
        (dot / n).clamp(-1.0, 1.0).acos().to_degrees()
    })
}

/// Side lengths: top, right, bottom, left.
pub fn quad_sides(q: &[Pt; 4]) -> [f64; 4] {
    std::array::from_fn(|i| {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        (b[0] - a[0]).hypot(b[1] - a[1])
    })
}

/// True when `p` lies inside the convex polygon (either winding).
pub fn inside_convex(poly: &[Pt], p: Pt) -> bool {
    let n = poly.len();
    let mut sign = 0.0f64;
    for i in 0..n {
        let c = cross(poly[i], poly[(i + 1) % n], p);
        if c.abs() < 1e-12 {
            continue;
        }
        if sign == 0.0 {
            sign = c.signum();
        } else if c.signum() != sign {
            return false;
        }
    }
    true
}

/// Move each edge of a convex quad outward by `d` (inward when negative).
pub fn offset_quad(q: &[Pt; 4], d: f64) -> [Pt; 4] {
    let c = [
        q.iter().map(|p| p[0]).sum::<f64>() / 4.0,
        q.iter().map(|p| p[1]).sum::<f64>() / 4.0,
    ];
    // Edge i runs from q[i] to q[i + 1]: unit normal pointing away from the centre, offset.
    let lines: Vec<(Pt, f64)> = (0..4)
        .map(|i| {
            let (a, b) = (q[i], q[(i + 1) % 4]);
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let len = dx.hypot(dy).max(1e-12);
            let mut n = [dy / len, -dx / len];
            if n[0] * (a[0] - c[0]) + n[1] * (a[1] - c[1]) < 0.0 {
                n = [-n[0], -n[1]];
            }
            (n, n[0] * a[0] + n[1] * a[1] + d)
        })
        .collect();
    std::array::from_fn(|i| {
        let (n1, c1) = lines[(i + 3) % 4];
        let (n2, c2) = lines[i];
        let det = n1[0] * n2[1] - n1[1] * n2[0];
        if det.abs() < 1e-12 {
            return q[i];
        }
        [
            (c1 * n2[1] - c2 * n1[1]) / det,
            (n1[0] * c2 - n2[0] * c1) / det,
        ]
    })
}

/// Scale a quad about its centroid.
pub fn shrink_quad(q: &[Pt; 4], f: f64) -> [Pt; 4] {
    let cx = q.iter().map(|p| p[0]).sum::<f64>() / 4.0;
    let cy = q.iter().map(|p| p[1]).sum::<f64>() / 4.0;
    q.map(|p| [cx + (p[0] - cx) * f, cy + (p[1] - cy) * f])
}

/// A 3×3 projective transform (row-major), mapping `[x, y]` to `[x', y']`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Homography(pub [f64; 9]);

impl Homography {
    /// Apply to a point.
    pub fn apply(&self, p: Pt) -> Pt {
        let h = &self.0;
        let w = h[6] * p[0] + h[7] * p[1] + h[8];
        let w = if w.abs() < 1e-12 { 1e-12 } else { w };
        [
            (h[0] * p[0] + h[1] * p[1] + h[2]) / w,
            (h[3] * p[0] + h[4] * p[1] + h[5]) / w,
        ]
    }

    /// Least-squares fit (normalised DLT) from at least four correspondences.
    pub fn fit(src: &[Pt], dst: &[Pt]) -> Option<Homography> {
        if src.len() < 4 || src.len() != dst.len() {
            return None;
        }
        let norm = |pts: &[Pt]| {
            let n = pts.len() as f64;
            let cx = pts.iter().map(|p| p[0]).sum::<f64>() / n;
            let cy = pts.iter().map(|p| p[1]).sum::<f64>() / n;
            let d = pts
                .iter()
                .map(|p| (p[0] - cx).hypot(p[1] - cy))
                .sum::<f64>()
                / n;
            let s = if d > 1e-12 {
                std::f64::consts::SQRT_2 / d
            } else {
                1.0
            };
            [s, 0.0, -s * cx, 0.0, s, -s * cy, 0.0, 0.0, 1.0]
        };
        let ts = norm(src);
        let td = norm(dst);
        let apply = |t: &[f64; 9], p: Pt| [t[0] * p[0] + t[2], t[4] * p[1] + t[5]];
        let mut a = nalgebra::DMatrix::<f64>::zeros(2 * src.len(), 9);
        for (k, (s, d)) in src.iter().zip(dst).enumerate() {
            let [x, y] = apply(&ts, *s);
            let [u, v] = apply(&td, *d);
            let r = 2 * k;
            let row1 = [-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u];
            let row2 = [0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v];
            for c in 0..9 {
                a[(r, c)] = row1[c];
                a[(r + 1, c)] = row2[c];
            }
        }
        let ata = a.transpose() * &a;
        let eig = nalgebra::SymmetricEigen::new(ata);
        let (mut idx, mut min) = (0, f64::INFINITY);
        for (i, &ev) in eig.eigenvalues.iter().enumerate() {
            if ev < min {
                min = ev;
                idx = i;
            }
        }
        let h = eig.eigenvectors.column(idx);
        let hn = nalgebra::Matrix3::from_row_slice(&[
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8],
        ]);
        let tsm = nalgebra::Matrix3::from_row_slice(&ts);
        let tdm = nalgebra::Matrix3::from_row_slice(&td);
        let full = tdm.try_inverse()? * hn * tsm;
        let s = full[(2, 2)];
        if !s.is_finite() || s.abs() < 1e-15 {
            return None;
        }
        let m = full / s;
        let out: [f64; 9] = std::array::from_fn(|i| m[(i / 3, i % 3)]);
        out.iter().all(|v| v.is_finite()).then_some(Homography(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_and_quad_of_a_rotated_rectangle() {
        let mut pts = Vec::new();
        let (c, s) = (0.3f64.cos(), 0.3f64.sin());
        for y in 0..40 {
            for x in 0..60 {
                let (fx, fy) = (x as f64 - 30.0, y as f64 - 20.0);
                pts.push([100.0 + c * fx - s * fy, 100.0 + s * fx + c * fy]);
            }
        }
        let hull = convex_hull(pts);
        let q = max_area_quad(&hull).unwrap();
        let area = polygon_area(&q);
        assert!((area - 59.0 * 39.0).abs() < 60.0, "{area}");
        for a in quad_angles(&q) {
            assert!((a - 90.0).abs() < 3.0, "{a}");
        }
        assert!(inside_convex(&q, [100.0, 100.0]));
        assert!(!inside_convex(&q, [10.0, 10.0]));
        // Top-left first, clockwise on screen.
        assert!(q[0][0] + q[0][1] <= q[2][0] + q[2][1]);
    }

    #[test]
    fn offset_moves_edges_outward() {
        let q = [[10.0, 10.0], [30.0, 10.0], [30.0, 20.0], [10.0, 20.0]];
        let o = offset_quad(&q, 2.0);
        assert_eq!(o, [[8.0, 8.0], [32.0, 8.0], [32.0, 22.0], [8.0, 22.0]]);
    }

    #[test]
    fn homography_recovers_a_projection() {
        let h = Homography([1.1, 0.1, 5.0, -0.05, 0.9, 3.0, 0.0005, -0.0003, 1.0]);
        let src: Vec<Pt> = (0..5)
            .flat_map(|i| (0..4).map(move |j| [i as f64 * 20.0, j as f64 * 30.0]))
            .collect();
        let dst: Vec<Pt> = src.iter().map(|p| h.apply(*p)).collect();
        let fit = Homography::fit(&src, &dst).unwrap();
        for p in &src {
            let (a, b) = (h.apply(*p), fit.apply(*p));
            assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6);
        }
    }
}
