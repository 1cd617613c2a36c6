//! The treatment window of the current visit: products and lots, the area map drawn over the
//! baseline (zones placed from the template or drawn corner by corner, injection points
//! clicked on the picture), the skin response and pain at the end of the session, and the
//! outcome at follow-up beside the clinic's definition of success. Every change is a command
//! to the core, which records it as `sameframe visit …` / `map set` would.

use egui::{Color32, Pos2, Rect, RichText, Sense, Stroke, TextureOptions, Ui, pos2};

use super::live_ui::fit;
use super::widgets::{date_field, field_error, labelled_text};
use crate::app::commands::{CoreCommand, TreatmentCmd, TreatmentView};
use crate::app::state::{LoadedTreatment, State, UiCommand};
use sameframe_core::records::treatment::care::{FindingInput, GAIS, PainWhen, Severity};
use sameframe_core::records::treatment::map::MapInput;
use sameframe_core::records::treatment::{InjectionPoint, MapZone};

/// Colours of the visit's products on the map, in the order they were recorded.
const PALETTE: [Color32; 6] = [
    Color32::from_rgb(230, 60, 60),
    Color32::from_rgb(40, 120, 230),
    Color32::from_rgb(40, 170, 90),
    Color32::from_rgb(200, 120, 20),
    Color32::from_rgb(150, 70, 200),
    Color32::from_rgb(20, 170, 180),
];
const ZONE: Color32 = Color32::from_rgb(255, 212, 0);
const WARN: Color32 = Color32::from_rgb(215, 55, 50);

/// Draw zones and points given in capture pixels (`size`) over the picture at `rect`.
pub fn paint_map(
    painter: &egui::Painter,
    rect: Rect,
    size: [u32; 2],
    zones: &[MapZone],
    points: &[InjectionPoint],
) {
    let k = rect.width() / size[0].max(1) as f32;
    let at = |p: [f64; 2]| rect.min + egui::vec2(p[0] as f32 * k, p[1] as f32 * k);
    for z in zones {
        let pts: Vec<Pos2> = z.polygon.iter().map(|p| at(*p)).collect();
        painter.add(egui::Shape::closed_line(pts, Stroke::new(2.0, ZONE)));
    }
    let mut lots: Vec<&str> = Vec::new();
    for p in points {
        if !lots.contains(&p.lot.as_str()) {
            lots.push(&p.lot);
        }
        let i = lots.iter().position(|l| *l == p.lot).unwrap_or(0);
        let c = at([p.x, p.y]);
        painter.circle(
            c,
            5.0,
            PALETTE[i % PALETTE.len()],
            Stroke::new(1.5, Color32::WHITE),
        );
    }
}

/// A record (re)loaded: the picture goes to the GPU; the drafts follow the visit.
pub fn loaded(ctx: &egui::Context, st: &mut State, view: TreatmentView, saved: Option<String>) {
    let t = &mut st.treatment;
    t.busy = false;
    t.error = None;
    let mut view = view;
    let picture = view.map_capture.take().map(|(id, img)| {
        let size = [img.width, img.height];
        (
            id,
            ctx.load_texture("treatment-map", img.image, TextureOptions::LINEAR),
            size,
        )
    });
    let d = &mut t.draft;
    let new_visit = d.map_of.as_ref().is_none_or(|(v, _)| *v != view.visit_id);
    if d.severities.len() != view.responses.len() || new_visit {
        // What was recorded, else none for every response.
        let recorded = view.record.responses.last().map(|(_, r)| &r.findings);
        d.severities = view
            .responses
            .iter()
            .map(|def| {
                recorded
                    .and_then(|f| f.iter().find(|f| f.response == def.key))
                    .map_or(0, |f| f.severity as usize)
            })
            .collect();
    }
    let map_key = picture
        .as_ref()
        .map(|(id, _, _)| (view.visit_id.clone(), id.clone()));
    // A product recorded: its form is done with (a refusal keeps it for correcting).
    if view
        .record
        .products
        .iter()
        .any(|(_, p)| p.product == d.product.trim() && p.lot == d.lot.trim())
    {
        (d.product, d.lot, d.quantity, d.expired_reason) = Default::default();
    }
    if d.map_of != map_key || saved.as_deref() == Some("area map saved") {
        d.map_of = map_key.clone();
        let existing = view
            .record
            .maps
            .iter()
            .find(|(_, m)| map_key.as_ref().is_some_and(|(_, c)| m.capture_id == *c));
        d.zones = existing.map(|(_, m)| m.zones.clone()).unwrap_or_default();
        d.points = existing.map(|(_, m)| m.points.clone()).unwrap_or_default();
        d.map_dirty = false;
        d.drawing = None;
    }
    if let Some(s) = &saved {
        st.notify(format!("{s} (visit {})", view.visit_id), false);
    }
    let t = &mut st.treatment;
    t.done = saved;
    t.loaded = Some(LoadedTreatment { view, picture });
}

