//! `sameframe app` (the capture station), `sameframe protocol …` and `sameframe camera …`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::Ctx;
use sameframe::app::core::StoreConfig;
use sameframe::app::{AppOptions, BenchSpec};
use sameframe::calibration::{Calibration, store_calibration_dir};
use sameframe::records::protocol;

#[derive(Debug, Default, clap::Args)]
pub struct AppArgs {
    /// Camera index (see `sameframe camera list`; default: the last used, else the first).
    #[arg(long, value_name = "N")]
    pub camera: Option<u32>,
    /// Play a folder of images as the camera (a replay camera).
    #[arg(long, value_name = "DIR", conflicts_with = "demo")]
    pub replay: Option<PathBuf>,
    /// Play the built-in demo sequence even when a camera is present.
    #[arg(long)]
    pub demo: bool,
    /// Frame rate of the camera or the replay.
    #[arg(long, value_name = "N")]
    pub fps: Option<f64>,
    /// Live analyses per second at most.
    #[arg(long, value_name = "N", default_value_t = 15.0)]
    pub analysis_hz: f64,
    /// Initial window size, e.g. 1366x768.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub window: Option<[f32; 2]>,
    /// Benchmark: repaint continuously for N frames, print a frame-time histogram, exit.
    #[arg(long, value_name = "N")]
    pub bench_frames: Option<u64>,
    /// Benchmark: run for S seconds (memory is sampled every minute), then exit.
    #[arg(long, value_name = "S")]
    pub bench_seconds: Option<f64>,
    /// Write the benchmark report (JSON) here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub bench_out: Option<PathBuf>,
    /// Open with this patient selected (e.g. launched from the practice-management system).
    #[arg(long, value_name = "REF")]
    pub patient: Option<String>,
    /// With --patient: the protocol to start (see `sameframe protocol list`).
    #[arg(long, value_name = "KEY", requires = "patient")]
    pub protocol: Option<String>,
    /// With --patient: the visit to capture into.
    #[arg(long, value_name = "VISIT_ID", requires = "patient")]
    pub visit: Option<String>,
}

fn parse_size(s: &str) -> Result<[f32; 2], String> {
    let (w, h) = s
        .split_once(['x', '×'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|v| (200.0..=10000.0).contains(v))
            .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT"))
    };
    Ok([p(w)?, p(h)?])
}

/// Open the capture station.
pub fn app(ctx: &Ctx, a: AppArgs) -> Result<ExitCode> {
    if let Some(dir) = &a.replay
        && !dir.is_dir()
    {
        anyhow::bail!("replay folder {} does not exist", dir.display());
    }
    let store = StoreConfig {
        data_dir: ctx.data_dir.clone(),
        actor: ctx.actor.clone(),
        key_file: ctx.key_file.clone(),
        passphrase: ctx.given_passphrase()?,
        calibration_dir: ctx.calibration_dir.clone(),
    };
    let mut opts = AppOptions::new(store);
    opts.camera = a.camera;
    opts.replay = a.replay;
    opts.demo = a.demo;
    opts.fps = a.fps;
    opts.analysis_hz = if a.analysis_hz > 0.0 {
        a.analysis_hz
    } else {
        15.0
    };
    opts.window = a.window;
    opts.start = a
        .patient
        .map(|patient_ref| sameframe::app::commands::Focus {
            patient_ref,
            protocol: a.protocol,
            visit_id: a.visit,
        });
    if a.bench_frames.is_some() || a.bench_seconds.is_some() {
        opts.bench = Some(BenchSpec {
            frames: a.bench_frames,
            seconds: a.bench_seconds,
            out: a.bench_out,
        });
    }
    sameframe::app::run(opts).context("the capture station stopped")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum ProtocolCmd {
    /// The view protocols (from calibration/protocols.toml).
    List,
    /// Where a patient stands in a protocol: each view's baseline and the captures of a visit.
    Status {
        #[arg(long = "patient", value_name = "REF")]
        patient: String,
        #[arg(long, value_name = "KEY")]
        protocol: String,
        #[arg(long, value_name = "VISIT_ID")]
        visit: Option<String>,
    },
}

pub fn protocol(ctx: &Ctx, cmd: ProtocolCmd) -> Result<ExitCode> {
    match cmd {
        ProtocolCmd::List => {
            let mut dirs = Vec::new();
            if let Some(d) = &ctx.calibration_dir {
                dirs.push(d.clone());
            }
            dirs.push(store_calibration_dir(&ctx.data_dir));
            let list = protocol::protocols(&Calibration::with_dirs(dirs))?;
            ctx.emit(&list, || {
                list.iter()
                    .map(|p| {
                        format!(
                            "{} — {} ({}): {}",
                            p.key,
                            p.label,
                            p.area,
                            p.steps
                                .iter()
                                .map(|s| s.view.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        ProtocolCmd::Status {
            patient,
            protocol,
            visit,
        } => {
            let store = ctx.open()?;
            let s = store.protocol_status(&patient, &protocol, visit.as_deref())?;
            ctx.emit(&s, || {
                let mut out = format!("{} for {}\n", s.label, s.patient_ref);
                for (i, st) in s.steps.iter().enumerate() {
                    out.push_str(&format!(
                        "{} {}. {} — {}{}\n",
                        if st.captured.is_empty() { "○" } else { "✔" },
                        i + 1,
                        st.view,
                        st.baseline_id
                            .as_ref()
                            .map(|b| format!("follows {b}"))
                            .unwrap_or_else(|| "next capture is the baseline".into()),
                        if st.captured.is_empty() {
                            String::new()
                        } else {
                            format!("; captured {}", st.captured.join(", "))
                        }
                    ));
                }
                out
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum CameraCmd {
    /// The cameras found on this machine (the station falls back to the replay camera when
    /// there are none).
    List,
    /// Write the built-in demo sequence's frames as PNG files (a replay folder).
    DemoFrames {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

pub fn camera(ctx: &Ctx, cmd: CameraCmd) -> Result<ExitCode> {
    match cmd {
        CameraCmd::List => {
            let (cameras, error) = match sameframe::camera::native::list() {
                Ok(c) => (c, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            let v = serde_json::json!({ "cameras": cameras, "error": error });
            ctx.emit(&v, || {
                let mut s = cameras
                    .iter()
                    .map(|c| format!("{}: {} ({})", c.index, c.name, c.description))
                    .collect::<Vec<_>>()
                    .join("\n");
                if cameras.is_empty() {
                    s = "no camera found: the station will use the replay camera".into();
                }
                if let Some(e) = &error {
                    s.push_str(&format!("\n({e})"));
                }
                s
            })?;
        }
        CameraCmd::DemoFrames { out } => {
            let files = sameframe::camera::demo::write_keyframes(&out)?;
            let v = serde_json::json!({ "dir": out, "files": files });
            ctx.emit(&v, || {
                format!("wrote {} frames to {}", files.len(), out.display())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
