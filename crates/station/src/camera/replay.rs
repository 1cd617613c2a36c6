//! The replay camera: a folder of images (sorted by name) played in a loop at a set rate, as a
//! stand-in for a camera in tests and demos — or as a hot folder a tethered camera writes to.
//! Each file is checked and decoded once and kept while the cache budget allows; unreadable
//! files are skipped and named. A folder that disappears makes the camera "lost" until it
//! returns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::{CameraError, FrameSource, RawFrame, SourceInfo, SourceKind, pace};
use sameframe_core::calibration::Limits;
use sameframe_core::decode::Request;
use sameframe_core::ingest;

/// Decoded frames kept in memory at most (bytes of RGB).
pub const CACHE_BUDGET: usize = 768 << 20;

const EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "tif", "tiff"];

/// The image files of `dir`, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, CameraError> {
    let rd = std::fs::read_dir(dir).map_err(|e| CameraError::Replay {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

struct Entry {
    image: Arc<RgbImage>,
    bytes: Arc<Vec<u8>>,
}

/// A folder of images played in a loop.
pub struct ReplaySource {
    dir: PathBuf,
    files: Vec<PathBuf>,
    skipped: Vec<String>,
    cache: HashMap<PathBuf, Entry>,
    cached_bytes: usize,
    next: usize,
    period: Duration,
    due: Instant,
    fps: f64,
    size: (u32, u32),
    limits: Limits,
}

impl ReplaySource {
    /// Open `dir`, reading its first image to learn the frame size.
    pub fn open(dir: &Path, fps: f64) -> Result<Self, CameraError> {
        let fps = if fps.is_finite() {
            fps.clamp(0.2, 240.0)
        } else {
            30.0
        };
        let files = list_images(dir)?;
        let mut me = Self {
            dir: dir.to_path_buf(),
            files,
            skipped: Vec::new(),
            cache: HashMap::new(),
            cached_bytes: 0,
            next: 0,
            period: Duration::from_secs_f64(1.0 / fps),
            due: Instant::now(),
            fps,
            size: (0, 0),
            limits: Limits::default(),
        };
        let first = me.advance()?;
        me.size = first.image.dimensions();
        me.next = 0; // start the loop at the first file
        Ok(me)
    }

    fn load(&mut self, path: &Path) -> Result<Entry, String> {
        if let Some(e) = self.cache.get(path) {
            return Ok(Entry {
                image: e.image.clone(),
                bytes: e.bytes.clone(),
            });
        }
        let subject = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = ingest::read_file(path, &self.limits).map_err(|e| e.to_string())?;
        let (kind, _, _) =
            ingest::check_header(&bytes, &subject, &self.limits).map_err(|e| e.to_string())?;
        ingest::check_structure(&bytes, kind, &subject).map_err(|e| e.to_string())?;
        let img = ingest::decode(&bytes, kind, &subject, &self.limits, Request::FULL)
            .map_err(|e| e.to_string())?
            .image;
        let orientation = ingest::read_exif(&bytes).0.and_then(|e| e.orientation);
        let image = Arc::new(ingest::apply_orientation(img, orientation).to_rgb8());
        let entry = Entry {
            image,
            bytes: Arc::new(bytes),
        };
        let cost = entry.image.as_raw().len() + entry.bytes.len();
        if self.cached_bytes + cost <= CACHE_BUDGET {
            self.cached_bytes += cost;
            self.cache.insert(
                path.to_path_buf(),
                Entry {
                    image: entry.image.clone(),
                    bytes: entry.bytes.clone(),
                },
            );
        }
        Ok(entry)
    }

    /// The next readable frame in the loop, skipping (and remembering) unreadable files.
    fn advance(&mut self) -> Result<Entry, CameraError> {
        if !self.dir.is_dir() {
            return Err(CameraError::Replay {
                path: self.dir.clone(),
                message: "the folder is gone".into(),
            });
        }
        for _ in 0..self.files.len() {
            let i = self.next % self.files.len();
            self.next = (i + 1) % self.files.len();
            let path = self.files[i].clone();
            match self.load(&path) {
                Ok(e) => return Ok(e),
                Err(message) => {
                    if !self.skipped.contains(&message) {
                        self.skipped.push(message);
                    }
                    self.files.remove(i);
                    self.next = if self.files.is_empty() {
                        0
                    } else {
                        i % self.files.len()
                    };
                    if self.files.is_empty() {
                        break;
                    }
                }
            }
        }
        Err(CameraError::EmptyReplay {
            path: self.dir.clone(),
            skipped: if self.skipped.is_empty() {
                "none".into()
            } else {
                self.skipped.join("; ")
            },
        })
    }

    /// Files skipped as unreadable, with why.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

impl FrameSource for ReplaySource {
    fn info(&self) -> SourceInfo {
        let mut detail = format!("{} ({} images)", self.dir.display(), self.files.len());
        if !self.skipped.is_empty() {
            detail.push_str(&format!("; skipped {}", self.skipped.join("; ")));
        }
        SourceInfo {
            kind: SourceKind::Replay,
            name: "replay camera".into(),
            detail,
            width: self.size.0,
            height: self.size.1,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self) -> Result<RawFrame, CameraError> {
        self.due = pace(self.due, self.period);
        let e = self.advance()?;
        Ok(RawFrame {
            image: e.image,
            encoded: Some(e.bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, v: u8) -> Vec<u8> {
        let img = RgbImage::from_pixel(w, h, image::Rgb([v, v, v]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn plays_in_name_order_and_loops_skipping_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.png"), png(8, 6, 20)).unwrap();
        std::fs::write(dir.path().join("a.png"), png(8, 6, 10)).unwrap();
        std::fs::write(dir.path().join("c.jpg"), b"not a jpeg at all").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let mut r = ReplaySource::open(dir.path(), 200.0).unwrap();
        let mut seen = Vec::new();
        for _ in 0..5 {
            let f = r.next_frame().unwrap();
            seen.push(f.image.get_pixel(0, 0).0[0]);
            assert!(f.encoded.is_some());
        }
        assert_eq!(seen, vec![10, 20, 10, 20, 10]);
        assert_eq!(r.skipped().len(), 1);
        assert!(r.skipped()[0].contains("c.jpg"), "{:?}", r.skipped());
        let info = r.info();
        assert_eq!((info.width, info.height), (8, 6));
        assert!(info.detail.contains("c.jpg"));
    }

    #[test]
    fn an_empty_or_missing_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.png"), b"\x89PNG\r\n\x1a\ntruncated").unwrap();
        let e = ReplaySource::open(dir.path(), 30.0).err().unwrap();
        assert!(e.to_string().contains("no readable image") && e.to_string().contains("x.png"));
        let e = ReplaySource::open(&dir.path().join("nope"), 30.0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn a_vanished_folder_is_a_lost_camera() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("frames");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("a.png"), png(4, 4, 1)).unwrap();
        let mut r = ReplaySource::open(&sub, 200.0).unwrap();
        r.next_frame().unwrap();
        std::fs::rename(&sub, dir.path().join("moved")).unwrap();
        let e = r.next_frame().err().unwrap();
        assert!(e.to_string().contains("gone"), "{e}");
    }
}