fn send(st: &mut State, cmd: TreatmentCmd) {
    st.treatment.busy = true;
    st.treatment.error = None;
    st.treatment.done = None;
    st.cmds
        .push(UiCommand::Core(CoreCommand::Treatment(Box::new(cmd))));
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The window.
pub fn window(ctx: &egui::Context, st: &mut State) {
    let mut open = st.treatment.open;
    egui::Window::new("Treatment record")
        .open(&mut open)
        .default_size([820.0, 720.0])
        .show(ctx, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("treatment_scroll")
                .show(ui, |ui| body(ui, st));
        });
    st.treatment.open = open;
}

fn body(ui: &mut Ui, st: &mut State) {
    let Some(l) = &st.treatment.loaded else {
        ui.label(if st.treatment.busy {
            "loading…"
        } else {
            "Choose a visit first."
        });
        field_error(ui, &st.treatment.error);
        return;
    };
    let visit = l.view.visit_id.clone();
    ui.label(RichText::new(format!("Visit {visit}")).strong());
    if st.treatment.busy {
        ui.label(RichText::new("saving…").weak());
    }
    field_error(ui, &st.treatment.error);
    if let Some(done) = &st.treatment.done {
        ui.colored_label(Color32::from_rgb(40, 180, 80), done);
    }
    egui::CollapsingHeader::new("Products and lots")
        .default_open(true)
        .show(ui, |ui| products(ui, st, &visit));
    egui::CollapsingHeader::new("Area map")
        .default_open(true)
        .show(ui, |ui| map(ui, st, &visit));
    egui::CollapsingHeader::new("End of session: skin response and pain")
        .default_open(true)
        .show(ui, |ui| end_of_session(ui, st, &visit));
    egui::CollapsingHeader::new("Outcome at follow-up")
        .default_open(false)
        .show(ui, |ui| outcome(ui, st, &visit));
}

fn products(ui: &mut Ui, st: &mut State, visit: &str) {
    if let Some(l) = &st.treatment.loaded {
        if l.view.products.is_empty() {
            ui.label(RichText::new("No product recorded yet.").weak());
        }
        for (_, p) in &l.view.record.products {
            ui.label(format!(
                "{} · lot {} · expires {}",
                p.product, p.lot, p.expiry
            ));
        }
    }
    let d = &mut st.treatment.draft;
    labelled_text(ui, "Product used", &mut d.product);
    labelled_text(ui, "Lot number", &mut d.lot);
    date_field(ui, "Expiry", &mut d.expiry, false);
    ui.horizontal(|ui| {
        let a = ui.label("Amount");
        ui.add(egui::TextEdit::singleline(&mut d.quantity).desired_width(60.0))
            .labelled_by(a.id);
        let u = ui.label("Unit");
        ui.add(egui::TextEdit::singleline(&mut d.unit).desired_width(60.0))
            .labelled_by(u.id);
    });
    labelled_text(ui, "Reason for an expired lot", &mut d.expired_reason)
        .on_hover_text("only if an expired lot was really used (audited)");
    let ready =
        !d.product.trim().is_empty() && !d.lot.trim().is_empty() && !d.expiry.trim().is_empty();
    if ui
        .add_enabled(ready, egui::Button::new("Add product"))
        .on_disabled_hover_text("give the product, its lot and the lot's expiry")
        .clicked()
    {
        let quantity = d.quantity.trim().replace(',', ".").parse::<f64>().ok();
        let cmd = TreatmentCmd::AddProduct {
            visit_id: visit.to_string(),
            product: d.product.trim().to_string(),
            lot: d.lot.trim().to_string(),
            expiry: d.expiry.trim().to_string(),
            quantity,
            unit: opt(&d.unit).filter(|_| quantity.is_some()),
            expired_reason: opt(&d.expired_reason),
        };
        send(st, cmd);
    }
}

