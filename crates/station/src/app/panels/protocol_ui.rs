//! Choose the view protocol and walk its steps; each step shows its baseline and whether it was
//! captured at this visit.

use egui::{Color32, RichText, Ui};

use super::widgets::heading;
use crate::app::state::{State, UiCommand};

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
    egui::ComboBox::from_label("Protocol")
        .selected_text(current)
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
        ui.colored_label(
            Color32::from_rgb(235, 170, 30),
            format!(
                "this visit treats the {}, the protocol photographs the {}",
                v.area, status.area
            ),
        );
    }
    for (i, s) in status.steps.iter().enumerate() {
        let done = !s.captured.is_empty();
        let base = if s.baseline_id.is_some() {
            "follow-up"
        } else {
            "baseline"
        };
        let label = format!(
            "{}. {} ({base}){}",
            i + 1,
            s.view,
            if done { " — captured" } else { "" }
        );
        if ui.selectable_label(i == st.step, label).clicked() {
            st.cmds.push(UiCommand::GoToStep(i));
        }
    }
    if let Some(s) = status.steps.get(st.step) {
        ui.label(RichText::new(&s.instructions).italics());
    }
    ui.horizontal(|ui| {
        if ui.button("« Previous view").clicked() {
            st.cmds.push(UiCommand::PrevStep);
        }
        if ui.button("Next view »").clicked() {
            st.cmds.push(UiCommand::NextStep);
        }
    });
    if status.next_step.is_none() && st.visit_id.is_some() {
        ui.colored_label(
            Color32::from_rgb(40, 180, 80),
            "All views of this protocol are captured.",
        );
    }
}
