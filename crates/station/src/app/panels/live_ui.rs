//! The live view: the camera preview with the overlays — rule-of-thirds grid, vertical
//! midline, the Frankfort guide (target height from the baseline, and the patient's line now),
//! the baseline ghost at adjustable opacity, the edge difference against the baseline, and the
//! card outline.

use egui::{Align2, Color32, FontId, Pos2, Rect, RichText, Stroke, Ui, pos2, vec2};

use crate::app::state::{State, UiCommand};
use crate::camera::CameraStatus;
use sameframe_core::analysis::guides::{self, Segment};

fn toolbar(ui: &mut Ui, st: &mut State) {
    ui.horizontal_wrapped(|ui| {
        let p = &mut st.prefs;
        ui.checkbox(&mut p.show_thirds, "Thirds");
        ui.checkbox(&mut p.show_midline, "Midline");
        ui.checkbox(&mut p.show_frankfort, "Frankfort line");
        ui.checkbox(&mut p.show_card, "Card outline");
        let mut edges = p.show_edges;
        if ui.checkbox(&mut edges, "Edge difference").changed() {
            st.cmds.push(UiCommand::SetEdges(edges));
        }
    });
    ui.horizontal(|ui| {
        let p = &mut st.prefs;
        ui.checkbox(&mut p.show_ghost, "Ghost");
        ui.add_enabled(
            p.show_ghost,
            egui::Slider::new(&mut p.ghost_opacity, 0.0..=1.0).text("Ghost opacity"),
        );
    });
}

/// Fit `size` into `avail`, centred, keeping the aspect ratio.
pub fn fit(avail: Rect, size: [f32; 2]) -> Rect {
    let (w, h) = (size[0].max(1.0), size[1].max(1.0));
    let k = (avail.width() / w).min(avail.height() / h);
    Rect::from_center_size(avail.center(), vec2(w * k, h * k))
}