fn combo(ui: &mut Ui, label: &str, value: &mut usize, options: &[String]) {
    egui::ComboBox::from_label(label)
        .selected_text(options.get(*value).cloned().unwrap_or_default())
        .show_ui(ui, |ui| {
            for (i, o) in options.iter().enumerate() {
                ui.selectable_value(value, i, o);
            }
        });
}

fn map(ui: &mut Ui, st: &mut State, visit: &str) {
    let Some(l) = &st.treatment.loaded else {
        return;
    };
    let Some((capture, texture, size)) = l.picture.clone() else {
        ui.label("No photo of this area yet: take the baseline first, then draw the map on it.");
        return;
    };
    let zones: Vec<String> = l.view.zones.iter().map(|(k, _)| k.clone()).collect();
    let products: Vec<String> = l
        .view
        .products
        .iter()
        .map(|(p, lot)| format!("{p} / {lot}"))
        .collect();
    let (depths, techniques) = (l.view.depths.clone(), l.view.techniques.clone());
    let product_lots = l.view.products.clone();
    ui.label(RichText::new(format!("Drawn on {capture}")).weak());
    let d = &mut st.treatment.draft;
    ui.horizontal(|ui| {
        combo(ui, "Zone", &mut d.zone_pick, &zones);
        match &d.drawing {
            None => {
                if ui.button("Draw zone").clicked() {
                    d.drawing = Some((d.zone_pick, Vec::new()));
                }
            }
            Some((z, corners)) => {
                let n = corners.len();
                if ui
                    .add_enabled(n >= 3, egui::Button::new("Finish zone"))
                    .clicked()
                {
                    let (z, corners) = (*z, corners.clone());
                    d.zones.push(MapZone {
                        zone: zones.get(z).cloned().unwrap_or_default(),
                        label: String::new(),
                        polygon: corners,
                    });
                    d.drawing = None;
                    d.map_dirty = true;
                } else if ui.button("Cancel zone").clicked() {
                    d.drawing = None;
                }
                ui.label(format!("{n} corner(s): click the picture"));
            }
        }
    });
    if ui.button("Place template zones").clicked() {
        st.treatment.busy = true;
        st.cmds
            .push(UiCommand::Core(CoreCommand::Treatment(Box::new(
                TreatmentCmd::PlaceTemplate {
                    capture_id: capture.clone(),
                },
            ))));
    }
    let d = &mut st.treatment.draft;
    ui.horizontal(|ui| {
        combo(ui, "Product / lot", &mut d.point_product, &products);
        combo(ui, "Depth", &mut d.depth, &depths);
        combo(ui, "Technique", &mut d.technique, &techniques);
    });
    ui.horizontal(|ui| {
        let v = ui.label("Volume (ml)");
        ui.add(egui::TextEdit::singleline(&mut d.volume).desired_width(60.0))
            .labelled_by(v.id);
        let g = ui.label("Gauge");
        ui.add(egui::TextEdit::singleline(&mut d.gauge).desired_width(90.0))
            .labelled_by(g.id);
    });
    let width = ui.available_width().min(560.0);
    let shown = fit(
        Rect::from_min_size(Pos2::ZERO, egui::vec2(width, width)),
        [size[0] as f32, size[1] as f32],
    )
    .size();
    let (rect, resp) = ui.allocate_exact_size(shown, Sense::click());
    resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, "Area map picture"));
    let painter = ui.painter_at(rect);
    painter.image(
        texture.id(),
        rect,
        Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    paint_map(&painter, rect, size, &d.zones, &d.points);
    if let Some((_, corners)) = &d.drawing {
        let k = rect.width() / size[0].max(1) as f32;
        let pts: Vec<Pos2> = corners
            .iter()
            .map(|p| rect.min + egui::vec2(p[0] as f32 * k, p[1] as f32 * k))
            .collect();
        painter.add(egui::Shape::line(pts, Stroke::new(2.0, Color32::WHITE)));
    }
    if resp.clicked()
        && let Some(pos) = resp.interact_pointer_pos()
    {
        let k = size[0] as f64 / f64::from(rect.width());
        let p = [
            f64::from(pos.x - rect.left()) * k,
            f64::from(pos.y - rect.top()) * k,
        ];
        click_on_map(
            d,
            p,
            &product_lots,
            &depths,
            &techniques,
            &zones,
            &mut st.treatment.error,
        );
    }
    ui.label(format!(
        "{} zone(s), {} injection point(s){}",
        d.zones.len(),
        d.points.len(),
        if d.map_dirty { " — not saved" } else { "" }
    ));
    let mut save = false;
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!d.points.is_empty(), egui::Button::new("Undo last point"))
            .clicked()
        {
            d.points.pop();
            d.map_dirty = true;
        }
        if ui
            .add_enabled(
                !d.zones.is_empty() || !d.points.is_empty(),
                egui::Button::new("Clear map"),
            )
            .clicked()
        {
            d.zones.clear();
            d.points.clear();
            d.map_dirty = true;
        }
        save = ui
            .add_enabled(d.map_dirty, egui::Button::new("Save map"))
            .clicked();
    });
    if save {
        let input = MapInput {
            zones: d.zones.clone(),
            points: d.points.clone(),
            ..Default::default()
        };
        send(
            st,
            TreatmentCmd::SetMap {
                visit_id: visit.to_string(),
                capture_id: capture,
                input,
            },
        );
    }
}

