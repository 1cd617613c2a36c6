//! The area map: zones and injection points drawn over a capture (normally the series'
//! baseline), in that capture's pixel coordinates, kept as a treatment record of the visit.
//! The original is never touched. A map is shown on any later capture of the same series by
//! the pose transform `frame_from_baseline`, so a point drawn on the baseline lands on the same
//! skin in the follow-up.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::config::TreatmentConfig;
use super::{Body, TreatmentRecord, invalid, line};
use crate::analysis::geometry::{Pt, convex_hull};
use crate::analysis::pose::{self, PoseConfig, PoseOptions};
use crate::records::{Capture, RecordError, Visit};
use crate::store::Store;

/// Most zones, points and polygon vertices one map may hold.
pub const MAX_ZONES: usize = 64;
pub const MAX_POINTS: usize = 2000;
pub const MAX_VERTICES: usize = 512;

/// A zone drawn on the capture.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MapZone {
    pub zone: String,
    #[serde(default)]
    pub label: String,
    pub polygon: Vec<Pt>,
}

/// One injection point.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InjectionPoint {
    pub x: f64,
    pub y: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The product and lot, as recorded at the visit.
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub lot: String,
    pub depth: String,
    pub technique: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_ml: Option<f64>,
    /// Needle or cannula gauge ("32G", "25G cannula").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauge: Option<String>,
}

/// A map as recorded: the capture it was drawn on and its size, the zones and the points.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TreatmentMap {
    pub capture_id: String,
    pub capture_sha256: String,
    pub width: u32,
    pub height: u32,
    pub zones: Vec<MapZone>,
    pub points: Vec<InjectionPoint>,
}

/// What `map set --file` reads: zones and points in the capture's pixel coordinates. A point
/// names its product by lot (or by product name when the visit used one lot of it).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MapInput {
    #[serde(default)]
    pub zones: Vec<MapZone>,
    #[serde(default)]
    pub points: Vec<InjectionPoint>,
    /// Accepted and ignored (a map exported with `map show --json` can be edited and set).
    #[serde(default)]
    pub capture_id: Option<String>,
    #[serde(default)]
    pub capture_sha256: Option<String>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
}

/// A map placed on a capture: the points and zones in that capture's pixels.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PlacedMap {
    pub record_id: String,
    pub visit_id: String,
    /// The capture the map was drawn on.
    pub drawn_on: String,
    /// The capture it is shown on.
    pub capture_id: String,
    pub width: u32,
    pub height: u32,
    /// `[a0, a1, b0, b1]` from the drawn-on capture to this one (see
    /// [`pose::PoseReport::frame_from_baseline`]); identity when drawn on this capture.
    pub frame_from_baseline: [f64; 4],
    /// How sure the alignment is (1 when drawn on this capture).
    pub confidence: f64,
    pub zones: Vec<MapZone>,
    pub points: Vec<InjectionPoint>,
}

fn within(p: Pt, w: u32, h: u32) -> bool {
    p.iter().all(|v| v.is_finite())
        && p[0] >= 0.0
        && p[1] >= 0.0
        && p[0] <= f64::from(w)
        && p[1] <= f64::from(h)
}

/// Check a map against its capture, the visit's area template and products; the map to keep.
pub fn check(
    input: MapInput,
    capture: &Capture,
    cfg: &TreatmentConfig,
    products: &[(String, String)],
) -> Result<TreatmentMap, RecordError> {
    let (w, h) = (capture.width, capture.height);
    if input.zones.len() > MAX_ZONES || input.points.len() > MAX_POINTS {
        return Err(invalid(
            "map",
            format!(
                "{} zones and {} points: at most {MAX_ZONES} zones and {MAX_POINTS} points",
                input.zones.len(),
                input.points.len()
            ),
        ));
    }
    let allowed = cfg.zones_of(capture.area);
    let mut zones = Vec::new();
    for z in input.zones {
        let name = z.zone.trim().to_string();
        if !allowed.contains(&name) {
            return Err(invalid(
                &format!("zone {name:?}"),
                format!(
                    "not a zone of the {} template (known: {})",
                    capture.area,
                    allowed.join(", ")
                ),
            ));
        }
        if z.polygon.len() < 3 || z.polygon.len() > MAX_VERTICES {
            return Err(invalid(
                &format!("zone {name}"),
                format!(
                    "a zone needs 3 to {MAX_VERTICES} corners, not {}",
                    z.polygon.len()
                ),
            ));
        }
        if let Some(p) = z.polygon.iter().find(|p| !within(**p, w, h)) {
            return Err(invalid(
                &format!("zone {name}"),
                format!(
                    "corner ({:.1}, {:.1}) is outside capture {} ({w}×{h})",
                    p[0], p[1], capture.id
                ),
            ));
        }
        let label = cfg
            .zone
            .get(&name)
            .map(|t| t.label.clone())
            .unwrap_or_default();
        zones.push(MapZone {
            zone: name,
            label,
            polygon: z.polygon,
        });
    }
    let names: BTreeSet<&str> = zones.iter().map(|z| z.zone.as_str()).collect();
    let mut points = Vec::new();
    for (i, p) in input.points.into_iter().enumerate() {
        points.push(check_point(i + 1, p, capture, cfg, products, &names)?);
    }
    Ok(TreatmentMap {
        capture_id: capture.id.clone(),
        capture_sha256: capture.sha256.clone(),
        width: w,
        height: h,
        zones,
        points,
    })
}

