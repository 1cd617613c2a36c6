//! First run (create the store, choosing how photos are encrypted at rest) and unlock (the
//! passphrase of an encrypted store). The passphrase is held only in memory.

use egui::{Color32, RichText};
use zeroize::Zeroizing;

use super::widgets::{labelled_password, labelled_text};
use crate::app::commands::{CoreCommand, InitEncryption};
use crate::app::state::{InitMode, State, StoreState, UiCommand};
use sameframe_core::store::crypto::MIN_PASSPHRASE;

pub fn show(ctx: &egui::Context, st: &mut State) {
    match st.store.clone() {
        StoreState::Missing { path } => first_run(ctx, st, &path),
        StoreState::Locked { path, error } => unlock(ctx, st, &path, error.as_deref()),
        _ => {}
    }
}

fn first_run(ctx: &egui::Context, st: &mut State, path: &std::path::Path) {
    egui::Modal::new(egui::Id::unique("first_run")).show(ctx, |ui| {
        ui.set_width(460.0);
        ui.heading("Create a sameframe store");
        ui.label(format!("No store at {} yet.", path.display()));
        ui.label("Photos are encrypted at rest with a key per consent; choose what protects those keys:");
        let f = &mut st.forms;
        ui.radio_value(&mut f.init_mode, InitMode::Passphrase, "Passphrase (asked when the station starts)");
        ui.radio_value(&mut f.init_mode, InitMode::KeyFile, "Key file (keep it on separate media)");
        ui.radio_value(&mut f.init_mode, InitMode::None, "No encryption (demonstration only)");
        let mut ok = true;
        let mut why_not = "";
        match f.init_mode {
            InitMode::Passphrase => {
                labelled_password(ui, "Passphrase", &mut f.passphrase);
                labelled_password(ui, "Repeat passphrase", &mut f.passphrase_again);
                if f.passphrase.chars().count() < MIN_PASSPHRASE {
                    ok = false;
                    why_not = "the passphrase is too short";
                    ui.label(RichText::new(format!("at least {MIN_PASSPHRASE} characters")).weak());
                } else if *f.passphrase != *f.passphrase_again {
                    ok = false;
                    why_not = "the two passphrases differ";
                    ui.colored_label(Color32::from_rgb(215, 55, 50), "the passphrases differ");
                }
                ui.label(RichText::new("There is no recovery: a lost passphrase means lost photos.").small());
            }
            InitMode::KeyFile => {
                labelled_text(ui, "Key file", &mut f.key_file);
                ok = !f.key_file.trim().is_empty();
                if !ok {
                    why_not = "type where the key file goes (a path on separate media)";
                }
                ui.label(RichText::new("Created when absent. Back it up apart from the data folder.").small());
            }
            InitMode::None => {
                ui.colored_label(
                    Color32::from_rgb(235, 170, 30),
                    "Photos will be readable by anyone with the disk or a backup. Encrypt later with `sameframe encrypt`.",
                );
            }
        }
        if let Some(e) = &f.errors.store {
            ui.colored_label(Color32::from_rgb(215, 55, 50), e);
        }
        if ui
            .add_enabled(ok, egui::Button::new("Create store"))
            .on_disabled_hover_text(why_not)
            .clicked()
        {
            f.errors.store = None;
            let enc = match f.init_mode {
                InitMode::Passphrase => InitEncryption::Passphrase(Zeroizing::new(f.passphrase.to_string())),
                InitMode::KeyFile => {
                    let path = std::path::absolute(f.key_file.trim())
                        .unwrap_or_else(|_| f.key_file.trim().into());
                    f.pending_key_backup = Some(path.clone());
                    InitEncryption::KeyFile(path)
                }
                InitMode::None => InitEncryption::None,
            };
            st.cmds.push(UiCommand::Core(CoreCommand::Init(enc)));
            st.store = StoreState::Opening;
        }
    });
}

fn unlock(ctx: &egui::Context, st: &mut State, path: &std::path::Path, error: Option<&str>) {
    egui::Modal::new(egui::Id::unique("unlock")).show(ctx, |ui| {
        ui.set_width(420.0);
        ui.heading("Unlock the store");
        ui.label(format!(
            "The store at {} is encrypted with a passphrase.",
            path.display()
        ));
        let r = labelled_password(ui, "Passphrase", &mut st.forms.passphrase);
        if let Some(e) = error {
            ui.colored_label(Color32::from_rgb(215, 55, 50), e);
        }
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let ok = !st.forms.passphrase.is_empty();
        if (ui.add_enabled(ok, egui::Button::new("Unlock")).clicked() || enter) && ok {
            let pass = Zeroizing::new(st.forms.passphrase.to_string());
            st.forms.passphrase = Zeroizing::new(String::new());
            st.cmds.push(UiCommand::Core(CoreCommand::Unlock(pass)));
            st.store = StoreState::Opening;
        }
    });
}
