//! Compare any baseline/follow-up pair of the patient: side by side or as a slider wipe, with
//! the pair's grade and its lighting and pose differences.

use egui::{Color32, Pos2, Rect, RichText, Stroke, Ui, pos2};

use super::live_ui::fit;
use crate::app::state::{State, UiCommand};
use sameframe_core::records::Role;
use sameframe_core::review::compare::Level;

fn picker(ui: &mut Ui, st: &mut State) {
    let Some(p) = &st.patient else {
        ui.label("Choose a patient first.");
        return;
    };
    let baselines: Vec<_> = p
        .captures
        .iter()
        .filter(|c| c.role == Role::Baseline)
        .collect();
    if baselines.is_empty() {
        ui.label("This patient has no baseline yet.");
        return;
    }
    let label = |c: &sameframe_core::records::Capture| {
        format!(
            "{} · {} {} · {}",
            &c.captured_at[..c.captured_at.len().min(16)],
            c.area.label(),
            c.view.label(),
            c.id
        )
    };
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("Baseline")
            .selected_text(
                st.compare
                    .baseline_id
                    .clone()
                    .unwrap_or_else(|| "choose…".into()),
            )
            .width(260.0)
            .show_ui(ui, |ui| {
                for b in &baselines {
                    if ui
                        .selectable_label(
                            st.compare.baseline_id.as_deref() == Some(b.id.as_str()),
                            label(b),
                        )
                        .clicked()
                    {
                        st.compare.baseline_id = Some(b.id.clone());
                        st.compare.followup_id = None;
                    }
                }
            });
    });
    let followups: Vec<_> = p
        .captures
        .iter()
        .filter(|c| c.baseline_id.is_some() && c.baseline_id == st.compare.baseline_id)
        .collect();
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("Follow-up")
            .selected_text(
                st.compare
                    .followup_id
                    .clone()
                    .unwrap_or_else(|| "choose…".into()),
            )
            .width(260.0)
            .show_ui(ui, |ui| {
                for f in &followups {
                    if ui
                        .selectable_label(
                            st.compare.followup_id.as_deref() == Some(f.id.as_str()),
                            label(f),
                        )
                        .clicked()
                    {
                        st.compare.followup_id = Some(f.id.clone());
                    }
                }
            });
        let ready = st.compare.baseline_id.is_some() && st.compare.followup_id.is_some();
        if ui
            .add_enabled(ready, egui::Button::new("Compare"))
            .on_disabled_hover_text("choose a baseline and one of its follow-ups")
            .clicked()
            && let (Some(b), Some(f)) = (&st.compare.baseline_id, &st.compare.followup_id)
        {
            st.cmds.push(UiCommand::Compare {
                baseline_id: b.clone(),
                followup_id: f.clone(),
            });
        }
    });
    if st.compare.baseline_id.is_some() && followups.is_empty() {
        ui.label(RichText::new("no follow-up of this baseline yet").weak());
    }
}