fn check_point(
    n: usize,
    mut p: InjectionPoint,
    capture: &Capture,
    cfg: &TreatmentConfig,
    products: &[(String, String)],
    zones: &BTreeSet<&str>,
) -> Result<InjectionPoint, RecordError> {
    let what = format!("injection point {n}");
    if !within([p.x, p.y], capture.width, capture.height) {
        return Err(invalid(
            &what,
            format!(
                "({:.1}, {:.1}) is outside capture {} ({}×{})",
                p.x, p.y, capture.id, capture.width, capture.height
            ),
        ));
    }
    if let Some(z) = &p.zone
        && !zones.contains(z.as_str())
    {
        return Err(invalid(
            &what,
            format!("zone {z:?} is not drawn on this map"),
        ));
    }
    let (lot, product) = (p.lot.trim(), p.product.trim());
    let found: Vec<&(String, String)> = products
        .iter()
        .filter(|(prod, l)| {
            if lot.is_empty() {
                prod == product
            } else {
                l == lot && (product.is_empty() || prod == product)
            }
        })
        .collect();
    let [(prod, l)] = found.as_slice() else {
        let known = products
            .iter()
            .map(|(p, l)| format!("{p} lot {l}"))
            .collect::<Vec<_>>();
        return Err(invalid(
            &what,
            format!(
                "{} names no single product of the visit (recorded: {}); record it with `visit product add` first",
                if lot.is_empty() {
                    format!("product {product:?}")
                } else {
                    format!("lot {lot:?}")
                },
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    (p.product, p.lot) = (prod.clone(), l.clone());
    p.depth = choice(&what, "depth", &p.depth, &cfg.treatment.depths)?;
    p.technique = choice(&what, "technique", &p.technique, &cfg.treatment.techniques)?;
    if let Some(v) = p.volume_ml
        && !(v.is_finite() && v > 0.0 && v <= 10.0)
    {
        return Err(invalid(
            &what,
            format!("volume {v} ml is not more than 0 and at most 10"),
        ));
    }
    p.gauge = p
        .gauge
        .as_deref()
        .map(|g| line(&what, g))
        .transpose()?
        .filter(|g| !g.is_empty());
    if p.gauge.as_ref().is_some_and(|g| g.chars().count() > 24) {
        return Err(invalid(&what, "the gauge is longer than 24 characters"));
    }
    Ok(p)
}

fn choice(what: &str, field: &str, v: &str, known: &[String]) -> Result<String, RecordError> {
    let t = v.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    if known.contains(&t) {
        return Ok(t);
    }
    Err(invalid(
        what,
        format!("unknown {field} {v:?} (known: {})", known.join(", ")),
    ))
}

/// Apply `[a0, a1, b0, b1]` to a point.
pub fn apply(t: &[f64; 4], p: Pt) -> Pt {
    [
        t[0] * p[0] - t[1] * p[1] + t[2],
        t[1] * p[0] + t[0] * p[1] + t[3],
    ]
}

/// The identity transform.
pub const IDENTITY: [f64; 4] = [1.0, 0.0, 0.0, 0.0];

impl TreatmentMap {
    /// The map carried by `frame_from_baseline` onto a capture of `w × h` pixels.
    pub fn transformed(&self, t: &[f64; 4]) -> (Vec<MapZone>, Vec<InjectionPoint>) {
        let zones = self
            .zones
            .iter()
            .map(|z| MapZone {
                polygon: z.polygon.iter().map(|p| apply(t, *p)).collect(),
                ..z.clone()
            })
            .collect();
        let points = self
            .points
            .iter()
            .map(|p| {
                let [x, y] = apply(t, [p.x, p.y]);
                InjectionPoint { x, y, ..p.clone() }
            })
            .collect();
        (zones, points)
    }
}

impl Store {
    /// The visit's products as (product, lot), from its records and its own product field.
    pub fn products_of_visit(&self, visit: &Visit) -> Result<Vec<(String, String)>, RecordError> {
        let recorded: Vec<(String, String)> = self
            .visit_treatment(&visit.id)?
            .products
            .into_iter()
            .map(|(_, p)| (p.product, p.lot))
            .collect();
        // The visit's own product (recorded with it, first) when it has no record of its own.
        let mut out = Vec::new();
        if let (Some(p), Some(l)) = (&visit.product, &visit.lot)
            && !recorded.iter().any(|(_, x)| x == l)
        {
            out.push((p.clone(), l.clone()));
        }
        out.extend(recorded);
        Ok(out)
    }

    /// Record (or replace) the map of `visit_id` drawn on `capture_id`.
    pub fn set_map(
        &self,
        visit_id: &str,
        capture_id: &str,
        input: MapInput,
    ) -> Result<TreatmentRecord, RecordError> {
        let visit = self.visit(visit_id)?;
        let capture = self.capture_of_patient(&visit, capture_id)?;
        if capture.area != visit.area {
            return Err(invalid(
                &format!("capture {}", capture.id),
                format!(
                    "it is a {} photo; visit {} treats the {}",
                    capture.area, visit.id, visit.area
                ),
            ));
        }
        let cfg = self.treatment_config()?;
        let map = check(input, &capture, &cfg, &self.products_of_visit(&visit)?)?;
        let details = json!({ "capture": capture.id, "zones": map.zones.len(), "points": map.points.len(),
                              "lots": map.points.iter().map(|p| p.lot.as_str()).collect::<BTreeSet<_>>() });
        let old = self
            .treatment_records(&visit.id)?
            .into_iter()
            .find(|r| matches!(&r.body, Body::Map(m) if m.capture_id == capture.id));
        let consent = Some(capture.consent_id.clone());
        match old {
            Some(o) => self.replace_treatment(&o, consent, Body::Map(map), details),
            None => self.add_treatment(&visit, consent, Body::Map(map), details),
        }
    }

    /// The capture a visit's map is drawn on: the one it was drawn on, else the latest
    /// baseline of the patient's series of the visit's area (frontal first), else a photo
    /// taken at the visit.
    pub fn map_capture_of(&self, visit: &Visit) -> Result<Option<Capture>, RecordError> {
        for r in self.treatment_records(&visit.id)? {
            if let Body::Map(m) = r.body {
                return Ok(Some(self.capture(&m.capture_id)?));
            }
        }
        let all = self.list_captures(None)?;
        let mine: Vec<&Capture> = all
            .iter()
            .filter(|c| c.patient_id == visit.patient_id && c.area == visit.area)
            .collect();
        let baseline = mine
            .iter()
            .filter(|c| c.role == crate::records::Role::Baseline)
            .max_by_key(|c| {
                (
                    c.view == crate::records::View::Frontal,
                    c.captured_at.clone(),
                )
            });
        let at_visit = mine
            .iter()
            .find(|c| c.visit_id.as_deref() == Some(&visit.id));
        Ok(baseline.or(at_visit).map(|c| (*c).clone()))
    }

    /// Zones of the visit's area template placed on a capture: from its face landmarks, or
    /// from the template's frame polygons. A start for drawing, not a record.
    pub fn map_template(&self, capture_id: &str) -> Result<MapInput, RecordError> {
        let capture = self.capture(capture_id)?;
        let cfg = self.treatment_config()?;
        let img = self.capture_image(&capture.id)?.to_rgb8();
        let (w, h) = (f64::from(img.width()), f64::from(img.height()));
        let mut landmarks = None;
        let mut zones = Vec::new();
        for name in cfg.zones_of(capture.area) {
            let Some(t) = cfg.zone.get(name) else {
                continue;
            };
            if !t.frame.is_empty() {
                let polygon = t.frame.iter().map(|p| [p[0] * w, p[1] * h]).collect();
                zones.push(MapZone {
                    zone: name.clone(),
                    label: t.label.clone(),
                    polygon,
                });
                continue;
            }
            if landmarks.is_none() {
                let m = pose::face::models().map_err(|e| invalid("face model", e.to_string()))?;
                landmarks = Some(
                    m.face(&img)
                        .map_err(|e| invalid("face model", e.to_string()))?,
                );
            }
            let Some(Some(l)) = &landmarks else {
                return Err(invalid(
                    &format!("capture {}", capture.id),
                    "no face was found to place the face zones on; draw them by hand",
                ));
            };
            for g in &t.landmarks {
                let pts = g
                    .iter()
                    .filter_map(|&i| l.points.get(i))
                    .map(|p| [f64::from(p[0]), f64::from(p[1])]);
                let polygon = convex_hull(pts.collect());
                zones.push(MapZone {
                    zone: name.clone(),
                    label: t.label.clone(),
                    polygon,
                });
            }
        }
        Ok(MapInput {
            zones,
            ..Default::default()
        })
    }

    /// The map to show on a capture: one drawn on it, else one drawn on its baseline, else
    /// the latest drawn on another capture of its series.
    fn map_for(&self, capture: &Capture) -> Result<TreatmentRecord, RecordError> {
        let rows = self.read(|r| r.treatments_of_patient(&capture.patient_id))?;
        let mut best: Option<(u8, TreatmentRecord)> = None;
        for row in rows.into_iter().filter(|r| r.kind == "map") {
            let rec = self.treatment_of(row)?;
            let Body::Map(m) = &rec.body else { continue };
            let rank = if m.capture_id == capture.id {
                3
            } else if capture.baseline_id.as_deref() == Some(&m.capture_id) {
                2
            } else {
                match self.capture(&m.capture_id) {
                    Ok(c) if c.area == capture.area && c.view == capture.view => 1,
                    _ => 0,
                }
            };
            if rank > 0 && best.as_ref().is_none_or(|(r, _)| rank >= *r) {
                best = Some((rank, rec));
            }
        }
        best.map(|(_, r)| r).ok_or_else(|| {
            invalid(
                &format!("capture {}", capture.id),
                "no map was drawn on it or on another capture of its series",
            )
        })
    }

    /// The map of a capture's series placed on that capture.
    pub fn map_on_capture(&self, capture_id: &str) -> Result<PlacedMap, RecordError> {
        let capture = self.capture(capture_id)?;
        let rec = self.map_for(&capture)?;
        let Body::Map(map) = &rec.body else {
            return Err(invalid("map", "not a map record"));
        };
        let (t, confidence) = if map.capture_id == capture.id {
            (IDENTITY, 1.0)
        } else {
            self.frame_from_drawn(map, &capture)?
        };
        let (zones, points) = map.transformed(&t);
        Ok(PlacedMap {
            record_id: rec.id.clone(),
            visit_id: rec.visit_id.clone(),
            drawn_on: map.capture_id.clone(),
            capture_id: capture.id.clone(),
            width: capture.width,
            height: capture.height,
            frame_from_baseline: t,
            confidence,
            zones,
            points,
        })
    }

    /// Register the capture a map was drawn on to `capture` (full resolution).
    fn frame_from_drawn(
        &self,
        map: &TreatmentMap,
        capture: &Capture,
    ) -> Result<([f64; 4], f64), RecordError> {
        let base = self.capture_image(&map.capture_id)?.to_rgb8();
        let frame = self.capture_image(&capture.id)?.to_rgb8();
        let cfg = PoseConfig::load(self.calibration())?;
        let opts = PoseOptions {
            area: Some(capture.area),
            ..Default::default()
        };
        let r = pose::analyze(&base, &frame, &cfg, &opts);
        match r.frame_from_baseline {
            Some(t) if r.confidence >= cfg.tolerances.min_confidence => Ok((t, r.confidence)),
            _ => Err(invalid(
                &format!("capture {}", capture.id),
                format!(
                    "it could not be aligned with {}, where the map was drawn (confidence {:.2}): the map is not shown rather than shown on the wrong skin",
                    map.capture_id, r.confidence
                ),
            )),
        }
    }
}
