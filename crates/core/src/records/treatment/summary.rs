//! Drawing a placed map (SVG, PNG) and the visit summary a clinician prints for the chart.

use std::fmt::Write as _;

use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_hollow_circle_mut, draw_line_segment_mut};

use super::care::gais_label;
use super::map::PlacedMap;
use super::{VisitTreatment, invalid};
use crate::records::{Capture, RecordError, Visit};
use crate::review::report::{b64, esc};
use crate::store::Store;

/// Colours of products on a map, in the order the visit recorded them.
const PALETTE: [[u8; 3]; 6] = [
    [230, 60, 60],
    [40, 120, 230],
    [40, 170, 90],
    [200, 120, 20],
    [150, 70, 200],
    [20, 170, 180],
];

fn colour(lots: &[String], lot: &str) -> [u8; 3] {
    let i = lots.iter().position(|l| l == lot).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

fn lots_of(m: &PlacedMap) -> Vec<String> {
    let mut lots: Vec<String> = Vec::new();
    for p in &m.points {
        if !lots.contains(&p.lot) {
            lots.push(p.lot.clone());
        }
    }
    lots
}

/// The map as SVG in the capture's pixel coordinates, over `background` (a JPEG) if given.
pub fn map_svg(m: &PlacedMap, background: Option<&[u8]>) -> String {
    let (w, h) = (m.width, m.height);
    let unit = f64::from(w.max(h)) / 400.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" data-capture=\"{}\">",
        esc(&m.capture_id)
    );
    if let Some(jpeg) = background {
        let _ = write!(
            s,
            "<image href=\"data:image/jpeg;base64,{}\" x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\"/>",
            b64(jpeg)
        );
    }
    for z in &m.zones {
        let pts: Vec<String> = z
            .polygon
            .iter()
            .map(|p| format!("{:.1},{:.1}", p[0], p[1]))
            .collect();
        let _ = write!(
            s,
            "<polygon class=\"zone\" data-zone=\"{}\" points=\"{}\" fill=\"rgba(255,230,0,0.12)\" stroke=\"#ffd400\" stroke-width=\"{:.1}\"><title>{}</title></polygon>",
            esc(&z.zone),
            pts.join(" "),
            unit * 0.8,
            esc(&z.label)
        );
    }
    let lots = lots_of(m);
    for (i, p) in m.points.iter().enumerate() {
        let [r, g, b] = colour(&lots, &p.lot);
        let _ = write!(
            s,
            "<circle class=\"point\" data-n=\"{}\" data-lot=\"{}\" cx=\"{:.2}\" cy=\"{:.2}\" r=\"{:.1}\" fill=\"rgb({r},{g},{b})\" stroke=\"white\" stroke-width=\"{:.1}\"><title>{} {} lot {}, {}, {}</title></circle>",
            i + 1,
            esc(&p.lot),
            p.x,
            p.y,
            unit * 1.6,
            unit * 0.5,
            i + 1,
            esc(&p.product),
            esc(&p.lot),
            esc(&p.depth),
            esc(&p.technique)
        );
    }
    s.push_str("</svg>");
    s
}