pub fn show(ui: &mut Ui, st: &mut State) {
    toolbar(ui, st);
    if let Some(s) = st.step_status() {
        let n = st.protocol_def().map(|p| p.steps.len()).unwrap_or_default();
        ui.label(
            RichText::new(format!("View {}/{}: {}", st.step + 1, n, s.view.label()))
                .strong()
                .size(15.0),
        );
    }
    // Never wider than what is visible of the panel.
    let avail = ui.available_rect_before_wrap().intersect(ui.clip_rect());
    let (fw, fh) = match &st.live {
        Some(r) => (r.frame.image.width() as f32, r.frame.image.height() as f32),
        None => {
            let s = st.preview.size();
            (s[0] as f32, s[1] as f32)
        }
    };
    let rect = fit(avail, [fw, fh]);
    ui.allocate_rect(avail, egui::Sense::hover());
    let painter = ui.painter_at(avail);
    let uv = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
    // Letterbox only the strips beside the picture, so no pixel is shaded twice.
    for strip in letterbox(avail, rect) {
        painter.rect_filled(strip, 0.0, Color32::from_gray(12));
    }
    painter.image(st.preview.id(), rect, uv, Color32::WHITE);
    let to_screen = |p: [f32; 2]| -> Pos2 {
        pos2(
            rect.left() + p[0] / fw * rect.width(),
            rect.top() + p[1] / fh * rect.height(),
        )
    };
    let seg = |s: &Segment, stroke: Stroke| {
        painter.line_segment([to_screen(s.a), to_screen(s.b)], stroke);
    };
    let prefs = &st.prefs;
    // The baseline ghost is blended into the preview on the camera thread (`live::Ghost`).
    if prefs.show_edges
        && let Some((tex, agreement)) = st.live.as_ref().and_then(|r| r.edges)
    {
        painter.image(tex, rect, uv, Color32::WHITE);
        painter.text(
            rect.right_bottom() + vec2(-8.0, -8.0),
            Align2::RIGHT_BOTTOM,
            format!(
                "edges agree {:.0} %  (white both · green now · magenta baseline)",
                agreement * 100.0
            ),
            FontId::proportional(13.0),
            Color32::WHITE,
        );
    }
    let (w, h) = (fw as u32, fh as u32);
    if prefs.show_thirds {
        for s in guides::thirds(w, h) {
            seg(&s, Stroke::new(1.0, Color32::from_white_alpha(110)));
        }
    }
    if prefs.show_midline {
        seg(
            &guides::midline(w, h),
            Stroke::new(1.5, Color32::from_rgba_unmultiplied(80, 200, 255, 170)),
        );
    }
    if prefs.show_frankfort {
        let target = st
            .live
            .as_ref()
            .and_then(|r| r.frankfort_target)
            .unwrap_or_else(|| {
                guides::frankfort_target(None, (w, h), w, h, prefs.frankfort_fraction)
            });
        seg(
            &target,
            Stroke::new(1.5, Color32::from_rgba_unmultiplied(255, 220, 60, 200)),
        );
        if let Some(live) = st.live.as_ref().and_then(|r| r.frankfort_live) {
            seg(&live, Stroke::new(2.5, Color32::from_rgb(255, 140, 30)));
        }
    }
    if prefs.show_card
        && let Some(r) = &st.live
        && let Some(q) = r.lighting.card.quad
    {
        let colour = match r.lighting.verdict {
            sameframe_core::analysis::lighting::Verdict::Pass => Color32::from_rgb(40, 200, 90),
            sameframe_core::analysis::lighting::Verdict::Warn => Color32::from_rgb(235, 170, 30),
            sameframe_core::analysis::lighting::Verdict::Fail => Color32::from_rgb(215, 55, 50),
        };
        let pts: Vec<Pos2> = q
            .iter()
            .map(|p| to_screen([p[0] as f32, p[1] as f32]))
            .collect();
        for i in 0..4 {
            painter.line_segment([pts[i], pts[(i + 1) % 4]], Stroke::new(2.0, colour));
        }
    }
    if let Some(light) = st.readiness.as_ref().map(|r| r.light) {
        painter.rect_stroke(
            rect,
            0.0,
            Stroke::new(4.0, super::widgets::light_colour(light)),
            egui::StrokeKind::Inside,
        );
    }
    match &st.camera.status {
        CameraStatus::Lost { message, since } => {
            painter.rect_filled(rect, 0.0, Color32::from_black_alpha(170));
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                format!(
                    "Camera lost {:.0} s ago — reconnecting…\n{message}\nCaptures already taken are safe in the store.",
                    since.elapsed().as_secs_f64()
                ),
                FontId::proportional(18.0),
                Color32::WHITE,
            );
        }
        CameraStatus::Starting => {
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "starting the camera…",
                FontId::proportional(18.0),
                Color32::WHITE,
            );
        }
        _ => {}
    }
    if st.camera.spec.is_replay() {
        painter.text(
            rect.left_top() + vec2(10.0, 10.0),
            Align2::LEFT_TOP,
            "REPLAY",
            FontId::proportional(16.0),
            Color32::from_rgb(235, 170, 30),
        );
    }
}

/// The parts of `outer` not covered by `inner` (which `fit` centres inside it).
fn letterbox(outer: Rect, inner: Rect) -> impl Iterator<Item = Rect> {
    [
        Rect::from_min_max(outer.min, pos2(outer.max.x, inner.min.y)),
        Rect::from_min_max(pos2(outer.min.x, inner.max.y), outer.max),
        Rect::from_min_max(
            pos2(outer.min.x, inner.min.y),
            pos2(inner.min.x, inner.max.y),
        ),
        Rect::from_min_max(
            pos2(inner.max.x, inner.min.y),
            pos2(outer.max.x, inner.max.y),
        ),
    ]
    .into_iter()
    .filter(|r| r.width() > 0.5 && r.height() > 0.5)
}
