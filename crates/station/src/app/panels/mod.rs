//! The station's panels, one per file (`*_ui`). Each reads [`State`] and pushes
//! [`super::state::UiCommand`]s; none touches the store or the camera.

pub mod camera_ui;
pub mod capture_ui;
pub mod compare_ui;
pub mod confounders_ui;
pub mod consent_ui;
pub mod dialogs_ui;
pub mod live_ui;
pub mod meters_ui;
pub mod notices_ui;
pub mod patient_ui;
pub mod protocol_ui;
pub mod publish_ui;
pub mod session_bar_ui;
pub mod store_ui;
pub mod top_bar_ui;
pub mod treatment_ui;
pub mod visit_ui;
pub mod widgets;

use super::state::State;

/// A panel frame without a fill: the window is cleared to the panel colour once per frame (see
/// `StationApp::clear_color`), so painting each panel's background again would only double the
/// pixels a software renderer has to shade at 1080p.
fn unfilled(frame: egui::Frame) -> egui::Frame {
    frame.fill(egui::Color32::TRANSPARENT)
}

/// Lay out the whole station for one frame.
pub fn show(ui: &mut egui::Ui, st: &mut State) {
    let side = unfilled(egui::Frame::side_top_panel(ui.style()));
    egui::Panel::top("top_bar")
        .frame(side)
        .show(ui, |ui| top_bar_ui::show(ui, st));
    egui::Panel::top("session_bar")
        .frame(side)
        .show(ui, |ui| session_bar_ui::show(ui, st));
    egui::Panel::bottom("notices")
        .frame(side)
        .show(ui, |ui| notices_ui::show(ui, st));
    if st.prefs.show_session_panel {
        egui::Panel::left("session")
            .frame(side)
            .resizable(true)
            .default_size(300.0)
            .size_range(240.0..=520.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("session_scroll")
                    .show(ui, |ui| {
                        patient_ui::show(ui, st);
                        consent_ui::show(ui, st);
                        visit_ui::show(ui, st);
                        protocol_ui::show(ui, st);
                        confounders_ui::show(ui, st);
                    });
            });
    }
    if st.prefs.show_meters_panel {
        egui::Panel::right("meters")
            .frame(side)
            .resizable(true)
            .default_size(310.0)
            .size_range(270.0..=420.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("meters_scroll")
                    .show(ui, |ui| {
                        capture_ui::show(ui, st);
                        meters_ui::show(ui, st);
                    });
            });
    }
    egui::CentralPanel::default()
        .frame(unfilled(egui::Frame::central_panel(ui.style())))
        .show(ui, |ui| live_ui::show(ui, st));
    let ctx = ui.ctx().clone();
    store_ui::show(&ctx, st);
    capture_ui::override_dialog(&ctx, st);
    dialogs_ui::discard(&ctx, st);
    dialogs_ui::key_backup(&ctx, st);
    camera_ui::window(&ctx, st);
    compare_ui::window(&ctx, st);
    treatment_ui::window(&ctx, st);
}
