//! The patient's consents and scopes; record a new consent. Capture is refused without a
//! consent that allows clinical photos today, and the panel says why.

use egui::{Color32, RichText, Ui};

use super::widgets::{date_field, field_error, heading, labelled_text};
use crate::app::commands::{ConsentForm, CoreCommand, Focus};
use crate::app::state::{State, UiCommand};
use sameframe_core::records::Scope;

pub fn show(ui: &mut Ui, st: &mut State) {
    let Some(p) = &st.patient else { return };
    heading(ui, "Consent");
    if p.consents.is_empty() {
        ui.colored_label(
            Color32::from_rgb(215, 55, 50),
            "No consent on record: capture is refused until a consent with the clinical scope is recorded.",
        );
    }
    for c in &p.consents {
        let scopes: Vec<String> = c
            .consent
            .scopes
            .iter()
            .map(|s| {
                if s.status == "active" {
                    s.scope.to_string()
                } else {
                    format!("{} (withdrawn)", s.scope)
                }
            })
            .collect();
        ui.label(
            RichText::new(format!(
                "{} · signed {} by {}{}",
                c.consent.id,
                c.consent.signed_on,
                c.consent.signed_by,
                c.consent
                    .expires_on
                    .as_ref()
                    .map(|e| format!(" · until {e}"))
                    .unwrap_or_default()
            ))
            .small(),
        );
        ui.label(format!("scopes: {}", scopes.join(", ")));
        match &c.clinical {
            Ok(()) => {
                ui.colored_label(
                    Color32::from_rgb(40, 180, 80),
                    "allows clinical photos today",
                );
            }
            Err(why) => {
                ui.colored_label(Color32::from_rgb(215, 55, 50), format!("refused: {why}"));
            }
        }
        ui.separator();
    }
    let focus = Focus {
        patient_ref: p.patient.reference.clone(),
        protocol: st.protocol.clone(),
        visit_id: st.visit_id.clone(),
    };
    let open = st.capture_consent().is_none();
    egui::CollapsingHeader::new("Record a consent")
        .id_salt(("new_consent", open))
        .default_open(open)
        .show(ui, |ui| {
            let f = &mut st.forms.consent;
            let mut edited = false;
            ui.horizontal(|ui| {
                edited |= ui.checkbox(&mut f.clinical, "Clinical").changed();
                edited |= ui.checkbox(&mut f.teaching, "Teaching").changed();
                edited |= ui.checkbox(&mut f.publication, "Publication").changed();
            });
            edited |= labelled_text(ui, "Signed by", &mut f.signed_by).changed();
            edited |= date_field(ui, "Signed on", &mut f.signed_on, false);
            edited |= date_field(ui, "Expires on (optional)", &mut f.expires_on, true);
            if edited {
                st.forms.errors.consent = None;
            }
            let f = &mut st.forms.consent;
            let mut scopes = Vec::new();
            if f.clinical {
                scopes.push(Scope::Clinical);
            }
            if f.teaching {
                scopes.push(Scope::Teaching);
            }
            if f.publication {
                scopes.push(Scope::Publication);
            }
            let bad_date = |d: &str| sameframe_core::timefmt::parse_date(d).is_none();
            let why_not = if scopes.is_empty() {
                "tick at least one scope"
            } else if f.signed_by.trim().is_empty() {
                "name who signed it"
            } else if bad_date(&f.signed_on) {
                "the signing date is not a date (YYYY-MM-DD, or pick it)"
            } else if !f.expires_on.trim().is_empty() && bad_date(&f.expires_on) {
                "the expiry date is not a date (YYYY-MM-DD, or pick it; empty for none)"
            } else {
                ""
            };
            let ok = why_not.is_empty();
            if ui
                .add_enabled(ok, egui::Button::new("Record consent"))
                .on_disabled_hover_text(why_not)
                .clicked()
            {
                st.cmds.push(UiCommand::Core(CoreCommand::GrantConsent {
                    focus: focus.clone(),
                    form: ConsentForm {
                        scopes,
                        signed_by: f.signed_by.trim().to_string(),
                        signed_on: f.signed_on.trim().to_string(),
                        expires_on: Some(f.expires_on.trim().to_string()).filter(|e| !e.is_empty()),
                    },
                }));
            }
            if !ok {
                ui.label(RichText::new(why_not).weak());
            }
            field_error(ui, &st.forms.errors.consent);
        });
}
