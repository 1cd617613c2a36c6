//! Cameras behind one trait: real cameras through nokhwa ([`native`]), a folder of images
//! played in a loop ([`replay`]), and the built-in demo sequence ([`demo`]) used when no camera
//! is found. A [`CameraThread`] runs the source on its own named thread, hands each frame to a
//! sink, keeps the latest one, and reopens the source when it fails (a camera unplugged and
//! plugged back in).
//!
//! No GUI types here: the app installs a sink that turns frames into textures.

pub mod demo;
pub mod native;
pub mod replay;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Serialize;

/// What went wrong with a frame source. Each names the camera or folder.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("no camera with index {index} (found {found})")]
    NotFound { index: u32, found: usize },
    #[error("could not open camera {name}: {message}")]
    Open { name: String, message: String },
    #[error("camera {name} stopped delivering frames: {message}")]
    Disconnected { name: String, message: String },
    #[error("could not list cameras: {0}")]
    Query(String),
    #[error("replay folder {path}: {message}")]
    Replay { path: PathBuf, message: String },
    #[error("replay folder {path} holds no readable image (skipped: {skipped})")]
    EmptyReplay { path: PathBuf, skipped: String },
    #[error("demo sequence: {0}")]
    Demo(String),
    #[error("{camera} cannot lock {control}: {message}")]
    Control {
        camera: String,
        control: ControlKind,
        message: String,
    },
}

pub use sameframe_core::camera_info::{
    CameraSettings, ControlKind, ControlState, SourceInfo, SourceKind,
};

/// A frame as a source delivers it.
#[derive(Clone, Debug)]
pub struct RawFrame {
    pub image: Arc<RgbImage>,
    /// The bytes as delivered (a camera's MJPEG frame, a replayed file), when the source has
    /// them: a capture stores these untouched. Otherwise the pixels are stored losslessly.
    pub encoded: Option<Arc<Vec<u8>>>,
}

/// A frame with its sequence number and timing.
#[derive(Clone, Debug)]
pub struct CameraFrame {
    pub seq: u64,
    pub image: Arc<RgbImage>,
    pub encoded: Option<Arc<Vec<u8>>>,
    pub captured_at: chrono::DateTime<chrono::Local>,
    pub received: Instant,
}

/// A source of frames. Created and used on the camera thread only (some camera backends are not
/// `Send`); [`CameraThread`] takes a `Send` opener instead.
pub trait FrameSource {
    /// What this source is.
    fn info(&self) -> SourceInfo;
    /// The next frame; blocks until it is due (sources pace themselves).
    fn next_frame(&mut self) -> Result<RawFrame, CameraError>;
    /// The exposure, white-balance and focus controls, and whether each is locked.
    fn controls(&self) -> Vec<ControlState> {
        ControlKind::ALL
            .iter()
            .map(|&kind| ControlState {
                kind,
                available: false,
                locked: false,
                value: None,
                note: Some("this source has no camera controls".into()),
            })
            .collect()
    }
    /// Lock (manual, held at the current value) or release a control.
    fn set_locked(&mut self, control: ControlKind, _locked: bool) -> Result<(), CameraError> {
        Err(CameraError::Control {
            camera: self.info().name,
            control,
            message: "not supported by this source".into(),
        })
    }
}

/// A camera found on this machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraDesc {
    pub index: u32,
    pub name: String,
    pub description: String,
}

/// Which source to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceSpec {
    Camera {
        index: u32,
        /// Requested resolution and rate (the closest the camera offers is used).
        width: u32,
        height: u32,
        fps: u32,
    },
    Replay {
        dir: PathBuf,
        fps: f64,
    },
    Demo {
        fps: f64,
    },
}

impl SourceSpec {
    /// Open the source (on the calling thread).
    pub fn open(&self) -> Result<Box<dyn FrameSource>, CameraError> {
        Ok(match self {
            SourceSpec::Camera {
                index,
                width,
                height,
                fps,
            } => Box::new(native::NativeCamera::open(*index, *width, *height, *fps)?),
            SourceSpec::Replay { dir, fps } => Box::new(replay::ReplaySource::open(dir, *fps)?),
            SourceSpec::Demo { fps } => Box::new(demo::DemoSource::new(*fps)?),
        })
    }

    /// A short description for banners and logs.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Camera {
                index,
                width,
                height,
                fps,
            } => format!("camera {index} ({width}×{height} @ {fps} fps requested)"),
            SourceSpec::Replay { dir, fps } => {
                format!("replay camera: {} at {fps} fps", dir.display())
            }
            SourceSpec::Demo { fps } => {
                format!("replay camera: built-in demo sequence at {fps} fps")
            }
        }
    }

    /// True for the replay camera (a folder or the demo).
    pub fn is_replay(&self) -> bool {
        !matches!(self, SourceSpec::Camera { .. })
    }
}

