//! `sameframe app --bench-frames N` / `--bench-seconds S`: the real window, repainting as fast
//! as it can, with the live preview, overlays and analysis running. Reports a histogram of
//! frame intervals (what the user sees), the UI thread's own time per frame, the guidance
//! (analysis) rate, the camera rate and resident memory at the start and end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::BenchSpec;

/// Frames skipped before measuring (start-up, first textures, first baseline).
const WARMUP: u64 = 60;

/// Resident memory of this process in MiB (Linux; None elsewhere).
pub fn rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// One bucket of the histogram.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Bucket {
    pub upto_ms: f64,
    pub frames: u64,
}

/// The summary printed at the end.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub frames: u64,
    pub seconds: f64,
    pub fps_mean: f64,
    pub frame_ms_p50: f64,
    pub frame_ms_p95: f64,
    pub frame_ms_p99: f64,
    pub frame_ms_max: f64,
    pub ui_ms_p50: f64,
    pub ui_ms_p99: f64,
    pub guidance_hz: f64,
    pub camera_fps: f64,
    pub rss_start_mib: Option<f64>,
    pub rss_end_mib: Option<f64>,
    /// Resident memory sampled every minute of a long run.
    pub rss_timeline_mib: Vec<f64>,
    pub histogram: Vec<Bucket>,
}

/// Frame timing state.
pub struct Bench {
    spec: BenchSpec,
    seen: u64,
    last: Option<Instant>,
    start: Option<Instant>,
    intervals: Vec<f64>,
    ui: Vec<f64>,
    results0: u64,
    results: u64,
    camera0: u64,
    camera: u64,
    rss_start: Option<f64>,
    timeline: Vec<f64>,
    next_sample: Option<Instant>,
}

impl Bench {
    pub fn new(spec: BenchSpec) -> Self {
        Self {
            spec,
            seen: 0,
            last: None,
            start: None,
            intervals: Vec::new(),
            ui: Vec::new(),
            results0: 0,
            results: 0,
            camera0: 0,
            camera: 0,
            rss_start: None,
            timeline: Vec::new(),
            next_sample: None,
        }
    }

    /// Record a frame (`ui` = time spent building it); true when the run is complete.
    pub fn frame(&mut self, ui: Duration, results: u64, camera_frames: u64) -> bool {
        let now = Instant::now();
        self.seen += 1;
        if self.seen <= WARMUP {
            self.last = Some(now);
            self.results0 = results;
            self.camera0 = camera_frames;
            return false;
        }
        if self.start.is_none() {
            self.start = Some(now);
            self.rss_start = rss_mib();
            self.next_sample = Some(now + Duration::from_secs(60));
        }
        if let Some(l) = self.last {
            self.intervals.push((now - l).as_secs_f64() * 1e3);
        }
        self.ui.push(ui.as_secs_f64() * 1e3);
        self.last = Some(now);
        self.results = results;
        self.camera = camera_frames;
        if self.next_sample.is_some_and(|t| now >= t) {
            if let Some(r) = rss_mib() {
                self.timeline.push(r);
                eprintln!(
                    "bench: {:.0} s, rss {r:.1} MiB",
                    self.start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0)
                );
            }
            self.next_sample = Some(now + Duration::from_secs(60));
        }
        let elapsed = self.start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
        let by_frames = self
            .spec
            .frames
            .is_some_and(|n| self.intervals.len() as u64 >= n);
        let by_time = self.spec.seconds.is_some_and(|s| elapsed >= s);
        by_frames || by_time
    }

    /// The summary so far.
    pub fn report(&self) -> Report {
        let q = |v: &[f64], p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            let mut s = v.to_vec();
            s.sort_by(f64::total_cmp);
            s[((s.len() - 1) as f64 * p).round() as usize]
        };
        let seconds = self.start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
        let edges = [
            4.0,
            8.0,
            12.0,
            16.7,
            20.0,
            25.0,
            33.3,
            50.0,
            100.0,
            f64::INFINITY,
        ];
        let histogram = edges
            .iter()
            .enumerate()
            .map(|(i, &hi)| {
                let lo = if i == 0 { 0.0 } else { edges[i - 1] };
                Bucket {
                    upto_ms: if hi.is_finite() { hi } else { 1e9 },
                    frames: self
                        .intervals
                        .iter()
                        .filter(|&&v| v > lo && v <= hi)
                        .count() as u64,
                }
            })
            .collect();
        let per_s = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Report {
            frames: self.intervals.len() as u64,
            seconds,
            fps_mean: per_s(self.intervals.len() as u64),
            frame_ms_p50: q(&self.intervals, 0.5),
            frame_ms_p95: q(&self.intervals, 0.95),
            frame_ms_p99: q(&self.intervals, 0.99),
            frame_ms_max: self.intervals.iter().copied().fold(0.0, f64::max),
            ui_ms_p50: q(&self.ui, 0.5),
            ui_ms_p99: q(&self.ui, 0.99),
            guidance_hz: per_s(self.results.saturating_sub(self.results0)),
            camera_fps: per_s(self.camera.saturating_sub(self.camera0)),
            rss_start_mib: self.rss_start,
            rss_end_mib: rss_mib(),
            rss_timeline_mib: self.timeline.clone(),
            histogram,
        }
    }

    /// Print (or write) the report.
    pub fn finish(&self) {
        let r = self.report();
        let json = serde_json::to_string_pretty(&r).unwrap_or_default();
        match &self.spec.out {
            Some(p) => {
                if let Err(e) = std::fs::write(p, &json) {
                    eprintln!("could not write bench report {}: {e}", p.display());
                }
            }
            None => println!("{json}"),
        }
        eprintln!("{}", human(&r));
    }

    /// Where the report goes.
    pub fn out(&self) -> Option<&PathBuf> {
        self.spec.out.as_ref()
    }
}

/// The report as text.
pub fn human(r: &Report) -> String {
    let mut s = format!(
        "{} frames in {:.1} s: {:.0} fps mean; frame time p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; UI thread p50 {:.2} ms, p99 {:.2} ms; guidance {:.1} Hz; camera {:.1} fps; RSS {} → {} MiB\n",
        r.frames,
        r.seconds,
        r.fps_mean,
        r.frame_ms_p50,
        r.frame_ms_p95,
        r.frame_ms_p99,
        r.frame_ms_max,
        r.ui_ms_p50,
        r.ui_ms_p99,
        r.guidance_hz,
        r.camera_fps,
        r.rss_start_mib
            .map(|v| format!("{v:.1}"))
            .unwrap_or("?".into()),
        r.rss_end_mib
            .map(|v| format!("{v:.1}"))
            .unwrap_or("?".into()),
    );
    for b in &r.histogram {
        let label = if b.upto_ms >= 1e8 {
            "   >100 ms".to_string()
        } else {
            format!("≤{:>6.1} ms", b.upto_ms)
        };
        s.push_str(&format!("  {label}: {}\n", b.frames));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frames_after_warmup_and_stops() {
        let mut b = Bench::new(BenchSpec {
            frames: Some(5),
            seconds: None,
            out: None,
        });
        let mut done = false;
        for i in 0..(WARMUP + 10) {
            std::thread::sleep(Duration::from_micros(200));
            if b.frame(Duration::from_micros(100), i, i) {
                done = true;
                break;
            }
        }
        assert!(done);
        let r = b.report();
        assert_eq!(r.frames, 5);
        assert_eq!(r.histogram.iter().map(|b| b.frames).sum::<u64>(), 5);
        assert!(r.frame_ms_p50 > 0.0);
    }
}
