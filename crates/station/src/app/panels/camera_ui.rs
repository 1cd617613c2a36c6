//! The camera window: choose the camera, resolution and rate (or the replay camera), and lock
//! exposure, white balance and focus where the camera exposes them.

use egui::{Color32, RichText};

use crate::app::state::{State, UiCommand};
use crate::camera::{ControlKind, SourceSpec};

const RESOLUTIONS: [[u32; 2]; 4] = [[1280, 720], [1920, 1080], [2560, 1440], [3840, 2160]];
const RATES: [u32; 4] = [15, 24, 30, 60];

pub fn window(ctx: &egui::Context, st: &mut State) {
    let mut open = st.camera.window_open;
    egui::Window::new("Camera")
        .open(&mut open)
        .default_width(380.0)
        .show(ctx, |ui| {
            ui.label(format!("Now: {}", st.camera.spec.describe()));
            if let Some(s) = &st.camera.settings {
                ui.label(RichText::new(&s.info.detail).small());
            }
            if let Some(b) = &st.camera.banner {
                ui.colored_label(Color32::from_rgb(235, 170, 30), b);
            }
            ui.separator();
            ui.label(RichText::new("Cameras").strong());
            if st.camera.cameras.is_empty() {
                ui.label("No camera found on this machine.");
            }
            let mut switch = None;
            let [mut w, mut h] = st.prefs.resolution;
            let mut fps = st.prefs.camera_fps;
            egui::ComboBox::from_label("Resolution")
                .selected_text(format!("{w}×{h}"))
                .show_ui(ui, |ui| {
                    for r in RESOLUTIONS {
                        if ui
                            .selectable_label([w, h] == r, format!("{}×{}", r[0], r[1]))
                            .clicked()
                        {
                            [w, h] = r;
                        }
                    }
                });
            egui::ComboBox::from_label("Frame rate")
                .selected_text(format!("{fps} fps"))
                .show_ui(ui, |ui| {
                    for r in RATES {
                        ui.selectable_value(&mut fps, r, format!("{r} fps"));
                    }
                });
            st.prefs.resolution = [w, h];
            st.prefs.camera_fps = fps;
            for c in &st.camera.cameras {
                ui.horizontal(|ui| {
                    ui.label(format!("{}: {}", c.index, c.name));
                    if ui.button("Use").clicked() {
                        switch = Some(SourceSpec::Camera {
                            index: c.index,
                            width: w,
                            height: h,
                            fps,
                        });
                    }
                });
            }
            ui.separator();
            ui.label(RichText::new("Replay camera").strong());
            ui.add(egui::Slider::new(&mut st.prefs.replay_fps, 1.0..=60.0).text("Replay fps"));
            if ui.button("Use the built-in demo sequence").clicked() {
                switch = Some(SourceSpec::Demo {
                    fps: st.prefs.replay_fps,
                });
            }
            if let SourceSpec::Replay { dir, .. } = &st.camera.spec
                && ui
                    .button("Restart the replay folder at this rate")
                    .clicked()
            {
                switch = Some(SourceSpec::Replay {
                    dir: dir.clone(),
                    fps: st.prefs.replay_fps,
                });
            }
            ui.separator();
            ui.label(RichText::new("Controls").strong());
            let controls = st
                .camera
                .settings
                .as_ref()
                .map(|s| s.controls.clone())
                .unwrap_or_default();
            for kind in ControlKind::ALL {
                let c = controls.iter().find(|c| c.kind == kind);
                let available = c.is_some_and(|c| c.available);
                let mut locked = c.is_some_and(|c| c.locked);
                ui.horizontal(|ui| {
                    let r = ui.add_enabled(
                        available,
                        egui::Checkbox::new(&mut locked, format!("Lock {}", kind.label())),
                    );
                    if r.changed() {
                        st.cmds.push(UiCommand::SetLock(kind, locked));
                    }
                    let note = match c {
                        Some(c) if c.available => c.value.clone().unwrap_or_default(),
                        Some(c) => c.note.clone().unwrap_or_else(|| "not exposed".into()),
                        None => "not exposed".into(),
                    };
                    ui.label(RichText::new(note).small());
                });
            }
            if let Some(spec) = switch {
                st.cmds.push(UiCommand::SwitchCamera(spec));
            }
        });
    st.camera.window_open = open;
}
