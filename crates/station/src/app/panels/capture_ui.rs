//! The traffic light, the capture button, the override dialog (a reason is required and
//! recorded), auto-capture and the last capture.

use egui::{Color32, RichText, Ui};

use super::widgets::{heading, light_colour};
use crate::app::state::{State, UiCommand};
use sameframe_core::analysis::readiness::Light;

pub fn show(ui: &mut Ui, st: &mut State) {
    let light = st.readiness.as_ref().map(|r| r.light).unwrap_or(Light::Red);
    let title = match (&st.gate.refusal, light) {
        (Some(_), _) => "Not ready",
        (None, Light::Green) => "Ready to capture",
        (None, Light::Amber) => "Almost there",
        (None, Light::Red) => "Not comparable",
    };
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(26.0, 26.0), egui::Sense::hover());
        ui.painter()
            .circle_filled(rect.center(), 12.0, light_colour(light));
        ui.label(RichText::new(title).strong().size(18.0));
    });
    if let Some(s) = st.step_status() {
        let n = st.protocol_def().map(|p| p.steps.len()).unwrap_or(0);
        ui.label(format!(
            "View {}/{}: {} — {}",
            st.step + 1,
            n,
            s.view,
            if s.baseline_id.is_some() {
                "follow-up against the baseline"
            } else {
                "will become the baseline"
            }
        ));
    }
    if let Some(why) = &st.gate.refusal {
        ui.colored_label(Color32::from_rgb(215, 55, 50), why);
    } else {
        for r in st.gate.reasons.iter().take(4) {
            ui.label(RichText::new(format!("• {r}")).color(Color32::from_rgb(235, 170, 30)));
        }
    }
    let allowed = st.gate.refusal.is_none();
    ui.horizontal(|ui| {
        let capture = egui::Button::new(RichText::new("Capture").size(18.0).strong())
            .min_size(egui::vec2(120.0, 36.0));
        if ui
            .add_enabled(allowed && st.gate.ready, capture)
            .on_hover_text("Space")
            .clicked()
        {
            st.cmds.push(UiCommand::Capture {
                override_reason: None,
                auto: false,
            });
        }
        if ui
            .add_enabled(
                allowed && !st.gate.ready,
                egui::Button::new("Capture with override…"),
            )
            .clicked()
        {
            st.forms.override_open = true;
        }
    });
    ui.horizontal(|ui| {
        ui.checkbox(&mut st.prefs.auto_capture, "Auto-capture");
        ui.add(
            egui::DragValue::new(&mut st.prefs.auto_frames)
                .range(1..=60)
                .suffix(" stable frames"),
        );
        if st.prefs.auto_capture {
            ui.label(format!("{}/{}", st.auto_count.0, st.auto_count.1));
        }
    });
    ui.checkbox(
        &mut st.prefs.advance_after_capture,
        "Next view after capture",
    );
    if st.capture_pending {
        ui.label("storing…");
    }
    if let Some(c) = &st.last_capture {
        heading(ui, "Last capture");
        ui.label(format!("{} · {} · {}", c.id, c.view, c.role));
        ui.label(
            RichText::new(format!("sha256 {}…", &c.sha256[..16]))
                .small()
                .monospace(),
        );
    }
    ui.separator();
}

/// The override dialog: capture out of tolerance only with a reason, which is recorded.
pub fn override_dialog(ctx: &egui::Context, st: &mut State) {
    if !st.forms.override_open {
        return;
    }
    let modal = egui::Modal::new(egui::Id::unique("override_dialog")).show(ctx, |ui| {
        ui.set_width(420.0);
        ui.heading("Capture out of tolerance");
        ui.label("This frame is not within the comparability tolerances:");
        for r in &st.gate.reasons {
            ui.label(format!("• {r}"));
        }
        ui.label("The reason is stored with the capture and shown to reviewers.");
        let l = ui.label("Override reason");
        ui.add(
            egui::TextEdit::multiline(&mut st.forms.override_reason)
                .desired_rows(2)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(l.id);
        let ok = st.forms.override_reason.trim().chars().count() >= 3 && st.gate.refusal.is_none();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(ok, egui::Button::new("Capture anyway"))
                .clicked()
            {
                st.cmds.push(UiCommand::Capture {
                    override_reason: Some(st.forms.override_reason.clone()),
                    auto: false,
                });
                st.forms.override_open = false;
            }
            if ui.button("Cancel").clicked() {
                st.forms.override_open = false;
            }
        });
        if !ok {
            ui.label(RichText::new("a reason of at least 3 characters is required").weak());
        }
    });
    if modal.should_close() {
        st.forms.override_open = false;
    }
}
