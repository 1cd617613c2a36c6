//! Choose the view protocol and walk its steps; each step shows its baseline and whether it was
//! captured at this visit.

use egui::{Color32, RichText, Ui};

use super::widgets::heading;
use crate::app::state::{State, StepState, UiCommand};

pub fn show(ui: &mut Ui, st: &mut State) {
    if st.patient.is_none() {
        return;
    }
    heading(ui, "Protocol");
    let current = st
        .protocol_def()
        .map(|p| p.label.clone())
        .unwrap_or_else(|| "choose…".into());
    let mut chosen = None;
    // Room left for the label: at a narrow panel it would wrap one letter per line.
    egui::ComboBox::from_label("Choose protocol")
        .selected_text(current)
        .width((ui.available_width() - 120.0).clamp(110.0, 240.0))
        .show_ui(ui, |ui| {
            for p in &st.protocols {
                let on = st.protocol.as_deref() == Some(p.key.as_str());
                if ui.selectable_label(on, &p.label).clicked() && !on {
                    chosen = Some(p.key.clone());
                }
            }
        });
    if let Some(k) = chosen {
        st.cmds.push(UiCommand::SelectProtocol(Some(k)));
    }
    if st.visit_id.is_none() {
        ui.label(RichText::new("Choose or start a visit to capture.").weak());
    }
    let Some(status) = st.patient.as_ref().and_then(|p| p.protocol.clone()) else {
        return;
    };
    if let Some(v) = st.visit()
        && v.area != status.area
    {
        ui.add(
            egui::Label::new(
                RichText::new(format!(
                    "This visit treats the {}; this protocol photographs the {}: capture is refused. Choose a {} protocol.",
                    v.area.label().to_lowercase(),
                    status.area.label().to_lowercase(),
                    v.area.label().to_lowercase()
                ))
                .color(Color32::from_rgb(215, 55, 50)),
            )
            .wrap(),
        );
    }
    for (i, s) in status.steps.iter().enumerate() {
        let (mark, colour) = match st.step_state(i) {
            StepState::Captured => ("done", Color32::from_rgb(40, 170, 80)),
            StepState::Failed => ("FAILED", Color32::from_rgb(215, 55, 50)),
            StepState::Missing => ("to take", ui.visuals().weak_text_color()),
        };
        let role = if s.baseline_id.is_some() {
            "follow-up"
        } else {
            "baseline"
        };
        ui.horizontal(|ui| {
            strip_cell(
                ui,
                st.thumbs.get(s.captured.last().map_or("", String::as_str)),
                colour,
            );
            ui.label(RichText::new(mark).color(colour).strong());
            let label = format!("{}. {} ({role})", i + 1, s.view.label());
            let r = ui.selectable_label(i == st.step, label);
            let r = match st.step_failures.get(&i) {
                Some(why) => r.on_hover_text(format!("not captured: {why}")),
                None => r,
            };
            if r.clicked() {
                st.cmds.push(UiCommand::GoToStep(i));
            }
        });
    }
    if let Some(s) = status.steps.get(st.step) {
        ui.add(egui::Label::new(RichText::new(&s.instructions).italics()).wrap());
    }
    ui.horizontal(|ui| {
        if ui.button("« Previous view").clicked() {
            st.cmds.push(UiCommand::PrevStep);
        }
        if ui.button("Next view »").clicked() {
            st.cmds.push(UiCommand::NextStep);
        }
    });
    if st.visit_id.is_none() {
        return;
    }
    if st.series_complete() {
        ui.colored_label(
            Color32::from_rgb(40, 170, 80),
            "Series complete: every view is captured.",
        );
    } else {
        let missing: Vec<String> = (0..status.steps.len())
            .filter(|&i| st.step_state(i) != StepState::Captured)
            .map(|i| status.steps[i].view.label().to_string())
            .collect();
        ui.add(
            egui::Label::new(
                RichText::new(format!("Still to take: {}", missing.join(", ")))
                    .color(Color32::from_rgb(235, 170, 30)),
            )
            .wrap(),
        );
    }
}

/// One cell of the series strip: the stored view's preview, or an empty frame in the step's
/// colour (to take, or failed).
fn strip_cell(ui: &mut Ui, thumb: Option<&egui::TextureHandle>, colour: Color32) {
    const H: f32 = 36.0;
    match thumb {
        Some(t) => {
            let size = t.size_vec2();
            ui.image((t.id(), size * (H / size.y.max(1.0))));
        }
        None => {
            let (rect, _) =
                ui.allocate_exact_size(egui::vec2(H * 4.0 / 3.0, H), egui::Sense::hover());
            ui.painter().rect_stroke(
                rect,
                3.0,
                egui::Stroke::new(1.5, colour),
                egui::StrokeKind::Inside,
            );
        }
    }
}
