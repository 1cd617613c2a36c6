//! Small widgets shared by the panels.

use egui::{Color32, Response, RichText, TextEdit, Ui};

use sameframe_core::analysis::readiness::Light;

/// A text field with a visible label that is also its accessible name.
pub fn labelled_text(ui: &mut Ui, label: &str, text: &mut String) -> Response {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        ui.add(TextEdit::singleline(text).desired_width(f32::INFINITY))
            .labelled_by(l.id)
    })
    .inner
}

/// A password field with a visible label.
pub fn labelled_password(ui: &mut Ui, label: &str, text: &mut String) -> Response {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        ui.add(
            TextEdit::singleline(text)
                .password(true)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(l.id)
    })
    .inner
}

/// The colour of a traffic-light state.
pub fn light_colour(l: Light) -> Color32 {
    match l {
        Light::Green => Color32::from_rgb(40, 180, 80),
        Light::Amber => Color32::from_rgb(235, 170, 30),
        Light::Red => Color32::from_rgb(215, 55, 50),
    }
}

/// The colour of a tolerance ratio (|value| / tolerance).
pub fn ratio_colour(r: f64) -> Color32 {
    if r <= 1.0 {
        light_colour(Light::Green)
    } else if r <= 2.0 {
        light_colour(Light::Amber)
    } else {
        light_colour(Light::Red)
    }
}

/// A bar showing |value| against its tolerance: full at twice the tolerance, with a tick at
/// the tolerance itself.
pub fn tolerance_bar(ui: &mut Ui, name: &str, value: &str, ratio: f64) {
    ui.horizontal(|ui| {
        ui.add_sized([92.0, 16.0], egui::Label::new(name).truncate());
        let (rect, _) = ui.allocate_exact_size(egui::vec2(80.0, 12.0), egui::Sense::hover());
        let p = ui.painter();
        p.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
        let frac = (ratio / 2.0).clamp(0.0, 1.0) as f32;
        let mut fill = rect;
        fill.set_width(rect.width() * frac);
        p.rect_filled(fill, 2.0, ratio_colour(ratio));
        let tick = rect.left() + rect.width() / 2.0;
        p.line_segment(
            [
                egui::pos2(tick, rect.top()),
                egui::pos2(tick, rect.bottom()),
            ],
            egui::Stroke::new(1.0, ui.visuals().strong_text_color()),
        );
        ui.add(egui::Label::new(RichText::new(value).monospace()).truncate());
    });
}

/// Section heading.
pub fn heading(ui: &mut Ui, text: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(text).strong().size(15.0));
}

/// A date typed as YYYY-MM-DD or picked from a calendar; an empty optional date stays empty.
pub fn date_field(ui: &mut Ui, label: &str, text: &mut String, optional: bool) -> bool {
    let mut changed = false;
    ui.horizontal(|ui| {
        let l = ui.label(label);
        changed |= ui
            .add(TextEdit::singleline(text).desired_width(96.0))
            .labelled_by(l.id)
            .changed();
        use chrono::Datelike;
        let parsed = sameframe_core::timefmt::parse_date(text);
        let shown = parsed.unwrap_or_else(sameframe_core::timefmt::today);
        let mut day =
            jiff::civil::Date::new(shown.year() as i16, shown.month() as i8, shown.day() as i8)
                .unwrap_or_default();
        let picker = ui.add(
            egui_extras::DatePickerButton::new(&mut day)
                .id_salt(label)
                .calendar_week(false)
                .show_icon(false),
        );
        if picker.changed() {
            *text = format!("{:04}-{:02}-{:02}", day.year(), day.month(), day.day());
            changed = true;
        }
        if !text.trim().is_empty() && parsed.is_none() {
            ui.colored_label(Color32::from_rgb(215, 55, 50), "YYYY-MM-DD");
        } else if optional && text.trim().is_empty() {
            ui.label(RichText::new("none").weak());
        }
    });
    changed
}

/// The error of a form, where the form is (red, wrapped).
pub fn field_error(ui: &mut Ui, error: &Option<String>) {
    if let Some(e) = error {
        ui.add(egui::Label::new(RichText::new(e).color(Color32::from_rgb(215, 55, 50))).wrap());
    }
}
