//! The session bar: who, which visit, which view, and (when the meters panel is hidden) the
//! Capture button — always on screen, whichever side panels are shown; and today's open
//! session to resume after a restart.

use egui::{Color32, RichText, Ui};

use crate::app::state::{State, UiCommand};

pub fn show(ui: &mut Ui, st: &mut State) {
    if let Some(offer) = st.resume.clone()
        && st.patient.is_none()
    {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Today's open visit:").strong());
            ui.label(&offer.label);
            if ui.button("Resume").clicked() {
                st.cmds.push(UiCommand::Resume(offer));
            }
            if ui.small_button("Not now").clicked() {
                st.resume = None;
            }
        });
    }
    let Some(reference) = st.patient.as_ref().map(|p| p.patient.reference.clone()) else {
        return;
    };
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Patient").weak());
        ui.label(RichText::new(reference).strong().size(17.0));
        ui.separator();
        match st.visit() {
            Some(v) => {
                ui.label(RichText::new("Visit").weak());
                ui.label(RichText::new(format!("{} · {}", v.date, v.area.label())).strong());
            }
            None => {
                ui.colored_label(Color32::from_rgb(235, 170, 30), "no visit chosen");
            }
        }
        ui.separator();
        if let (Some(s), Some(proto)) = (st.step_status(), st.protocol_def()) {
            ui.label(RichText::new("View").weak());
            ui.label(
                RichText::new(format!(
                    "{}/{} {}",
                    st.step + 1,
                    proto.steps.len(),
                    s.view.label()
                ))
                .strong(),
            );
            if st.series_complete() {
                ui.colored_label(Color32::from_rgb(40, 170, 80), "series complete");
            }
        }
        if !st.prefs.show_meters_panel {
            ui.separator();
            let allowed = st.gate.refusal.is_none() && st.gate.ready && !st.capture_pending;
            let why = st
                .gate
                .refusal
                .clone()
                .unwrap_or_else(|| "the frame is out of tolerance".into());
            if ui
                .add_enabled(
                    allowed,
                    egui::Button::new(RichText::new("Capture").size(18.0).strong())
                        .min_size(egui::vec2(140.0, 40.0)),
                )
                .on_disabled_hover_text(why)
                .clicked()
            {
                st.cmds.push(UiCommand::Capture {
                    override_reason: None,
                    auto: false,
                });
            }
        }
    });
}
