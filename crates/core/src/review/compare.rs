//! Comparability of a before/after pair, graded A–F with reasons: pose, lighting, camera
//! settings, time of day and confounders (`sameframe pair`, and the review's comparability
//! check).

use serde::{Deserialize, Serialize};

use crate::analysis::frame::Frame;
use crate::analysis::lighting::{self, LightingConfig};
use crate::analysis::pose::{self, PoseConfig, PoseOptions};
use crate::calibration::{Calibration, CalibrationError};
use crate::ingest::ExifSummary;
use crate::records::{Capture, RecordError};
use crate::store::Store;

/// `[comparability]` tolerances.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ComparabilityTolerances {
    pub pose_score_warn: f64,
    pub pose_score_fail: f64,
    pub exposure_ev: f64,
    pub cast_delta_e: f64,
    pub focal_length_pct: f64,
    pub exposure_settings_ev: f64,
    pub time_of_day_hours: f64,
    /// The grade from which a published before/after fails review (not comparable under the
    /// advertising rules the clinic follows); the grade before it warns.
    #[serde(default = "default_published_fail_grade")]
    pub published_fail_grade: char,
}

fn default_published_fail_grade() -> char {
    'D'
}

#[derive(Deserialize)]
struct File {
    comparability: ComparabilityTolerances,
}

impl ComparabilityTolerances {
    pub fn load(cal: &Calibration) -> Result<Self, CalibrationError> {
        Ok(cal.load::<File>("tolerances.toml")?.comparability)
    }
}

/// How serious a difference is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Minor,
    Major,
}

/// One compared aspect.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Aspect {
    /// "pose", "lighting", "camera", "time_of_day", "confounders", "records".
    pub aspect: String,
    pub level: Level,
    pub message: String,
    /// What a photographer would change at capture time (the pose hints), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The comparability certificate of a pair.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairGrade {
    pub baseline_id: String,
    pub followup_id: String,
    /// A (comparable) to F (not comparable).
    pub grade: char,
    pub aspects: Vec<Aspect>,
    pub pose_score: Option<f64>,
    pub exposure_delta_ev: Option<f64>,
    pub cast_delta_e: Option<f64>,
    pub focal_length_delta_pct: Option<f64>,
    pub exposure_settings_delta_ev: Option<f64>,
    pub time_of_day_delta_hours: Option<f64>,
    pub confounders: Vec<String>,
}

impl PairGrade {
    /// The reasons, most serious first.
    pub fn reasons(&self) -> Vec<String> {
        let mut a: Vec<&Aspect> = self
            .aspects
            .iter()
            .filter(|a| a.level != Level::Ok)
            .collect();
        a.sort_by_key(|x| std::cmp::Reverse(x.level));
        a.iter().map(|a| a.message.clone()).collect()
    }
}

/// Exposure value from EXIF settings (EV at ISO 100): log2(N² / t) − log2(ISO / 100).
fn exposure_value(e: &ExifSummary) -> Option<f64> {
    let (n, t) = (e.f_number?, e.exposure_time_s?);
    if n <= 0.0 || t <= 0.0 {
        return None;
    }
    Some((n * n / t).log2() - (f64::from(e.iso.unwrap_or(100)) / 100.0).log2())
}

/// Lighting numbers of a capture: those recorded at the station, else measured on its
/// original at full resolution (as `analyze lighting` measures it: a small grey card is lost in
/// a preview).
fn lighting_of(store: &Store, cap: &Capture, cfg: &LightingConfig) -> Option<(f64, [f64; 2])> {
    if let Some(m) = cap.analysis.as_ref().and_then(|a| a.exposure_and_cast()) {
        return Some(m);
    }
    let img = store.capture_image(&cap.id).ok()?;
    let r = lighting::analyze(&Frame::from_dynamic(&img), cfg, &Default::default());
    Some((r.exposure_ev?, r.cast_lab?))
}

/// A pose difference as a reviewer reads it (the capture-time hints, such as "tilt it 3°", are
/// kept apart in [`Aspect::hint`]).
fn pose_message(score: f64, needs: f64) -> String {
    format!(
        "the follow-up is posed or framed differently from the baseline: pose score {score:.0}/100 (comparable from {needs:.0})"
    )
}

/// The capture-time hints of a pose analysis, joined, if any say something.
fn pose_hint(hints: &[String]) -> Option<String> {
    let h: Vec<&str> = hints
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .collect();
    (!h.is_empty()).then(|| h.join("; "))
}