/// A click on the picture at `p` (capture pixels): a corner of the zone being drawn, else an
/// injection point with the chosen product, depth and technique.
fn click_on_map(
    d: &mut crate::app::state::TreatmentDraft,
    p: [f64; 2],
    products: &[(String, String)],
    depths: &[String],
    techniques: &[String],
    zones: &[String],
    error: &mut Option<String>,
) {
    if let Some((_, corners)) = &mut d.drawing {
        corners.push(p);
        return;
    }
    let Some((product, lot)) = products.get(d.point_product) else {
        *error = Some("Record the product and lot first: each injection point names one.".into());
        return;
    };
    let inside = d
        .zones
        .iter()
        .find(|z| sameframe_core::analysis::geometry::inside_polygon(&z.polygon, p))
        .map(|z| z.zone.clone());
    d.points.push(InjectionPoint {
        x: p[0],
        y: p[1],
        zone: inside.filter(|z| zones.contains(z)),
        product: product.clone(),
        lot: lot.clone(),
        depth: depths.get(d.depth).cloned().unwrap_or_default(),
        technique: techniques.get(d.technique).cloned().unwrap_or_default(),
        volume_ml: d.volume.trim().replace(',', ".").parse().ok(),
        gauge: opt(&d.gauge),
    });
    d.map_dirty = true;
}

