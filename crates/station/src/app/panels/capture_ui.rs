//! The traffic light, the capture buttons (in fixed places: hint lines come and go below
//! them), the override dialog (a reason is required and recorded, with what was out of
//! tolerance when it opened), auto-capture and the confirmation of the last capture.

use egui::{Color32, RichText, Ui};

use super::widgets::{heading, light_colour};
use crate::app::state::{State, UiCommand};
use sameframe_core::analysis::readiness::Light;

/// Hint lines shown under the buttons: always this many rows, so nothing below moves.
const HINT_ROWS: usize = 3;

/// The light and its title: grey and "Not ready" when the session itself refuses.
fn light_and_title(st: &State) -> (Color32, &'static str) {
    if st.gate.refusal.is_some() {
        return (Color32::from_gray(120), "Not ready");
    }
    if st.gate.ready {
        return (light_colour(Light::Green), "Ready to capture");
    }
    let light = st.readiness.as_ref().map(|r| r.light).unwrap_or(Light::Red);
    match light {
        Light::Red => (light_colour(Light::Red), "Not comparable"),
        _ => (light_colour(Light::Amber), "Almost there"),
    }
}

pub fn show(ui: &mut Ui, st: &mut State) {
    let (colour, title) = light_and_title(st);
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(26.0, 26.0), egui::Sense::hover());
        ui.painter().circle_filled(rect.center(), 12.0, colour);
        ui.label(RichText::new(title).strong().size(18.0));
    });
    // One row, always: the buttons below never move.
    let view = match st.step_status() {
        Some(s) => format!(
            "View {}/{}: {} — {}",
            st.step + 1,
            st.protocol_def().map(|p| p.steps.len()).unwrap_or(0),
            s.view.label(),
            if s.baseline_id.is_some() {
                "follow-up against the baseline"
            } else {
                "will become the baseline"
            }
        ),
        None => "No view chosen yet".into(),
    };
    ui.add(egui::Label::new(RichText::new(view).strong()).truncate());
    buttons(ui, st);
    hints(ui, st);
    auto_capture(ui, st);
    saved(ui, st);
    ui.separator();
}

/// Capture and Capture with override, always in the same place.
fn buttons(ui: &mut Ui, st: &mut State) {
    let allowed = st.gate.refusal.is_none();
    let why_not = st
        .gate
        .refusal
        .clone()
        .unwrap_or_else(|| "the frame is out of tolerance: see the lines below".into());
    ui.horizontal(|ui| {
        let capture = egui::Button::new(RichText::new("Capture").size(20.0).strong())
            .min_size(egui::vec2(150.0, 48.0));
        let r = ui
            .add_enabled(allowed && st.gate.ready && !st.capture_pending, capture)
            .on_hover_text("Space")
            .on_disabled_hover_text(&why_not);
        if r.clicked() {
            st.cmds.push(UiCommand::Capture {
                override_reason: None,
                auto: false,
            });
        }
        // Enabled whenever capture is possible at all: the clinician's click is never lost to
        // readiness changing under the pointer.
        let r = ui
            .add_enabled(
                allowed && !st.capture_pending,
                egui::Button::new("Capture with override…").min_size(egui::vec2(0.0, 48.0)),
            )
            .on_disabled_hover_text(
                st.gate
                    .refusal
                    .clone()
                    .unwrap_or_else(|| "storing the last capture…".into()),
            );
        if r.clicked() {
            st.forms.override_reasons = st.gate.reasons.clone();
            st.forms.override_open = true;
        }
    });
}

