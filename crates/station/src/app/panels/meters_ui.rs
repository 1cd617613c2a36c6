//! The lighting and pose meters, computed on the analysis thread and read here.

use egui::{Color32, RichText, Ui};

use super::widgets::{heading, light_colour, tolerance_bar};
use crate::app::state::State;
use sameframe_core::analysis::lighting::Verdict;

pub fn show(ui: &mut Ui, st: &mut State) {
    heading(ui, "Lighting");
    let Some(r) = st.live.clone() else {
        ui.label(RichText::new("waiting for analysis…").weak());
        return;
    };
    let l = &r.lighting;
    let verdict_colour = match l.verdict {
        Verdict::Pass => light_colour(sameframe_core::analysis::readiness::Light::Green),
        Verdict::Warn => light_colour(sameframe_core::analysis::readiness::Light::Amber),
        Verdict::Fail => light_colour(sameframe_core::analysis::readiness::Light::Red),
    };
    ui.horizontal(|ui| {
        ui.label("Verdict:");
        ui.colored_label(verdict_colour, format!("{:?}", l.verdict).to_lowercase());
        match (&l.card.kind, &l.card.source) {
            (Some(k), Some(s)) => ui.label(format!("· {k} ({s})")),
            _ => ui.label("· no card"),
        };
    });
    if let Some(ev) = l.exposure_ev {
        tolerance_bar(ui, "Exposure", &format!("{ev:+.2} EV"), ev.abs() / 0.333);
    }
    if let Some(de) = l.cast_delta_e {
        let ab = l.cast_lab.unwrap_or([0.0; 2]);
        tolerance_bar(ui, "Cast", &format!("ΔE {de:.1}"), de / 2.0);
        ui.label(
            RichText::new(format!("card a* {:+.1}, b* {:+.1}", ab[0], ab[1]))
                .small()
                .weak(),
        );
    }
    tolerance_bar(
        ui,
        "Highlights",
        &format!("{:.2} %", l.clipped_highlights * 100.0),
        l.clipped_highlights / 0.01,
    );
    tolerance_bar(
        ui,
        "Shadows",
        &format!("{:.2} %", l.clipped_shadows * 100.0),
        l.clipped_shadows / 0.05,
    );
    if let Some(f) = l.falloff_ev {
        tolerance_bar(ui, "Fall-off", &format!("{f:+.2} EV"), f.abs() / 0.333);
    }
    tolerance_bar(
        ui,
        "Focus",
        &format!("{:.0}", l.sharpness),
        if l.sharpness > 0.0 {
            15.0 / l.sharpness
        } else {
            9.0
        },
    );
    for reason in &l.reasons {
        ui.label(RichText::new(format!("• {reason}")).small());
    }

    heading(ui, "Pose");
    match &r.pose {
        None if st.baseline.is_some() => {
            ui.label(RichText::new("comparing with the baseline…").weak());
        }
        None => {
            ui.label("No baseline for this view yet: this capture becomes the baseline.");
            if let Some(found) = r.face_found {
                ui.label(if found { "face found" } else { "no face found" });
            }
        }
        Some(p) => {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(format!("Score {:.0} / 100", p.score))
                        .strong()
                        .size(16.0),
                );
                if p.within_tolerance {
                    ui.colored_label(Color32::from_rgb(40, 180, 80), "within tolerance");
                }
            });
            for a in &p.axes {
                tolerance_bar(
                    ui,
                    short_axis_name(&a.name),
                    &format!("{:+.2} {}", a.value, a.unit),
                    a.ratio,
                );
            }
            for h in &p.hints {
                ui.label(RichText::new(format!("» {h}")).size(15.0).strong());
            }
            for reason in &p.reasons {
                ui.label(RichText::new(format!("• {reason}")).small());
            }
            ui.label(
                RichText::new(format!(
                    "{} · {} inliers · confidence {:.2}",
                    p.method, p.inliers, p.confidence
                ))
                .small()
                .weak(),
            );
        }
    }
    ui.add_space(4.0);
    ui.label(
        RichText::new(format!(
            "analysis {:.0} ms · {:.1} s ago · frame {}",
            r.took.as_secs_f64() * 1e3,
            r.at.elapsed().as_secs_f64(),
            r.frame.seq
        ))
        .small()
        .weak(),
    );
}

/// Axis names short enough for the meter column; the full name is in the pose JSON.
fn short_axis_name(name: &str) -> &str {
    match name {
        "horizontal position" => "left / right",
        "vertical position" => "up / down",
        other => other,
    }
}
