//! The confounder checklist for the visit: fillable before the sequence (stored with each
//! capture) or after (saved onto the visit's captures).

use egui::{Color32, RichText, Ui};

use super::widgets::heading;
use crate::app::state::{State, UiCommand};

pub fn show(ui: &mut Ui, st: &mut State) {
    if st.patient.is_none() || st.confounder_defs.is_empty() {
        return;
    }
    heading(ui, "Confounders");
    let n = st.visit_captures().len();
    ui.label(
        RichText::new(format!(
            "Applies to every capture of this visit ({n} so far). Time of day is recorded automatically."
        ))
        .small(),
    );
    let defs = st.confounder_defs.clone();
    let mut changed = false;
    for d in &defs {
        let entry = st
            .draft
            .items
            .entry(d.key.clone())
            .or_insert((false, String::new()));
        changed |= ui.checkbox(&mut entry.0, &d.label).changed();
        if entry.0 {
            ui.horizontal(|ui| {
                ui.add_space(24.0);
                let l = ui.label("details");
                changed |= ui
                    .add(egui::TextEdit::singleline(&mut entry.1).desired_width(f32::INFINITY))
                    .labelled_by(l.id)
                    .changed();
            });
        }
    }
    ui.horizontal(|ui| {
        let l = ui.label("Note");
        changed |= ui
            .add(egui::TextEdit::singleline(&mut st.draft.note).desired_width(f32::INFINITY))
            .labelled_by(l.id)
            .changed();
    });
    if changed {
        st.draft.dirty = true;
    }
    ui.horizontal(|ui| {
        let label = if n == 0 {
            "Save confounders".to_string()
        } else {
            format!("Save confounders to {n} capture(s)")
        };
        if ui
            .add_enabled(st.draft.dirty, egui::Button::new(label))
            .on_hover_text("Make the checklist of this visit's captures exactly this")
            .clicked()
        {
            st.cmds.push(UiCommand::SaveConfounders);
        }
        if st.draft.dirty && n > 0 {
            ui.colored_label(Color32::from_rgb(235, 170, 30), "unsaved");
        }
    });
}
