//! "Prepare for publication" in the compare window: the pair on screen becomes a publication
//! copy, made and checked by the core (consent, grade, de-identification, metadata, signed
//! provenance) and recorded for the take-down list.

use egui::{Color32, RichText, Ui};

use super::widgets::labelled_text;
use crate::app::commands::{CoreCommand, PublishJob};
use crate::app::state::{State, UiCommand};
use sameframe_core::publish::deid::Method;

const CHANNELS: [&str; 4] = ["website", "social", "print", "teaching"];

/// Where a copy goes by default: a `publications` folder beside the data directory (never
/// inside it), named by the follow-up and the channel.
fn default_out(st: &State, followup: &str, channel: &str) -> String {
    let base = match &st.store {
        crate::app::state::StoreState::Open(info) => info
            .path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        _ => std::path::PathBuf::new(),
    };
    base.join("publications")
        .join(format!("{followup}-{channel}.jpg"))
        .display()
        .to_string()
}

/// The form, under the pair's grade.
pub fn section(ui: &mut Ui, st: &mut State) {
    let Some(pair) = &st.compare.loaded else {
        return;
    };
    let ids = vec![
        pair.baseline_capture.id.clone(),
        pair.followup_capture.id.clone(),
    ];
    let followup = pair.followup_capture.id.clone();
    egui::CollapsingHeader::new("Prepare for publication")
        .id_salt("prepare-publication")
        .show(ui, |ui| form(ui, st, ids, &followup));
}

fn form(ui: &mut Ui, st: &mut State, ids: Vec<String>, followup: &str) {
    if st.compare.publish.channel.is_empty() {
        st.compare.publish.channel = CHANNELS[0].into();
    }
    if st.compare.publish.out.is_empty() {
        st.compare.publish.out = default_out(st, followup, &st.compare.publish.channel);
    }
    let d = &mut st.compare.publish;
    egui::ComboBox::from_label("Channel")
        .selected_text(d.channel.clone())
        .show_ui(ui, |ui| {
            for c in CHANNELS {
                ui.selectable_value(&mut d.channel, c.to_string(), c);
            }
        });
    ui.horizontal(|ui| {
        ui.radio_value(&mut d.deidentify, 0, "Identifiable");
        ui.radio_value(&mut d.deidentify, 1, "Crop to the treated zone");
        ui.radio_value(&mut d.deidentify, 2, "Mask outside the treated zone");
    });
    labelled_text(ui, "Treated zone", &mut d.zone)
        .on_hover_text("cheeks, perioral, forehead, periorbital… (calibration/publication.toml)");
    labelled_text(ui, "Grade override reason", &mut d.override_reason)
        .on_hover_text("only for a pair below the clinic's minimum grade (audited)");
    labelled_text(ui, "Save copy as", &mut d.out);
    let ready = !d.busy && !d.out.trim().is_empty();
    if ui
        .add_enabled(ready, egui::Button::new("Prepare copy"))
        .clicked()
    {
        let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let job = PublishJob {
            capture_ids: ids,
            channel: d.channel.clone(),
            deidentify: match d.deidentify {
                1 => Some(Method::Crop),
                2 => Some(Method::Mask),
                _ => None,
            },
            zone: text(&d.zone),
            override_reason: text(&d.override_reason),
            out: std::path::PathBuf::from(d.out.trim()),
        };
        d.busy = true;
        d.error = None;
        d.done = None;
        if let Some(dir) = job.out.parent() {
            // The folder of the copy; a failure shows when the core writes the file.
            let _ = std::fs::create_dir_all(dir);
        }
        st.cmds
            .push(UiCommand::Core(CoreCommand::PreparePublication(Box::new(
                job,
            ))));
    }
    let d = &st.compare.publish;
    if d.busy {
        ui.label(RichText::new("preparing…").weak());
    }
    if let Some(e) = &d.error {
        ui.add(egui::Label::new(RichText::new(e).color(Color32::from_rgb(215, 55, 50))).wrap());
    }
    if let Some(done) = &d.done {
        ui.add(egui::Label::new(RichText::new(done).color(Color32::from_rgb(40, 180, 80))).wrap());
    }
}
