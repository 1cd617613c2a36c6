//! Live use: re-check a known card cheaply on every frame; detect again only when it moved.

use super::{
    Found, LightingConfig, LightingOptions, LightingProfile, LightingReport, Rect, detect, measure,
    measure_quad,
};
use crate::analysis::color::saturation;
use crate::analysis::frame::Frame;
use crate::analysis::geometry::Pt;

/// A card known from an earlier frame.
#[derive(Clone, Debug)]
enum Known {
    Grey {
        quad: [Pt; 4],
        mean: [f64; 3],
        area_fraction: f64,
    },
    Checker(Box<super::checker::Chart>),
}

/// Frame-rate lighting analysis for the capture station.
#[derive(Clone, Debug)]
pub struct LightingTracker {
    cfg: LightingConfig,
    opts: LightingOptions,
    known: Option<Known>,
    /// Frames since the last full detection that found nothing (to pace re-detection).
    misses: u32,
    last: Option<LightingReport>,
}

/// True when the grey card still sits in `quad`: uniform, neutral enough, not clipped, and (when
/// `last` is given) the same colour as before.
pub(super) fn grey_still_there(
    frame: &Frame<'_>,
    quad: &[Pt; 4],
    cfg: &LightingConfig,
    last: Option<[f64; 3]>,
) -> bool {
    grey_recheck(frame, quad, cfg, last).is_some()
}

/// The card's mean linear colour when it is still in place.
fn grey_recheck(
    frame: &Frame<'_>,
    quad: &[Pt; 4],
    cfg: &LightingConfig,
    last: Option<[f64; 3]>,
) -> Option<[f64; 3]> {
    let s = measure_quad(frame, quad, 0.12, &|_, _| true)?;
    let sat = f64::from(saturation(s.mean.map(|v| v as f32)));
    if s.residual > 0.08 || sat > cfg.grey.max_saturation || s.clipped > 0.02 {
        return None;
    }
    if let Some(prev) = last {
        let ch = |c: [f64; 3]| {
            let t = (c[0] + c[1] + c[2]).max(1e-9);
            [c[0] / t, c[1] / t]
        };
        let (a, b) = (ch(prev), ch(s.mean));
        if (a[0] - b[0]).abs().max((a[1] - b[1]).abs()) >= 0.03 {
            return None;
        }
    }
    Some(s.mean)
}

impl LightingTracker {
    /// A tracker; a profile's card position (same frame size) is tried first.
    pub fn new(
        cfg: LightingConfig,
        profile: Option<LightingProfile>,
        subject: Option<Rect>,
    ) -> Self {
        let known = profile
            .as_ref()
            .filter(|p| p.card_kind == "grey18")
            .map(|p| Known::Grey {
                quad: p.quad,
                mean: [0.0; 3],
                area_fraction: 0.0,
            });
        Self {
            cfg,
            opts: LightingOptions {
                card: None,
                subject,
                profile,
            },
            known,
            misses: 0,
            last: None,
        }
    }

    /// Forget the card (e.g. after the camera changed).
    pub fn reset(&mut self) {
        self.known = None;
        self.misses = 0;
    }

    /// The last report.
    pub fn last(&self) -> Option<&LightingReport> {
        self.last.as_ref()
    }

    /// Analyse a frame: re-check the known card (a few milliseconds at 1080p); run full
    /// detection when it is gone.
    pub fn analyze(&mut self, frame: &Frame<'_>) -> LightingReport {
        let mut rechecked_mean = None;
        let tracked = match &self.known {
            Some(Known::Grey {
                quad,
                mean,
                area_fraction,
            }) => {
                let last = (mean.iter().sum::<f64>() > 0.0).then_some(*mean);
                rechecked_mean = grey_recheck(frame, quad, &self.cfg, last);
                rechecked_mean.map(|_| Found::Grey {
                    quad: *quad,
                    source: "tracked",
                    area_fraction: *area_fraction,
                    lit: None,
                })
            }
            Some(Known::Checker(chart)) => {
                recheck_chart(frame, chart, &self.cfg).map(|c| Found::Checker(Box::new(c)))
            }
            None => None,
        };
        let (found, full) = match tracked {
            Some(f) => (f, false),
            None => {
                self.known = None;
                // Without a card, do not run the full search on every frame.
                if self.misses > 0 && !self.misses.is_multiple_of(5) {
                    self.misses += 1;
                    (Found::None(self.last_reasons()), false)
                } else {
                    let f = detect(frame, &self.cfg);
                    self.misses = if matches!(f, Found::None(_)) {
                        self.misses + 1
                    } else {
                        0
                    };
                    (f, true)
                }
            }
        };
        let remember = match &found {
            Found::Grey {
                quad,
                area_fraction,
                ..
            } => Some((Some(*quad), *area_fraction, None)),
            Found::Checker(c) => Some((None, 0.0, Some(c.clone()))),
            Found::None(_) => None,
        };
        let report = measure(frame, &self.cfg, &self.opts, found, full);
        if let Some((quad, area_fraction, chart)) = remember {
            self.known = match (quad, chart) {
                (_, Some(c)) => Some(Known::Checker(c)),
                (Some(q), None) => {
                    let mean = rechecked_mean
                        .or_else(|| measure_quad(frame, &q, 0.12, &|_, _| true).map(|s| s.mean))
                        .unwrap_or([0.0; 3]);
                    Some(Known::Grey {
                        quad: q,
                        mean,
                        area_fraction,
                    })
                }
                _ => None,
            };
        }
        self.last = Some(report.clone());
        report
    }

    fn last_reasons(&self) -> Vec<String> {
        self.last
            .as_ref()
            .and_then(|r| r.reasons.first().cloned())
            .map(|r| {
                vec![
                    r.trim_start_matches("no card to measure against: ")
                        .to_string(),
                ]
            })
            .unwrap_or_else(|| vec!["no card found".into()])
    }
}

/// Re-sample a known chart's patch centres; keep it when the colours still match.
fn recheck_chart(
    frame: &Frame<'_>,
    chart: &super::checker::Chart,
    cfg: &LightingConfig,
) -> Option<super::checker::Chart> {
    let mut next = chart.clone();
    let half = (chart.centres[0][0] - chart.centres[1][0])
        .hypot(chart.centres[0][1] - chart.centres[1][1])
        * 0.18;
    for (i, c) in chart.centres.iter().enumerate() {
        let (rgb, clip) = super::checker::sample_point(frame, *c, half)?;
        next.patches[i] = rgb;
        next.patch_clipped[i] = clip;
    }
    let err = super::checker::colour_error(&next.patches, &cfg.checker.linear());
    (err < super::checker::MAX_MATCH_ERROR * 1.2).then_some(next)
}
