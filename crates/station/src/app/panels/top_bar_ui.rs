//! The top bar: store and camera status, the replay banner, windows.

use egui::{Color32, RichText, Ui};

use crate::app::state::{State, StoreState};
use crate::camera::CameraStatus;

pub fn show(ui: &mut Ui, st: &mut State) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("sameframe").strong().size(16.0));
        ui.separator();
        match &st.store {
            StoreState::Opening => {
                ui.label("opening the store…");
            }
            StoreState::Missing { .. } => {
                ui.colored_label(Color32::from_rgb(235, 170, 30), "no store yet");
            }
            StoreState::Locked { .. } => {
                ui.colored_label(Color32::from_rgb(235, 170, 30), "store locked");
            }
            StoreState::Open(info) => {
                let (label, hover) = match &info.shared {
                    Some(at) => (
                        "store: shared".to_string(),
                        format!(
                            "shared store: {at}\nthis station: {}\nencryption at rest: {}",
                            info.path.display(),
                            info.encryption
                        ),
                    ),
                    None => (
                        format!("store: {}", info.path.display()),
                        format!("encryption at rest: {}", info.encryption),
                    ),
                };
                ui.label(label).on_hover_text(hover);
            }
            StoreState::Failed(e) => {
                ui.colored_label(Color32::from_rgb(215, 55, 50), format!("store: {e}"));
            }
        }
        if matches!(st.store, StoreState::Failed(_) | StoreState::Opening)
            && st.started.elapsed().as_secs() > 2
            && ui.button("Retry opening the store").clicked()
        {
            st.store = StoreState::Opening;
            st.cmds.push(crate::app::state::UiCommand::Core(
                crate::app::commands::CoreCommand::Open,
            ));
        }
        ui.separator();
        let cam = match &st.camera.status {
            CameraStatus::Starting => "camera starting…".to_string(),
            CameraStatus::Running => st
                .camera
                .settings
                .as_ref()
                .map(|s| {
                    format!(
                        "{} {}×{} @ {:.0} fps",
                        s.info.name, s.info.width, s.info.height, s.info.fps
                    )
                })
                .unwrap_or_else(|| "camera running".into()),
            CameraStatus::Lost { message, since } => {
                format!(
                    "camera lost {:.0} s ago: {message}",
                    since.elapsed().as_secs_f64()
                )
            }
            CameraStatus::Stopped => "camera stopped".into(),
        };
        let lost = matches!(st.camera.status, CameraStatus::Lost { .. });
        ui.label(if lost {
            RichText::new(cam).color(Color32::from_rgb(215, 55, 50))
        } else {
            RichText::new(cam)
        });
        if st.camera.spec.is_replay() {
            let text = match &st.camera.banner {
                Some(b) => format!("REPLAY CAMERA — {b}"),
                None => "REPLAY CAMERA".into(),
            };
            egui::Frame::new()
                .fill(Color32::from_rgb(235, 170, 30))
                .inner_margin(egui::Margin::symmetric(6, 2))
                .corner_radius(3.0)
                .show(ui, |ui| {
                    ui.label(RichText::new(text).color(Color32::BLACK).strong());
                });
        }
        ui.separator();
        if ui.button("Camera…").clicked() {
            st.camera.window_open = !st.camera.window_open;
        }
        if ui
            .button("Compare…")
            .on_hover_text("opens on the pair just taken (or this view's latest follow-up)")
            .clicked()
        {
            if st.compare.open {
                st.compare.open = false;
            } else {
                st.cmds.push(crate::app::state::UiCommand::OpenCompare);
            }
        }
        ui.toggle_value(&mut st.prefs.show_session_panel, "Session panel");
        ui.toggle_value(&mut st.prefs.show_meters_panel, "Meters panel");
    });
}
