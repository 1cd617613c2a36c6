//! Head pose and expression from FaceMesh landmarks, relative to the baseline.
//!
//! Coordinates: x right, y down, z away from the camera (right-handed). The rotation from the
//! baseline's rigid landmarks to the frame's is found by 3D Procrustes (Kabsch); yaw and pitch
//! are read from where it sends the camera-facing axis, roll from where it sends the face's
//! horizontal. Conventions: yaw > 0 = the patient turned toward their own left (nose toward
//! image right); pitch > 0 = chin up; roll > 0 = counter-clockwise on screen.

use serde::{Deserialize, Serialize};

use super::face::Landmarks;

/// Landmarks that move with the skull, not with expression: forehead, nose bridge and tip,
/// outer and inner eye corners, temples, cheekbones.
pub const RIGID: &[usize] = &[
    10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 127, 356, 234, 454, 116, 345, 50,
    280, 123, 352, 111, 340, 143, 372, 21, 251, 54, 284,
];

/// Eye centres (corner midpoints): right eye 33/133, left eye 362/263.
fn eye_centres(p: &[[f32; 3]]) -> ([f64; 3], [f64; 3]) {
    let mid = |a: usize, b: usize| {
        std::array::from_fn(|k| (f64::from(p[a][k]) + f64::from(p[b][k])) / 2.0)
    };
    (mid(33, 133), mid(362, 263))
}

fn dist2(a: [f32; 3], b: [f32; 3]) -> f64 {
    f64::from(a[0] - b[0]).hypot(f64::from(a[1] - b[1]))
}

/// Inter-ocular distance in pixels (eye centre to eye centre, in the image plane).
pub fn interocular_px(l: &Landmarks) -> f64 {
    let (r, le) = eye_centres(&l.points);
    (r[0] - le[0]).hypot(r[1] - le[1])
}

/// Expression measures, each normalised by the inter-ocular distance.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Expression {
    pub mouth_open: f64,
    pub smile_width: f64,
    pub eye_open: f64,
    pub brow_height: f64,
}

/// Expression of one face.
pub fn expression(l: &Landmarks) -> Expression {
    let p = &l.points;
    let iod = interocular_px(l).max(1e-6);
    let (re, le) = eye_centres(p);
    let brow = |b: usize, e: [f64; 3]| (f64::from(p[b][0]) - e[0]).hypot(f64::from(p[b][1]) - e[1]);
    Expression {
        mouth_open: dist2(p[13], p[14]) / iod,
        smile_width: dist2(p[61], p[291]) / iod,
        eye_open: (dist2(p[159], p[145]) + dist2(p[386], p[374])) / 2.0 / iod,
        brow_height: (brow(105, re) + brow(334, le)) / 2.0 / iod,
    }
}

/// Rotation and expression of the frame's face relative to the baseline's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HeadDelta {
    pub yaw_deg: f64,
    pub pitch_deg: f64,
    pub roll_deg: f64,
    /// Frankfort-plane tilt of the frame (ear to lower eyelid), degrees above horizontal.
    pub frankfort_tilt_deg: f64,
    /// Frame tilt minus baseline tilt.
    pub frankfort_delta_deg: f64,
    pub baseline: Expression,
    pub frame: Expression,
    /// RMS residual of the rigid fit, in inter-ocular distances (large: not the same face or a
    /// failed landmark fit).
    pub rigid_residual: f64,
}

fn normalised(l: &Landmarks) -> Vec<nalgebra::Vector3<f64>> {
    let pts: Vec<nalgebra::Vector3<f64>> = RIGID
        .iter()
        .map(|&i| {
            nalgebra::Vector3::new(
                f64::from(l.points[i][0]),
                f64::from(l.points[i][1]),
                f64::from(l.points[i][2]),
            )
        })
        .collect();
    let c = pts.iter().sum::<nalgebra::Vector3<f64>>() / pts.len() as f64;
    let centred: Vec<_> = pts.iter().map(|p| p - c).collect();
    let rms = (centred.iter().map(|p| p.norm_squared()).sum::<f64>() / centred.len() as f64)
        .sqrt()
        .max(1e-9);
    centred.iter().map(|p| p / rms).collect()
}

fn frankfort(l: &Landmarks) -> f64 {
    // Tragion proxies 234 / 454, orbitale proxies (lower eyelid) 145 / 374.
    let v = |t: usize, o: usize| {
        let (a, b) = (l.points[t], l.points[o]);
        [
            f64::from(b[0] - a[0]),
            f64::from(b[1] - a[1]),
            f64::from(b[2] - a[2]),
        ]
    };
    let (r, lf) = (v(234, 145), v(454, 374));
    let up = -(r[1] + lf[1]) / 2.0;
    let horiz = (r[0].hypot(r[2]) + lf[0].hypot(lf[2])) / 2.0;
    up.atan2(horiz).to_degrees()
}

/// The head's yaw in one frame, in degrees (0: facing the camera; > 0: turned toward the
/// patient's own left, nose toward image right), from the depth difference across the face:
/// the outer cheek points (234, the patient's right; 454, their left) and the eye corners.
pub fn yaw_deg(l: &Landmarks) -> Option<f64> {
    let p = &l.points;
    if p.len() < 468 {
        return None;
    }
    let across = |r: usize, left: usize| {
        let (a, b) = (p[r], p[left]);
        (f64::from(b[2] - a[2]), f64::from(b[0] - a[0]))
    };
    let (dz1, dx1) = across(234, 454);
    let (dz2, dx2) = across(33, 263);
    let (dz, dx) = (dz1 + dz2, dx1 + dx2);
    (dx.abs() + dz.abs() > 1e-6).then(|| dz.atan2(dx).to_degrees())
}

