//! The notifications line: the latest message, and the log of this session's messages.

use egui::{Color32, RichText, Ui};

use crate::app::state::State;

pub fn show(ui: &mut Ui, st: &mut State) {
    ui.horizontal(|ui| {
        match st.notices.iter().rev().find(|n| !n.at_field) {
            Some(n) => {
                let text = RichText::new(format!("{}  {}", n.at, n.text));
                ui.label(if n.error {
                    text.color(Color32::from_rgb(215, 55, 50))
                } else {
                    text
                });
            }
            None => {
                ui.label("Keys (when no field is being typed in): Space capture · N or Right next view · P or Left previous view · G ghost · E edges");
            }
        }
    });
    if !st.notices.is_empty() {
        egui::CollapsingHeader::new(format!("Messages ({})", st.notices.len()))
            .id_salt("messages")
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .max_height(120.0)
                    .stick_to_bottom(true)
                    .show(ui, |ui| {
                        for n in &st.notices {
                            let t = RichText::new(format!("{}  {}", n.at, n.text));
                            ui.label(if n.error {
                                t.color(Color32::from_rgb(215, 55, 50))
                            } else {
                                t
                            });
                        }
                    });
            });
    }
}
