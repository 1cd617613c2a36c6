//! The worker's side of the treatment window: every change goes through the library calls
//! the CLI's `visit …` and `map …` verbs make, then the record is reloaded.

use super::{Worker, failed};
use crate::app::commands::{CoreEvent, TreatmentCmd, TreatmentView};
use crate::app::display_image;
use sameframe_core::records::RecordError;
use sameframe_core::records::treatment::products::NewProduct;
use sameframe_core::store::Store;
use sameframe_core::timefmt;

/// How the window names what failed (see `StationApp::apply`).
pub const ACTION: &str = "record the treatment";

fn view(
    s: &Store,
    visit_id: &str,
    map_capture: Option<&str>,
) -> Result<TreatmentView, RecordError> {
    let visit = s.visit(visit_id)?;
    let cfg = s.treatment_config()?;
    let capture = match map_capture {
        Some(id) => Some(s.capture(id)?),
        None => s.map_capture_of(&visit)?,
    };
    let map_capture = match capture {
        Some(c) => Some((
            c.id.clone(),
            display_image(&s.capture_image(&c.id)?.to_rgb8()),
        )),
        None => None,
    };
    Ok(TreatmentView {
        visit_id: visit.id.clone(),
        record: s.visit_treatment(&visit.id)?,
        products: s.products_of_visit(&visit)?,
        responses: cfg.response.clone(),
        depths: cfg.treatment.depths.clone(),
        techniques: cfg.treatment.techniques.clone(),
        zones: cfg
            .zones_of(visit.area)
            .iter()
            .map(|z| {
                (
                    z.clone(),
                    cfg.zone.get(z).map(|t| t.label.clone()).unwrap_or_default(),
                )
            })
            .collect(),
        success: cfg.treatment.success.clone(),
        map_capture,
    })
}

impl Worker {
    pub(super) fn treatment(&mut self, cmd: TreatmentCmd) {
        let Some(s) = self.store(ACTION) else { return };
        let (visit_id, map_capture, result) = match cmd {
            TreatmentCmd::Load {
                visit_id,
                map_capture,
            } => (visit_id, map_capture, Ok(None)),
            TreatmentCmd::PlaceTemplate { capture_id } => {
                match s.map_template(&capture_id) {
                    Ok(t) => self.emit(CoreEvent::MapTemplate {
                        capture_id,
                        zones: t.zones,
                    }),
                    Err(e) => self.emit(failed(ACTION, e)),
                }
                return;
            }
            TreatmentCmd::AddProduct {
                visit_id,
                product,
                lot,
                expiry,
                quantity,
                unit,
                expired_reason,
            } => {
                let r = match timefmt::parse_date(&expiry) {
                    None => Err(RecordError::Invalid {
                        what: "lot expiry".into(),
                        why: format!("{expiry:?} is not a date (YYYY-MM-DD)"),
                    }),
                    Some(expiry) => s.add_product(NewProduct {
                        visit_id: &visit_id,
                        product: &product,
                        lot: &lot,
                        expiry,
                        quantity,
                        unit: unit.as_deref(),
                        expired_reason: expired_reason.as_deref(),
                    }),
                };
                (
                    visit_id,
                    None,
                    r.map(|_| Some(format!("{product} lot {lot} recorded"))),
                )
            }
            TreatmentCmd::SetMap {
                visit_id,
                capture_id,
                input,
            } => {
                let r = s.set_map(&visit_id, &capture_id, input);
                (
                    visit_id,
                    Some(capture_id),
                    r.map(|_| Some("area map saved".to_string())),
                )
            }
            TreatmentCmd::Response {
                visit_id,
                findings,
                note,
            } => {
                let r = s.record_response(&visit_id, &findings, note.as_deref());
                (
                    visit_id,
                    None,
                    r.map(|_| Some("skin response recorded".to_string())),
                )
            }
            TreatmentCmd::Pain {
                visit_id,
                score,
                when,
                comment,
            } => {
                let r = s.record_pain(&visit_id, score, when, comment.as_deref());
                (
                    visit_id,
                    None,
                    r.map(|_| Some(format!("pain {score}/10 recorded"))),
                )
            }
            TreatmentCmd::Outcome {
                visit_id,
                patient_gais,
                clinician_gais,
                satisfaction,
                text,
            } => {
                let r = s.record_outcome(
                    &visit_id,
                    patient_gais,
                    clinician_gais,
                    satisfaction,
                    text.as_deref(),
                );
                (
                    visit_id,
                    None,
                    r.map(|_| Some("outcome recorded".to_string())),
                )
            }
        };
        let event = result.and_then(|saved| {
            let v = view(s, &visit_id, map_capture.as_deref())?;
            Ok(CoreEvent::Treatment {
                view: Box::new(v),
                saved,
            })
        });
        match event {
            Ok(e) => self.emit(e),
            Err(e) => self.emit(failed(ACTION, e)),
        }
    }
}