/// The source to start with: the replay folder when given; else camera `camera` (or the first
/// camera); else the built-in demo sequence, with the reason it was chosen.
pub fn choose_source(
    camera: Option<u32>,
    replay: Option<PathBuf>,
    fps: Option<f64>,
    cameras: &Result<Vec<CameraDesc>, CameraError>,
) -> (SourceSpec, Option<String>) {
    let replay_fps = fps.unwrap_or(30.0).clamp(0.2, 240.0);
    if let Some(dir) = replay {
        return (
            SourceSpec::Replay {
                dir,
                fps: replay_fps,
            },
            None,
        );
    }
    let found = match cameras {
        Ok(list) => list.clone(),
        Err(e) => {
            return (
                SourceSpec::Demo { fps: replay_fps },
                Some(format!("{e}: using the replay camera")),
            );
        }
    };
    let pick = match camera {
        Some(i) => found.iter().find(|c| c.index == i),
        None => found.first(),
    };
    match pick {
        Some(c) => (
            SourceSpec::Camera {
                index: c.index,
                width: 1920,
                height: 1080,
                fps: fps.map(|f| f.round() as u32).unwrap_or(30).max(1),
            },
            None,
        ),
        None if found.is_empty() => (
            SourceSpec::Demo { fps: replay_fps },
            Some("no camera found: using the replay camera".into()),
        ),
        None => (
            SourceSpec::Demo { fps: replay_fps },
            Some(format!(
                "no camera with index {} (found {}): using the replay camera",
                camera.unwrap_or(0),
                found.len()
            )),
        ),
    }
}

/// The state of the camera thread.
#[derive(Clone, Debug, PartialEq)]
pub enum CameraStatus {
    Starting,
    Running,
    /// The source failed; the thread retries every second.
    Lost {
        message: String,
        since: Instant,
    },
    Stopped,
}

enum CameraCmd {
    SetLocked(ControlKind, bool),
}

struct Shared {
    status: Mutex<CameraStatus>,
    latest: Mutex<Option<Arc<CameraFrame>>>,
    settings: Mutex<Option<CameraSettings>>,
    last_error: Mutex<Option<String>>,
    frames: AtomicU64,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere never poisons the camera's state for good.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens a source on the camera thread (again after a failure).
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CameraError> + Send>;

/// Receives each frame on the camera thread (the app turns it into a texture there).
pub type Sink = Box<dyn FnMut(&Arc<CameraFrame>) + Send>;

/// How long the thread waits before reopening a failed source.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A frame source running on its own thread.
pub struct CameraThread {
    shared: Arc<Shared>,
    cmd: Sender<CameraCmd>,
    join: Option<JoinHandle<()>>,
}

impl CameraThread {
    /// Start `open` on a thread named `sameframe-camera`; each frame goes to `sink`.
    pub fn spawn(mut open: Opener, mut sink: Sink) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            status: Mutex::new(CameraStatus::Starting),
            latest: Mutex::new(None),
            settings: Mutex::new(None),
            last_error: Mutex::new(None),
            frames: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = channel();
        let sh = shared.clone();
        let join = std::thread::Builder::new()
            .name("sameframe-camera".into())
            .spawn(move || run(&mut open, &mut sink, &sh, &rx))?;
        Ok(Self {
            shared,
            cmd: tx,
            join: Some(join),
        })
    }

    /// The latest frame.
    pub fn latest(&self) -> Option<Arc<CameraFrame>> {
        lock(&self.shared.latest).clone()
    }

    /// Frames delivered so far.
    pub fn frames(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }

    /// The thread's state.
    pub fn status(&self) -> CameraStatus {
        lock(&self.shared.status).clone()
    }

    /// The running source's description and controls.
    pub fn settings(&self) -> Option<CameraSettings> {
        lock(&self.shared.settings).clone()
    }

    /// The last control error (taken: reported once).
    pub fn take_error(&self) -> Option<String> {
        lock(&self.shared.last_error).take()
    }

    /// Lock or release a control.
    pub fn set_locked(&self, control: ControlKind, locked: bool) {
        let _ = self.cmd.send(CameraCmd::SetLocked(control, locked));
    }
}