pub fn window(ctx: &egui::Context, st: &mut State) {
    let mut open = st.compare.open;
    egui::Window::new("Compare")
        .open(&mut open)
        .default_size([900.0, 600.0])
        .show(ctx, |ui| {
            picker(ui, st);
            let Some(pair) = &st.compare.loaded else {
                return;
            };
            ui.separator();
            let g = &pair.grade;
            ui.horizontal(|ui| {
                let colour = match g.grade {
                    'A' | 'B' => Color32::from_rgb(40, 180, 80),
                    'C' | 'D' => Color32::from_rgb(235, 170, 30),
                    _ => Color32::from_rgb(215, 55, 50),
                };
                ui.label(
                    RichText::new(format!("Grade {}", g.grade))
                        .size(20.0)
                        .strong()
                        .color(colour),
                );
                if let Some(s) = g.pose_score {
                    ui.label(format!("pose {s:.0}/100"));
                }
                if let Some(e) = g.exposure_delta_ev {
                    ui.label(format!("exposure Δ {e:+.2} EV"));
                }
                if let Some(c) = g.cast_delta_e {
                    ui.label(format!("cast ΔE {c:.1}"));
                }
                if let Some(t) = g.time_of_day_delta_hours {
                    ui.label(format!("time of day Δ {t:.1} h"));
                }
            });
            for a in &g.aspects {
                let c = match a.level {
                    Level::Ok => Color32::GRAY,
                    Level::Minor => Color32::from_rgb(235, 170, 30),
                    Level::Major => Color32::from_rgb(215, 55, 50),
                };
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("{}: {}", a.aspect.replace('_', " "), a.message))
                            .color(c),
                    )
                    .wrap(),
                );
            }
            super::publish_ui::section(ui, st);
            let Some(pair) = &st.compare.loaded else {
                return;
            };
            if let Some(m) = &pair.maps[1] {
                ui.label(format!(
                    "Area map of visit {} ({} points), drawn on {}, aligned to the follow-up (confidence {:.2})",
                    m.visit_id,
                    m.points.len(),
                    m.drawn_on,
                    m.confidence
                ));
            }
            ui.horizontal(|ui| {
                ui.radio_value(&mut st.compare.side_by_side, true, "Side by side");
                ui.radio_value(&mut st.compare.side_by_side, false, "Slider wipe");
                if !st.compare.side_by_side {
                    ui.add(
                        egui::Slider::new(&mut st.compare.wipe, 0.0..=1.0).text("Wipe position"),
                    );
                }
            });
            let avail = ui.available_rect_before_wrap();
            let resp = ui.allocate_rect(avail, egui::Sense::click_and_drag());
            let painter = ui.painter_at(avail);
            let uv = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
            let bs = pair.baseline.size_vec2();
            if st.compare.side_by_side {
                let half = avail.width() / 2.0;
                let left = Rect::from_min_size(avail.min, egui::vec2(half - 4.0, avail.height()));
                let right = Rect::from_min_size(
                    Pos2::new(avail.min.x + half + 4.0, avail.min.y),
                    egui::vec2(half - 4.0, avail.height()),
                );
                painter.image(
                    pair.baseline.id(),
                    fit(left, [bs.x, bs.y]),
                    uv,
                    Color32::WHITE,
                );
                let fs = pair.followup.size_vec2();
                let (lb, rf) = (fit(left, [bs.x, bs.y]), fit(right, [fs.x, fs.y]));
                painter.image(pair.followup.id(), rf, uv, Color32::WHITE);
                for (m, r) in pair.maps.iter().zip([lb, rf]) {
                    if let Some(m) = m {
                        let size = [m.width, m.height];
                        super::treatment_ui::paint_map(&painter, r, size, &m.zones, &m.points);
                    }
                }
                tag(
                    &painter,
                    lb.left_top(),
                    egui::Align2::LEFT_TOP,
                    &baseline_tag(pair),
                );
                tag(
                    &painter,
                    rf.left_top(),
                    egui::Align2::LEFT_TOP,
                    &followup_tag(pair),
                );
            } else {
                let r = fit(avail, [bs.x, bs.y]);
                if let Some(p) = resp.interact_pointer_pos()
                    && resp.dragged()
                {
                    st.compare.wipe = ((p.x - r.left()) / r.width()).clamp(0.0, 1.0);
                }
                let x = r.left() + r.width() * st.compare.wipe;
                painter.image(pair.baseline.id(), r, uv, Color32::WHITE);
                let right = Rect::from_min_max(pos2(x, r.top()), r.max);
                let uv_right = Rect::from_min_max(pos2(st.compare.wipe, 0.0), pos2(1.0, 1.0));
                painter.image(pair.followup.id(), right, uv_right, Color32::WHITE);
                // Each photo's map on its own side of the wipe.
                let left = Rect::from_min_max(r.min, pos2(x, r.bottom()));
                for (m, clip) in pair.maps.iter().zip([left, right]) {
                    if let Some(m) = m {
                        let size = [m.width, m.height];
                        let p = painter.with_clip_rect(clip);
                        super::treatment_ui::paint_map(&p, r, size, &m.zones, &m.points);
                    }
                }
                painter.line_segment(
                    [pos2(x, r.top()), pos2(x, r.bottom())],
                    Stroke::new(2.0, Color32::WHITE),
                );
                tag(
                    &painter,
                    r.left_top(),
                    egui::Align2::LEFT_TOP,
                    &baseline_tag(pair),
                );
                tag(
                    &painter,
                    r.right_top(),
                    egui::Align2::RIGHT_TOP,
                    &followup_tag(pair),
                );
            }
        });
    st.compare.open = open;
}

fn baseline_tag(pair: &crate::app::state::LoadedPair) -> String {
    let c = &pair.baseline_capture;
    format!(
        "Baseline · {}",
        &c.captured_at[..c.captured_at.len().min(16)]
    )
}

fn followup_tag(pair: &crate::app::state::LoadedPair) -> String {
    let c = &pair.followup_capture;
    format!(
        "Follow-up · {}",
        &c.captured_at[..c.captured_at.len().min(16)]
    )
}

/// A label on a photo: white on a dark plate, legible on any skin or background.
fn tag(painter: &egui::Painter, at: Pos2, align: egui::Align2, text: &str) {
    let inset = if align == egui::Align2::RIGHT_TOP {
        egui::vec2(-8.0, 8.0)
    } else {
        egui::vec2(8.0, 8.0)
    };
    let galley = painter.layout_no_wrap(
        text.to_string(),
        egui::FontId::proportional(15.0),
        Color32::WHITE,
    );
    let rect = align.anchor_size(at + inset, galley.size()).expand(4.0);
    painter.rect_filled(rect, 3.0, Color32::from_black_alpha(170));
    painter.galley(rect.min + egui::vec2(4.0, 4.0), galley, Color32::WHITE);
}