/// Compare two faces.
pub fn delta(baseline: &Landmarks, frame: &Landmarks) -> Option<HeadDelta> {
    let p = normalised(baseline);
    let q = normalised(frame);
    let mut h = nalgebra::Matrix3::<f64>::zeros();
    for (a, b) in p.iter().zip(&q) {
        h += a * b.transpose();
    }
    let svd = h.svd(true, true);
    let (u, vt) = (svd.u?, svd.v_t?);
    let v = vt.transpose();
    let d = (v * u.transpose()).determinant().signum();
    let r =
        v * nalgebra::Matrix3::from_diagonal(&nalgebra::Vector3::new(1.0, 1.0, d)) * u.transpose();
    let resid = (p
        .iter()
        .zip(&q)
        .map(|(a, b)| (r * a - b).norm_squared())
        .sum::<f64>()
        / p.len() as f64)
        .sqrt();
    // Where the camera-facing axis and the face's horizontal go.
    let f = r * nalgebra::Vector3::new(0.0, 0.0, -1.0);
    let x = r * nalgebra::Vector3::new(1.0, 0.0, 0.0);
    let yaw = f[0].atan2(-f[2]).to_degrees();
    let pitch = (-f[1]).atan2(f[0].hypot(f[2])).to_degrees();
    let roll = (-x[1]).atan2(x[0]).to_degrees();
    // Residual in inter-ocular units: the normalisation makes RMS 1, so scale by the rigid
    // set's spread relative to the eye distance (about 1.2 for these landmarks).
    let ft = frankfort(frame);
    Some(HeadDelta {
        yaw_deg: yaw,
        pitch_deg: pitch,
        roll_deg: roll,
        frankfort_tilt_deg: ft,
        frankfort_delta_deg: ft - frankfort(baseline),
        baseline: expression(baseline),
        frame: expression(frame),
        rigid_residual: resid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(rot: nalgebra::Rotation3<f64>) -> Landmarks {
        // A rough head: points on an ellipsoid, indexed like FaceMesh for the ones we use.
        let mut points = vec![[0f32; 3]; 468];
        for (i, p) in points.iter_mut().enumerate() {
            let a = i as f64 * 0.7;
            let b = i as f64 * 0.37;
            let v = nalgebra::Vector3::new(
                60.0 * a.sin() * b.cos(),
                80.0 * b.sin(),
                -50.0 * a.cos().abs() * b.cos(),
            );
            let w = rot * v;
            *p = [(w[0] + 300.0) as f32, (w[1] + 200.0) as f32, w[2] as f32];
        }
        Landmarks {
            points,
            presence: 1.0,
        }
    }

    /// A symmetric face (cheeks and eye corners mirrored), turned by `deg` as [`delta`]
    /// counts yaw.
    fn turned(deg: f64) -> Landmarks {
        let rot =
            nalgebra::Rotation3::from_axis_angle(&nalgebra::Vector3::y_axis(), -deg.to_radians());
        let mut points = vec![[0f32; 3]; 468];
        for (i, v) in [
            (234, [-70.0, 0.0, 10.0]),
            (454, [70.0, 0.0, 10.0]),
            (33, [-40.0, -20.0, -15.0]),
            (263, [40.0, -20.0, -15.0]),
        ] {
            let w = rot * nalgebra::Vector3::new(v[0], v[1], v[2]);
            points[i] = [(w[0] + 300.0) as f32, (w[1] + 200.0) as f32, w[2] as f32];
        }
        Landmarks {
            points,
            presence: 1.0,
        }
    }

    #[test]
    fn yaw_of_one_frame_tells_the_view() {
        for deg in [0.0, 20.0, 45.0, -45.0, 80.0] {
            let y = yaw_deg(&turned(deg)).unwrap();
            assert!((y - deg).abs() < 0.5, "{deg}: {y}");
        }
    }

    #[test]
    fn signs_of_yaw_pitch_roll() {
        let base = face(nalgebra::Rotation3::identity());
        // Nose (−z) turning toward +x: a rotation about +y (down) by −10° in this frame.
        let yawed = face(nalgebra::Rotation3::from_axis_angle(
            &nalgebra::Vector3::y_axis(),
            -10f64.to_radians(),
        ));
        let d = delta(&base, &yawed).unwrap();
        assert!(
            (d.yaw_deg - 10.0).abs() < 0.5 && d.pitch_deg.abs() < 0.5,
            "{d:?}"
        );
        // Chin up: the nose moves up (−y).
        let pitched = face(nalgebra::Rotation3::from_axis_angle(
            &nalgebra::Vector3::x_axis(),
            -8f64.to_radians(),
        ));
        let d = delta(&base, &pitched).unwrap();
        assert!(
            (d.pitch_deg - 8.0).abs() < 0.5 && d.yaw_deg.abs() < 0.5,
            "{d:?}"
        );
        // Counter-clockwise on screen (y down): rotation about z by −5°.
        let rolled = face(nalgebra::Rotation3::from_axis_angle(
            &nalgebra::Vector3::z_axis(),
            -5f64.to_radians(),
        ));
        let d = delta(&base, &rolled).unwrap();
        assert!(
            (d.roll_deg - 5.0).abs() < 0.5 && d.yaw_deg.abs() < 0.5 && d.pitch_deg.abs() < 0.5,
            "{d:?}"
        );
    }
}