/// The pose of a follow-up against its baseline as `pair` measures it (on the stored previews),
/// and whether it is comparable.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PoseCheck {
    /// None when the follow-up could not be aligned to the baseline.
    pub score: Option<f64>,
    pub confidence: f64,
    /// The score from which a pair is comparable (`pose_score_warn`), and below which it is
    /// not comparable at all (`pose_score_fail`).
    pub comparable_from: f64,
    pub fails_below: f64,
    /// The capture-time hints (what to change), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl PoseCheck {
    /// Within tolerance: aligned, and at least `comparable_from`.
    pub fn within(&self) -> bool {
        self.score.is_some_and(|s| s >= self.comparable_from)
    }

    /// How a reviewer or a clinician reads it when it is not within tolerance.
    pub fn problem(&self) -> Option<String> {
        match self.score {
            None => Some(format!(
                "the follow-up could not be aligned to the baseline (confidence {:.2})",
                self.confidence
            )),
            Some(s) if s < self.comparable_from => Some(pose_message(s, self.comparable_from)),
            Some(_) => None,
        }
    }
}

impl Store {
    /// The pose of `followup_preview` (the preview pixels of a follow-up, stored or about to
    /// be: see [`Store::stored_preview_of`]) against the stored preview of
    /// `baseline_id`: the one measure `pair`, review and the station's commit share.
    pub fn pose_check(
        &self,
        baseline_id: &str,
        followup_preview: &image::RgbImage,
        area: crate::records::Area,
    ) -> Result<PoseCheck, RecordError> {
        let tol = ComparabilityTolerances::load(self.calibration())?;
        let pcfg = PoseConfig::load(self.calibration())?;
        let pb = self.preview(baseline_id)?;
        let pr = pose::analyze(
            &pb,
            followup_preview,
            &pcfg,
            &PoseOptions {
                area: Some(area),
                ..Default::default()
            },
        );
        Ok(PoseCheck {
            score: (pr.confidence >= pcfg.tolerances.min_confidence).then_some(pr.score),
            confidence: pr.confidence,
            comparable_from: tol.pose_score_warn,
            fails_below: tol.pose_score_fail,
            hint: pose_hint(&pr.hints),
        })
    }