/// The map drawn over `img`, a copy of the capture at any size.
pub fn draw_map(img: &mut RgbImage, m: &PlacedMap) {
    let k = f64::from(img.width()) / f64::from(m.width.max(1));
    let at = |p: [f64; 2]| ((p[0] * k) as f32, (p[1] * k) as f32);
    let thick = (f64::from(img.width().max(img.height())) / 500.0).max(1.0) as i32;
    for z in &m.zones {
        for (i, a) in z.polygon.iter().enumerate() {
            let b = z.polygon[(i + 1) % z.polygon.len()];
            let (a, b) = (at(*a), at(b));
            for d in 0..thick {
                let o = d as f32 - thick as f32 / 2.0;
                draw_line_segment_mut(img, (a.0 + o, a.1), (b.0 + o, b.1), Rgb([255, 212, 0]));
                draw_line_segment_mut(img, (a.0, a.1 + o), (b.0, b.1 + o), Rgb([255, 212, 0]));
            }
        }
    }
    let lots = lots_of(m);
    let r = (thick * 3).max(3);
    for p in &m.points {
        let (x, y) = at([p.x, p.y]);
        let c = (x.round() as i32, y.round() as i32);
        draw_filled_circle_mut(img, c, r, Rgb(colour(&lots, &p.lot)));
        draw_hollow_circle_mut(img, c, r, Rgb([255, 255, 255]));
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
.photos{display:flex;gap:16px;flex-wrap:wrap}figure{margin:0}.ph{position:relative;display:inline-block}\
.ph img{display:block;max-width:440px;max-height:440px}.ph svg{position:absolute;left:0;top:0;width:100%;height:100%}\
.warn{background:#ffe3e3;border:2px solid #c00;color:#900;padding:8px;font-weight:bold;margin:6px 0}\
.muted{color:#666}.ok{color:#060}";

/// The pictures the summary shows: the capture the map was drawn on (or the visit's
/// baseline) and the latest follow-up of its series.
fn summary_pair(
    store: &Store,
    visit: &Visit,
    t: &VisitTreatment,
) -> Result<(Option<Capture>, Option<Capture>), RecordError> {
    let all = store.list_captures(None)?;
    let mine: Vec<&Capture> = all
        .iter()
        .filter(|c| c.patient_id == visit.patient_id)
        .collect();
    let base = match t.maps.first() {
        Some((_, m)) => mine.iter().find(|c| c.id == m.capture_id).copied(),
        None => {
            let at_visit = mine
                .iter()
                .find(|c| c.visit_id.as_deref() == Some(&visit.id));
            at_visit.and_then(|c| {
                let b = c.baseline_id.as_deref().unwrap_or(&c.id);
                mine.iter().find(|x| x.id == b).copied()
            })
        }
    };
    let Some(base) = base else {
        return Ok((None, None));
    };
    let follow = mine
        .iter()
        .filter(|c| c.id != base.id && c.area == base.area && c.view == base.view)
        .filter(|c| c.captured_at > base.captured_at)
        .max_by(|a, b| a.captured_at.cmp(&b.captured_at))
        .copied();
    Ok((Some(base.clone()), follow.cloned()))
}

fn figure(store: &Store, c: &Capture, caption: &str, out: &mut String) -> Result<(), RecordError> {
    let thumb = store.thumbnail(&c.id)?;
    let overlay = match store.map_on_capture(&c.id) {
        Ok(m) => map_svg(&m, None),
        Err(e) => format!("<!-- no map: {} -->", esc(&e.to_string())),
    };
    let _ = write!(
        out,
        "<figure><div class=\"ph\"><img alt=\"{}\" src=\"data:image/jpeg;base64,{}\">{overlay}</div><figcaption>{} — {} ({})</figcaption></figure>",
        esc(caption),
        b64(&thumb),
        esc(caption),
        esc(&c.id),
        esc(&c.captured_at)
    );
    Ok(())
}

fn opt(v: Option<&str>) -> String {
    v.map_or_else(|| "—".to_string(), esc)
}

impl Store {
    /// The visit summary as one self-contained HTML page, and the captures whose pictures it
    /// holds (the page is a copy of them: record it with
    /// [`Store::record_derived_export`] so a withdrawal lists it).
    pub fn visit_summary_html(&self, visit_id: &str) -> Result<(String, Vec<String>), RecordError> {
        let visit = self.visit(visit_id)?;
        let patient = self.patient_by_id(&visit.patient_id)?;
        let t = self.visit_treatment(&visit.id)?;
        let cfg = self.treatment_config()?;
        let mut h = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Visit {}</title><style>{STYLE}</style></head><body>",
            esc(&visit.id)
        );
        let _ = write!(
            h,
            "<h1>Visit summary</h1><p>Patient <b>{}</b> · visit {} on {} · {} · clinician {}</p>",
            esc(&patient.reference),
            esc(&visit.id),
            esc(&visit.date),
            esc(visit.area.label()),
            opt(visit.clinician.as_deref())
        );
        for (_, r) in &t.responses {
            for w in r.warnings() {
                let _ = write!(h, "<div class=\"warn\">⚠ {}</div>", esc(&w));
            }
        }
        let shown = self.summary_photos(&visit, &t, &mut h)?;
        summary_products(&visit, &t, &mut h);
        summary_points(&t, &mut h);
        summary_care(&t, &cfg.treatment.success, &mut h);
        h.push_str("</body></html>");
        Ok((h, shown))
    }

    fn summary_photos(
        &self,
        visit: &Visit,
        t: &VisitTreatment,
        h: &mut String,
    ) -> Result<Vec<String>, RecordError> {
        h.push_str("<h2>Photos and area map</h2>");
        let (base, follow) = summary_pair(self, visit, t)?;
        let Some(base) = base else {
            h.push_str("<p class=\"muted\">No photos of this visit's series.</p>");
            return Ok(Vec::new());
        };
        h.push_str("<div class=\"photos\">");
        figure(self, &base, "Baseline", h)?;
        if let Some(f) = &follow {
            figure(self, f, "Follow-up", h)?;
        }
        h.push_str("</div>");
        if let Some(f) = &follow {
            match self.grade_pair(&base.id, &f.id) {
                Ok(g) => {
                    let _ = write!(
                        h,
                        "<p>Comparability grade <b>{}</b>: {}</p>",
                        g.grade,
                        esc(&g
                            .aspects
                            .iter()
                            .filter(|a| a.level != crate::review::compare::Level::Ok)
                            .map(|a| a.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; "))
                    );
                }
                Err(e) => {
                    let _ = write!(
                        h,
                        "<p class=\"muted\">Comparability not graded: {}</p>",
                        esc(&e.to_string())
                    );
                }
            }
        } else {
            h.push_str("<p class=\"muted\">No follow-up photo yet.</p>");
        }
        Ok(std::iter::once(base.id)
            .chain(follow.map(|f| f.id))
            .collect())
    }
}

fn summary_products(visit: &Visit, t: &VisitTreatment, h: &mut String) {
    h.push_str("<h2>Products and lots</h2><table><tr><th>Product</th><th>Lot</th><th>Expiry</th><th>Amount</th><th>Note</th></tr>");
    let mut any = false;
    for (_, p) in &t.products {
        any = true;
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.product),
            esc(&p.lot),
            esc(&p.expiry),
            p.quantity.map_or("—".into(), |q| format!(
                "{q} {}",
                p.unit.as_deref().map_or(String::new(), esc)
            )),
            p.expired_override
                .as_deref()
                .map_or(String::new(), |r| format!("expired lot used: {}", esc(r)))
        );
    }
    if !any && let Some(p) = &visit.product {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>—</td><td></td></tr>",
            esc(p),
            opt(visit.lot.as_deref()),
            opt(visit.lot_expiry.as_deref())
        );
    }
    h.push_str("</table>");
    if let Some(tech) = &visit.technique {
        let _ = write!(h, "<p>Technique: {}</p>", esc(tech));
    }
}

fn summary_points(t: &VisitTreatment, h: &mut String) {
    for (_, m) in &t.maps {
        let _ = write!(
            h,
            "<h2>Injection points ({} on {})</h2><table><tr><th>#</th><th>Zone</th><th>Product / lot</th><th>Depth</th><th>Technique</th><th>Volume</th><th>Gauge</th></tr>",
            m.points.len(),
            esc(&m.capture_id)
        );
        for (i, p) in m.points.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                opt(p.zone.as_deref()),
                esc(&p.product),
                esc(&p.lot),
                esc(&p.depth),
                esc(&p.technique),
                p.volume_ml.map_or("—".into(), |v| format!("{v} ml")),
                opt(p.gauge.as_deref())
            );
        }
        h.push_str("</table>");
    }
}

