//! Choose or create the patient, by the clinic's reference.

use egui::{RichText, Ui};

use super::widgets::{field_error, heading, labelled_text};
use crate::app::commands::CoreCommand;
use crate::app::state::{State, StoreState, UiCommand};

pub fn show(ui: &mut Ui, st: &mut State) {
    heading(ui, "Patient");
    if !matches!(st.store, StoreState::Open(_)) {
        ui.label("Open the store first.");
        return;
    }
    if let Some(p) = &st.patient {
        ui.label(
            RichText::new(format!(
                "{}{}",
                p.patient.reference,
                p.patient
                    .display_name
                    .as_ref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default()
            ))
            .strong(),
        );
        ui.label(
            RichText::new(format!(
                "{} · {} capture(s)",
                p.patient.id,
                p.captures.len()
            ))
            .small(),
        );
    }
    let before = st.forms.patient_query.clone();
    labelled_text(ui, "Find patient", &mut st.forms.patient_query);
    if st.forms.patient_query != before {
        st.cmds.push(UiCommand::Core(CoreCommand::SearchPatients(
            st.forms.patient_query.clone(),
        )));
    }
    // A short list, not a nested scroll area (the panel scrolls; a list inside it would hide
    // its items from the panel's scrolling): the search narrows it.
    const SHOWN: usize = 6;
    let current = st.patient.as_ref().map(|p| p.patient.id.clone());
    for p in st.patients.iter().take(SHOWN) {
        let selected = current.as_deref() == Some(p.id.as_str());
        let label = match &p.display_name {
            Some(n) => format!("{} — {n}", p.reference),
            None => p.reference.clone(),
        };
        if ui.selectable_label(selected, label).clicked() && !selected {
            st.cmds.push(UiCommand::SelectPatient(p.reference.clone()));
        }
    }
    if st.patients.len() > SHOWN {
        ui.label(
            RichText::new(format!(
                "{} more: type more of the reference",
                st.patients.len() - SHOWN
            ))
            .weak(),
        );
    }
    if st.patients.is_empty() {
        ui.label(RichText::new("no patients match").weak());
    }
    egui::CollapsingHeader::new("New patient")
        // A separate open state once a patient is chosen: the form folds away.
        .id_salt(("new_patient", st.patient.is_some()))
        .default_open(st.patient.is_none())
        .show(ui, |ui| {
            let mut edited =
                labelled_text(ui, "Patient reference", &mut st.forms.new_ref).changed();
            edited |=
                labelled_text(ui, "Display name (optional)", &mut st.forms.new_name).changed();
            if edited {
                st.forms.errors.patient = None;
            }
            let ok = !st.forms.new_ref.trim().is_empty();
            if ui
                .add_enabled(ok, egui::Button::new("Create patient"))
                .on_disabled_hover_text("type the clinic's reference for the patient first")
                .clicked()
            {
                st.cmds.push(UiCommand::Core(CoreCommand::AddPatient {
                    reference: st.forms.new_ref.trim().to_string(),
                    display_name: Some(st.forms.new_name.trim().to_string())
                        .filter(|n| !n.is_empty()),
                }));
                st.forms.new_ref.clear();
                st.forms.new_name.clear();
            }
            field_error(ui, &st.forms.errors.patient);
        });
}