    /// Grade the comparability of two captures.
    pub fn grade_pair(
        &self,
        baseline_id: &str,
        followup_id: &str,
    ) -> Result<PairGrade, RecordError> {
        let b = self.capture(baseline_id)?;
        let f = self.capture(followup_id)?;
        let tol = ComparabilityTolerances::load(self.calibration())?;
        let mut aspects = Vec::new();
        let mut push = |aspect: &str, level: Level, message: String| {
            aspects.push(Aspect {
                aspect: aspect.into(),
                level,
                message,
                hint: None,
            })
        };
        if b.patient_id != f.patient_id {
            push(
                "records",
                Level::Major,
                format!("{} and {} are photos of different patients", b.id, f.id),
            );
        }
        if b.area != f.area || b.view != f.view {
            push(
                "records",
                Level::Major,
                format!(
                    "{} is {}/{}, {} is {}/{}: different areas or views",
                    b.id, b.area, b.view, f.id, f.area, f.view
                ),
            );
        }
        if b.captured_at > f.captured_at {
            push(
                "records",
                Level::Minor,
                format!(
                    "the baseline {} was taken after the follow-up {}",
                    b.id, f.id
                ),
            );
        }
        if let Some(copy) = &f.copy_of {
            push(
                "records",
                Level::Major,
                format!(
                    "the follow-up {} is {}: not a new photo of the patient",
                    f.id,
                    copy.describe()
                ),
            );
        }
        // Pose.
        let pc = self.pose_check(&b.id, &self.preview(&f.id)?, b.area)?;
        let pose_score = pc.score;
        let level = match pc.score {
            None => Level::Major,
            Some(s) if s < pc.fails_below => Level::Major,
            Some(s) if s < pc.comparable_from => Level::Minor,
            Some(_) => Level::Ok,
        };
        let message = pc
            .problem()
            .unwrap_or_else(|| format!("pose score {:.0}/100", pc.score.unwrap_or_default()));
        push("pose", level, message);
        // Lighting.
        let lcfg = LightingConfig::load(self.calibration())?;
        let (lb, lf) = (lighting_of(self, &b, &lcfg), lighting_of(self, &f, &lcfg));
        let (mut exposure_delta_ev, mut cast_delta_e) = (None, None);
        match (lb, lf) {
            (Some((eb, cb)), Some((ef, cf))) => {
                let de = ef - eb;
                let dc = (cf[0] - cb[0]).hypot(cf[1] - cb[1]);
                exposure_delta_ev = Some(de);
                cast_delta_e = Some(dc);
                let level = |v: f64, t: f64| {
                    if v > 2.0 * t {
                        Level::Major
                    } else if v > t {
                        Level::Minor
                    } else {
                        Level::Ok
                    }
                };
                push(
                    "lighting",
                    level(de.abs(), tol.exposure_ev),
                    format!(
                        "exposure differs by {de:+.2} EV on the card (tolerance {:.2})",
                        tol.exposure_ev
                    ),
                );
                push(
                    "lighting",
                    level(dc, tol.cast_delta_e),
                    format!(
                        "colour cast differs by ΔE {dc:.1} on the card (tolerance {:.1})",
                        tol.cast_delta_e
                    ),
                );
            }
            _ => push(
                "lighting",
                Level::Minor,
                "lighting cannot be compared: no grey card or ColorChecker in both photos".into(),
            ),
        }
        // Camera settings.
        let (mut focal_length_delta_pct, mut exposure_settings_delta_ev) = (None, None);
        match (&b.exif, &f.exif) {
            (Some(eb), Some(ef)) => {
                let fl = |e: &ExifSummary| e.focal_length_35mm.map(f64::from).or(e.focal_length_mm);
                if let (Some(a), Some(c)) = (fl(eb), fl(ef)) {
                    let d = (c / a - 1.0) * 100.0;
                    focal_length_delta_pct = Some(d);
                    let lvl = if d.abs() > 3.0 * tol.focal_length_pct {
                        Level::Major
                    } else if d.abs() > tol.focal_length_pct {
                        Level::Minor
                    } else {
                        Level::Ok
                    };
                    push(
                        "camera",
                        lvl,
                        format!(
                            "focal length {a:.0} mm vs {c:.0} mm ({d:+.0} %, tolerance {:.0} %)",
                            tol.focal_length_pct
                        ),
                    );
                }
                if let (Some(a), Some(c)) = (exposure_value(eb), exposure_value(ef)) {
                    let d = c - a;
                    exposure_settings_delta_ev = Some(d);
                    let lvl = if d.abs() > tol.exposure_settings_ev {
                        Level::Minor
                    } else {
                        Level::Ok
                    };
                    push(
                        "camera",
                        lvl,
                        format!("exposure settings differ by {d:+.1} EV (aperture, shutter, ISO)"),
                    );
                }
                if let (Some(a), Some(c)) = (eb.flash_fired, ef.flash_fired)
                    && a != c
                {
                    push(
                        "camera",
                        Level::Major,
                        format!(
                            "flash {} in the baseline but {} in the follow-up",
                            if a { "fired" } else { "off" },
                            if c { "fired" } else { "off" }
                        ),
                    );
                }
                if eb.make != ef.make || eb.model != ef.model {
                    push(
                        "camera",
                        Level::Minor,
                        format!(
                            "different cameras: {} {} and {} {}",
                            eb.make.as_deref().unwrap_or("?"),
                            eb.model.as_deref().unwrap_or("?"),
                            ef.make.as_deref().unwrap_or("?"),
                            ef.model.as_deref().unwrap_or("?")
                        ),
                    );
                }
            }
            _ => push(
                "camera",
                Level::Ok,
                "camera settings not recorded (no EXIF)".into(),
            ),
        }
        // Time of day.
        let tod = crate::timefmt::time_of_day_gap_hours(&b.captured_at, &f.captured_at);
        if let Some(h) = tod {
            let lvl = if h > tol.time_of_day_hours {
                Level::Minor
            } else {
                Level::Ok
            };
            push(
                "time_of_day",
                lvl,
                format!(
                    "taken {h:.1} h apart in the day ({} vs {})",
                    b.time_of_day.as_deref().unwrap_or("?"),
                    f.time_of_day.as_deref().unwrap_or("?")
                ),
            );
        }
        // Confounders.
        let mut confounders: Vec<String> = b
            .confounders
            .iter()
            .chain(&f.confounders)
            .filter(|c| c.disclose)
            .map(|c| c.label.clone())
            .collect();
        confounders.sort();
        confounders.dedup();
        if !confounders.is_empty() {
            push(
                "confounders",
                Level::Minor,
                format!("confounders recorded: {}", confounders.join("; ")),
            );
        }
        if let Some(a) = aspects
            .iter_mut()
            .find(|a| a.aspect == "pose" && a.level != Level::Ok)
        {
            a.hint = pc.hint.clone();
        }
        let majors = aspects.iter().filter(|a| a.level == Level::Major).count();
        let minors = aspects.iter().filter(|a| a.level == Level::Minor).count();
        let grade = match (majors, minors) {
            (0, 0) => 'A',
            (0, 1) => 'B',
            (0, 2) => 'C',
            (0, _) | (1, 0) => 'D',
            _ => 'F',
        };
        Ok(PairGrade {
            baseline_id: b.id,
            followup_id: f.id,
            grade,
            aspects,
            pose_score,
            exposure_delta_ev,
            cast_delta_e,
            focal_length_delta_pct,
            exposure_settings_delta_ev,
            time_of_day_delta_hours: tod,
            confounders,
        })
    }
}