fn summary_care(t: &VisitTreatment, success: &str, h: &mut String) {
    h.push_str("<h2>Immediate skin response</h2>");
    match t.responses.last() {
        None => h.push_str("<p class=\"muted\">Not recorded.</p>"),
        Some((_, r)) => {
            h.push_str("<table>");
            for f in &r.findings {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td></tr>",
                    esc(&f.label),
                    f.severity
                );
            }
            h.push_str("</table>");
            if let Some(n) = &r.note {
                let _ = write!(h, "<p>{}</p>", esc(n));
            }
        }
    }
    h.push_str("<h2>Pain (0–10)</h2>");
    if t.pain.is_empty() {
        h.push_str("<p class=\"muted\">Not recorded.</p>");
    }
    for (_, p) in &t.pain {
        let _ = write!(
            h,
            "<p><b>{}/10</b> {}{}</p>",
            p.score,
            p.when,
            p.comment
                .as_deref()
                .map_or(String::new(), |c| format!(": {}", esc(c)))
        );
    }
    h.push_str("<h2>Outcome</h2>");
    let _ = write!(h, "<p class=\"muted\">{}</p>", esc(success));
    if t.outcomes.is_empty() {
        h.push_str("<p class=\"muted\">Not recorded at this visit.</p>");
    }
    for (_, o) in &t.outcomes {
        let g = |v: Option<u8>| v.map_or("—".to_string(), |g| format!("{g} ({})", gais_label(g)));
        let _ = write!(
            h,
            "<p>GAIS patient {} · clinician {} · satisfaction {}{}</p>",
            g(o.patient_gais),
            g(o.clinician_gais),
            o.satisfaction.map_or("—".into(), |s| format!("{s}/10")),
            o.text
                .as_deref()
                .map_or(String::new(), |x| format!("<br>{}", esc(x)))
        );
    }
    if !t.adverse.is_empty() {
        h.push_str("<h2>Adverse events</h2>");
        for (id, a) in &t.adverse {
            let _ = write!(
                h,
                "<div class=\"{}\">{} — {} ({}) from {}{}{}</div>",
                if a.escalated { "warn" } else { "" },
                esc(id),
                esc(&a.description),
                a.severity,
                esc(&a.onset),
                a.action
                    .as_deref()
                    .map_or(String::new(), |x| format!("; action: {}", esc(x))),
                if a.escalated { "; escalated" } else { "" }
            );
        }
    }
}

/// Refuse an output path inside the data directory or one that exists (a summary or map file
/// is a copy of patient data the clinic manages itself).
pub fn check_output(store: &Store, out: &std::path::Path) -> Result<(), RecordError> {
    if out.exists() {
        return Err(invalid(
            &out.display().to_string(),
            "already exists; choose a new file name",
        ));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !parent.is_dir() {
        return Err(invalid(
            &out.display().to_string(),
            "its folder does not exist",
        ));
    }
    if crate::records::capture::path_is_inside(out, store.root()) {
        return Err(invalid(
            &out.display().to_string(),
            "is inside the data directory",
        ));
    }
    Ok(())
}
