//! Dialogs that ask before something is lost: unsaved input about to be discarded, and the
//! key file of a new store to back up now.

use egui::RichText;

use crate::app::state::{State, UiCommand};

/// "Discard unsaved …?" before a patient or visit change drops unsaved input.
pub fn discard(ctx: &egui::Context, st: &mut State) {
    let Some(prompt) = st.discard.clone() else {
        return;
    };
    // Closed by its buttons only: a stray click beside it must not decide for the clinician.
    egui::Modal::new(egui::Id::unique("discard_dialog")).show(ctx, |ui| {
        ui.set_width(400.0);
        ui.heading("Unsaved changes");
        ui.label(format!("{}.", capitalised(&prompt.what)));
        ui.horizontal(|ui| {
            if ui.button("Save them first").clicked() {
                st.cmds.push(UiCommand::SaveConfounders);
                st.discard = None;
            }
            if ui.button("Discard").clicked() {
                st.cmds
                    .push(UiCommand::Discard(Box::new(prompt.then.clone())));
                st.discard = None;
            }
            if ui.button("Keep editing").clicked() {
                st.discard = None;
            }
        });
    });
}

/// Where a new store's key file is, and a request to back it up now.
pub fn key_backup(ctx: &egui::Context, st: &mut State) {
    let Some(path) = st.key_backup.clone() else {
        return;
    };
    egui::Modal::new(egui::Id::unique("key_backup_dialog")).show(ctx, |ui| {
        ui.set_width(480.0);
        ui.heading("Back up the key file now");
        ui.label("Every photo in this store is encrypted with this key file:");
        ui.label(
            RichText::new(path.display().to_string())
                .monospace()
                .strong(),
        );
        ui.label(
            "Without it the photos cannot be opened, by anyone. Copy it now to a place kept \
             apart from this computer and from the store's backups (the clinic's password \
             manager or a locked USB drive).",
        );
        ui.horizontal(|ui| {
            if ui.button("Copy the path").clicked() {
                ui.ctx().copy_text(path.display().to_string());
            }
            if ui.button("I have backed it up").clicked() {
                st.key_backup = None;
            }
        });
    });
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