impl Drop for CameraThread {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn run(open: &mut Opener, sink: &mut Sink, sh: &Shared, rx: &Receiver<CameraCmd>) {
    let mut seq = 0u64;
    'outer: while !sh.stop.load(Ordering::Relaxed) {
        let mut src = match open() {
            Ok(s) => s,
            Err(e) => {
                let mut st = lock(&sh.status);
                let since = match &*st {
                    CameraStatus::Lost { since, .. } => *since,
                    _ => Instant::now(),
                };
                *st = CameraStatus::Lost {
                    message: e.to_string(),
                    since,
                };
                drop(st);
                let until = Instant::now() + RETRY_EVERY;
                while Instant::now() < until {
                    if sh.stop.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                continue;
            }
        };
        *lock(&sh.settings) = Some(CameraSettings {
            info: src.info(),
            controls: src.controls(),
        });
        *lock(&sh.status) = CameraStatus::Running;
        loop {
            if sh.stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            while let Ok(CameraCmd::SetLocked(c, on)) = rx.try_recv() {
                if let Err(e) = src.set_locked(c, on) {
                    *lock(&sh.last_error) = Some(e.to_string());
                }
                *lock(&sh.settings) = Some(CameraSettings {
                    info: src.info(),
                    controls: src.controls(),
                });
            }
            match src.next_frame() {
                Ok(raw) => {
                    seq += 1;
                    let frame = Arc::new(CameraFrame {
                        seq,
                        image: raw.image,
                        encoded: raw.encoded,
                        captured_at: chrono::Local::now(),
                        received: Instant::now(),
                    });
                    sink(&frame);
                    *lock(&sh.latest) = Some(frame);
                    sh.frames.fetch_add(1, Ordering::Relaxed);
                    if !matches!(*lock(&sh.status), CameraStatus::Running) {
                        *lock(&sh.status) = CameraStatus::Running;
                    }
                }
                Err(e) => {
                    *lock(&sh.status) = CameraStatus::Lost {
                        message: e.to_string(),
                        since: Instant::now(),
                    };
                    break;
                }
            }
        }
        drop(src);
        let until = Instant::now() + RETRY_EVERY;
        while Instant::now() < until && !sh.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    *lock(&sh.status) = CameraStatus::Stopped;
}

/// Sleep until `due`, then return the next due time `period` later (catching up without
/// bursts when late).
pub(crate) fn pace(due: Instant, period: Duration) -> Instant {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
        due + period
    } else {
        now + period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that fails after `fail_after` frames; the opener fails `down` times before it
    /// comes back — a camera unplugged and plugged in again.
    struct Flaky {
        left: u32,
    }

    impl FrameSource for Flaky {
        fn info(&self) -> SourceInfo {
            SourceInfo {
                kind: SourceKind::Camera,
                name: "flaky".into(),
                detail: String::new(),
                width: 4,
                height: 3,
                fps: 100.0,
            }
        }
        fn next_frame(&mut self) -> Result<RawFrame, CameraError> {
            std::thread::sleep(Duration::from_millis(5));
            if self.left == 0 {
                return Err(CameraError::Disconnected {
                    name: "flaky".into(),
                    message: "unplugged".into(),
                });
            }
            self.left -= 1;
            Ok(RawFrame {
                image: Arc::new(RgbImage::new(4, 3)),
                encoded: None,
            })
        }
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_lost_camera_is_reported_and_recovers() {
        let opens = Arc::new(AtomicU64::new(0));
        let o = opens.clone();
        let opener: Opener = Box::new(move || {
            let n = o.fetch_add(1, Ordering::SeqCst);
            match n {
                0 => Ok(Box::new(Flaky { left: 5 }) as Box<dyn FrameSource>),
                1 => Err(CameraError::Open {
                    name: "flaky".into(),
                    message: "no such device".into(),
                }),
                _ => Ok(Box::new(Flaky { left: u32::MAX }) as Box<dyn FrameSource>),
            }
        });
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let cam = CameraThread::spawn(
            opener,
            Box::new(move |_f| {
                s.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        wait_for("the loss", || {
            matches!(cam.status(), CameraStatus::Lost { .. })
        });
        let CameraStatus::Lost { message, .. } = cam.status() else {
            unreachable!()
        };
        assert!(message.contains("flaky"), "{message}");
        let before = cam.latest().unwrap().seq;
        assert_eq!(before, 5);
        wait_for("recovery", || {
            cam.status() == CameraStatus::Running && cam.latest().is_some_and(|f| f.seq > 7)
        });
        assert!(opens.load(Ordering::SeqCst) >= 3);
        assert_eq!(seen.load(Ordering::SeqCst), cam.frames());
        drop(cam);
    }

    #[test]
    fn source_choice_prefers_replay_then_camera_then_demo() {
        let none: Result<Vec<CameraDesc>, CameraError> = Ok(vec![]);
        let (s, why) = choose_source(None, Some("/r".into()), Some(10.0), &none);
        assert_eq!(
            s,
            SourceSpec::Replay {
                dir: "/r".into(),
                fps: 10.0
            }
        );
        assert!(why.is_none());
        let (s, why) = choose_source(None, None, None, &none);
        assert!(matches!(s, SourceSpec::Demo { .. }));
        assert!(why.unwrap().contains("no camera found"));
        let one = Ok(vec![CameraDesc {
            index: 2,
            name: "USB".into(),
            description: String::new(),
        }]);
        let (s, _) = choose_source(None, None, None, &one);
        assert!(matches!(s, SourceSpec::Camera { index: 2, .. }));
        let (s, why) = choose_source(Some(7), None, None, &one);
        assert!(matches!(s, SourceSpec::Demo { .. }));
        assert!(why.unwrap().contains("index 7"));
        let err = Err(CameraError::Query("backend failed".into()));
        let (s, why) = choose_source(None, None, None, &err);
        assert!(matches!(s, SourceSpec::Demo { .. }) && why.unwrap().contains("backend failed"));
    }
}