/// Why not ready, in a fixed number of rows.
fn hints(ui: &mut Ui, st: &State) {
    let mut lines: Vec<(String, Color32)> = Vec::new();
    if let Some(e) = &st.forms.errors.capture {
        lines.push((e.clone(), Color32::from_rgb(215, 55, 50)));
    }
    if let Some(why) = &st.gate.refusal {
        lines.push((why.clone(), Color32::from_rgb(215, 55, 50)));
    } else if !st.gate.ready {
        for r in &st.gate.reasons {
            lines.push((format!("• {r}"), Color32::from_rgb(235, 170, 30)));
        }
    }
    let row = ui.text_style_height(&egui::TextStyle::Body) + ui.spacing().item_spacing.y;
    ui.allocate_ui(
        egui::vec2(ui.available_width(), row * HINT_ROWS as f32 * 1.6),
        |ui| {
            ui.set_min_height(row * HINT_ROWS as f32 * 1.6);
            ui.vertical(|ui| {
                for (text, colour) in lines.iter().take(HINT_ROWS) {
                    ui.add(egui::Label::new(RichText::new(text).color(*colour)).wrap());
                }
            });
        },
    );
}

fn auto_capture(ui: &mut Ui, st: &mut State) {
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
}

/// What was stored: a thumbnail, the view, the score kept with it, "saved".
fn saved(ui: &mut Ui, st: &State) {
    if st.capture_pending {
        ui.label(RichText::new("storing…").strong());
        return;
    }
    let Some(c) = &st.last_capture else { return };
    heading(ui, "Last capture");
    ui.horizontal(|ui| {
        if let Some(t) = &c.thumbnail {
            let size = t.size_vec2();
            let k = 96.0 / size.y.max(1.0);
            ui.image((t.id(), size * k));
        }
        ui.vertical(|ui| {
            ui.label(
                RichText::new(format!("Saved: {}", c.capture.view.label()))
                    .strong()
                    .color(Color32::from_rgb(40, 170, 80)),
            );
            ui.label(c.capture.role.label());
            if let Some(copy) = &c.capture.copy_of {
                ui.add(
                    egui::Label::new(
                        RichText::new(format!(
                            "NOT A NEW PHOTO: the pixels of {}, rotated {:.1}° and scaled {:.2}",
                            copy.capture_id, copy.rotation_deg, copy.scale
                        ))
                        .strong()
                        .color(Color32::from_rgb(215, 55, 50)),
                    )
                    .wrap(),
                );
            }
            if let Some(score) = c.score {
                ui.label(format!("pose score {score:.0}/100 (as stored)"));
            }
            if let Some(r) = c
                .capture
                .analysis
                .as_ref()
                .and_then(|a| a.override_reason())
            {
                ui.label(format!("override: {r}"));
            }
            ui.label(RichText::new(&c.capture.id).small().monospace())
                .on_hover_text(format!("sha256 {}", c.capture.sha256));
        });
    });
}

/// The override dialog: capture out of tolerance only with a reason, which is recorded with
/// what was out of tolerance when the dialog opened.
pub fn override_dialog(ctx: &egui::Context, st: &mut State) {
    if !st.forms.override_open {
        return;
    }
    let modal = egui::Modal::new(egui::Id::unique("override_dialog")).show(ctx, |ui| {
        ui.set_width(440.0);
        ui.heading("Capture out of tolerance");
        if st.forms.override_reasons.is_empty() {
            ui.label("The frame was within tolerance when this opened; the reason is kept anyway.");
        } else {
            ui.label("When you opened this, the frame was not within tolerance:");
            for r in &st.forms.override_reasons {
                ui.label(format!("• {r}"));
            }
        }
        ui.label("The reason is stored with the capture and shown to reviewers.");
        let l = ui.label("Override reason");
        ui.add(
            egui::TextEdit::multiline(&mut st.forms.override_reason)
                .desired_rows(2)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(l.id);
        let long_enough = st.forms.override_reason.trim().chars().count() >= 3;
        let ok = long_enough && st.gate.refusal.is_none();
        ui.horizontal(|ui| {
            let r = ui
                .add_enabled(ok, egui::Button::new("Capture anyway"))
                .on_disabled_hover_text(if long_enough {
                    st.gate.refusal.clone().unwrap_or_default()
                } else {
                    "write a reason of at least 3 characters".into()
                });
            if r.clicked() {
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
        if !long_enough {
            ui.label(RichText::new("a reason of at least 3 characters is required").weak());
        }
    });
    if modal.should_close() {
        st.forms.override_open = false;
    }
}
