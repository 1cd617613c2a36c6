//! Choose or start the visit (area, product, lot).

use egui::{RichText, Ui};

use super::widgets::{date_field, field_error, heading, labelled_text};
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
            v.area.label(),
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
    if st.visit_id.is_some()
        && ui
            .button("Treatment record…")
            .on_hover_text("products and lots, area map, skin response, pain, outcome")
            .clicked()
    {
        st.cmds.push(UiCommand::OpenTreatment);
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
            let mut edited = date_field(ui, "Visit date", &mut f.date, false);
            egui::ComboBox::from_label("Treatment area")
                .selected_text(f.area.label())
                .show_ui(ui, |ui| {
                    for a in Area::ALL {
                        edited |= ui.selectable_value(&mut f.area, *a, a.label()).changed();
                    }
                });
            edited |= labelled_text(ui, "Product", &mut f.product).changed();
            edited |= labelled_text(ui, "Lot", &mut f.lot).changed();
            edited |= date_field(ui, "Lot expiry", &mut f.lot_expiry, true);
            edited |= labelled_text(ui, "Technique", &mut f.technique).changed();
            edited |= labelled_text(ui, "Clinician", &mut f.clinician).changed();
            if edited {
                st.forms.errors.visit = None;
            }
            let f = &mut st.forms.visit;
            let opt = |s: &String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
            let future = sameframe_core::timefmt::parse_date(&f.date)
                .is_some_and(|d| d > sameframe_core::timefmt::today());
            let why_not = if sameframe_core::timefmt::parse_date(&f.date).is_none() {
                "give the visit date (YYYY-MM-DD, or pick it)"
            } else if future {
                "the visit date is in the future"
            } else {
                ""
            };
            let start = ui
                .add_enabled(why_not.is_empty(), egui::Button::new("Start visit"))
                .on_disabled_hover_text(why_not);
            if !why_not.is_empty() {
                ui.label(RichText::new(why_not).weak());
            }
            if start.clicked() {
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
                let mismatch = st
                    .protocol_def()
                    .is_some_and(|p| p.area != st.forms.visit.area);
                if (st.protocol.is_none() || mismatch) && key.is_some() {
                    st.cmds.push(UiCommand::SelectProtocol(key));
                }
            }
            field_error(ui, &st.forms.errors.visit);
        });
}