fn end_of_session(ui: &mut Ui, st: &mut State, visit: &str) {
    let Some(l) = &st.treatment.loaded else {
        return;
    };
    let defs = l.view.responses.clone();
    for (_, r) in &l.view.record.responses {
        for w in r.warnings() {
            ui.add(
                egui::Label::new(RichText::new(format!("WARNING: {w}")).strong().color(WARN))
                    .wrap(),
            );
        }
    }
    let levels: Vec<String> = Severity::ALL.iter().map(|s| s.to_string()).collect();
    let d = &mut st.treatment.draft;
    egui::Grid::new("responses").num_columns(2).show(ui, |ui| {
        for (i, def) in defs.iter().enumerate() {
            let Some(v) = d.severities.get_mut(i) else {
                continue;
            };
            combo(ui, &def.label, v, &levels);
            if def.warning && *v > 0 {
                ui.label(RichText::new("warning sign: see below").color(WARN));
            }
            ui.end_row();
        }
    });
    for (i, def) in defs.iter().enumerate() {
        if def.warning && d.severities.get(i).is_some_and(|v| *v > 0) {
            let text = def
                .warning_text
                .clone()
                .unwrap_or_else(|| format!("{} is a warning sign", def.label));
            ui.add(
                egui::Label::new(
                    RichText::new(format!("WARNING: {text}"))
                        .strong()
                        .color(WARN),
                )
                .wrap(),
            );
        }
    }
    labelled_text(ui, "Response note", &mut d.response_note);
    if ui.button("Record response").clicked() {
        let findings = defs
            .iter()
            .zip(&d.severities)
            .map(|(def, v)| FindingInput {
                response: def.key.clone(),
                severity: Severity::ALL[(*v).min(3)],
                capture: None,
            })
            .collect();
        let note = opt(&d.response_note);
        send(
            st,
            TreatmentCmd::Response {
                visit_id: visit.to_string(),
                findings,
                note,
            },
        );
    }
    ui.separator();
    let d = &mut st.treatment.draft;
    ui.add(egui::Slider::new(&mut d.pain, 0..=10).text("Pain (0–10)"));
    ui.horizontal(|ui| {
        ui.radio_value(&mut d.pain_at_end, false, "During the session");
        ui.radio_value(&mut d.pain_at_end, true, "At the end of the session");
    });
    labelled_text(ui, "Pain comment", &mut d.pain_comment);
    if ui.button("Record pain").clicked() {
        let cmd = TreatmentCmd::Pain {
            visit_id: visit.to_string(),
            score: i64::from(d.pain),
            when: if d.pain_at_end {
                PainWhen::End
            } else {
                PainWhen::During
            },
            comment: opt(&d.pain_comment),
        };
        d.pain_comment.clear();
        send(st, cmd);
    }
    if let Some(l) = &st.treatment.loaded {
        for (_, p) in &l.view.record.pain {
            ui.label(format!("pain {}/10 {}", p.score, p.when));
        }
    }
}

fn outcome(ui: &mut Ui, st: &mut State, visit: &str) {
    let Some(l) = &st.treatment.loaded else {
        return;
    };
    ui.add(egui::Label::new(RichText::new(&l.view.success).italics()).wrap());
    for (_, o) in &l.view.record.outcomes {
        ui.label(format!(
            "recorded: GAIS patient {} · clinician {}",
            o.patient_gais.map_or("—".into(), |g| g.to_string()),
            o.clinician_gais.map_or("—".into(), |g| g.to_string())
        ));
    }
    let grades: Vec<String> = std::iter::once("—".to_string())
        .chain(
            GAIS.iter()
                .enumerate()
                .map(|(i, g)| format!("{} {g}", i + 1)),
        )
        .collect();
    let d = &mut st.treatment.draft;
    combo(ui, "Patient GAIS", &mut d.patient_gais, &grades);
    combo(ui, "Clinician GAIS", &mut d.clinician_gais, &grades);
    let mut given = d.satisfaction.is_some();
    ui.horizontal(|ui| {
        ui.checkbox(&mut given, "Satisfaction given");
        let mut v = d.satisfaction.unwrap_or(5);
        if given {
            ui.add(egui::Slider::new(&mut v, 0..=10).text("Satisfaction (0–10)"));
        }
        d.satisfaction = given.then_some(v);
    });
    labelled_text(ui, "Outcome notes", &mut d.outcome_text);
    let ready = d.patient_gais > 0 || d.clinician_gais > 0;
    if ui
        .add_enabled(ready, egui::Button::new("Record outcome"))
        .on_disabled_hover_text("give the patient's or the clinician's GAIS")
        .clicked()
    {
        let g = |v: usize| (v > 0).then_some(v as u8);
        let cmd = TreatmentCmd::Outcome {
            visit_id: visit.to_string(),
            patient_gais: g(d.patient_gais),
            clinician_gais: g(d.clinician_gais),
            satisfaction: d.satisfaction.map(i64::from),
            text: opt(&d.outcome_text),
        };
        send(st, cmd);
    }
}
