//! Choose or start the visit (area, product, lot).

use egui::{RichText, Ui};

use super::widgets::{heading, labelled_text};
use crate::app::commands::{CoreCommand, Focus, VisitForm};
use crate::app::state::{State, UiCommand};
use sameframe_core::records::Area;

pub fn show(ui: &mut Ui, st: &mut State) {
    let Some(p) = &st.patient else { return };
    heading(ui, "Visit");
    let today = sameframe_core::timefmt::fmt_date(sameframe_core::timefmt::today());
    let mut pick = None;
    for v in p.visits.iter().rev().take(6) {
        let selected = st.visit_id.as_deref() == Some(v.id.as_str());
        let label = format!(
            "{} · {}{}{}",
            v.date,
            v.area,
            v.product
                .as_ref()
                .map(|p| format!(" · {p}"))
                .unwrap_or_default(),
            v.lot
                .as_ref()
                .map(|l| format!(" lot {l}"))
                .unwrap_or_default()
        );
        let text = if v.date == today {
            RichText::new(label).strong()
        } else {
            RichText::new(label)
        };
        if ui.selectable_label(selected, text).clicked() && !selected {
            pick = Some(v.id.clone());
        }
    }
    if let Some(v) = pick {
        st.cmds.push(UiCommand::SelectVisit(Some(v)));
    }
    let focus = Focus {
        patient_ref: p.patient.reference.clone(),
        protocol: st.protocol.clone(),
        visit_id: None,
    };
    egui::CollapsingHeader::new("Start a visit")
        .id_salt(("new_visit", st.visit_id.is_some()))
        .default_open(st.visit_id.is_none())
        .show(ui, |ui| {
            let f = &mut st.forms.visit;
            labelled_text(ui, "Visit date", &mut f.date);
            egui::ComboBox::from_label("Treatment area")
                .selected_text(f.area.to_string())
                .show_ui(ui, |ui| {
                    for a in Area::ALL {
                        ui.selectable_value(&mut f.area, *a, a.to_string());
                    }
                });
            labelled_text(ui, "Product", &mut f.product);
            labelled_text(ui, "Lot", &mut f.lot);
            labelled_text(ui, "Lot expiry", &mut f.lot_expiry);
            labelled_text(ui, "Technique", &mut f.technique);
            labelled_text(ui, "Clinician", &mut f.clinician);
            let opt = |s: &String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
            if ui.button("Start visit").clicked() {
                st.cmds.push(UiCommand::Core(CoreCommand::AddVisit {
                    focus: focus.clone(),
                    form: VisitForm {
                        date: f.date.trim().to_string(),
                        area: f.area,
                        product: opt(&f.product),
                        lot: opt(&f.lot),
                        lot_expiry: opt(&f.lot_expiry),
                        technique: opt(&f.technique),
                        clinician: opt(&f.clinician),
                    },
                }));
                // The protocol for the area follows the visit.
                let key = st
                    .protocols
                    .iter()
                    .find(|p| p.area == f.area)
                    .map(|p| p.key.clone());
                if st.protocol.is_none() && key.is_some() {
                    st.cmds.push(UiCommand::SelectProtocol(key));
                }
            }
        });
}
