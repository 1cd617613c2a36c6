//! Running a review over files and folders, and the JSON and HTML reports.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::checks::{self, Finding, ImageReport, Severity, Verdict};
use super::index::Index;
use super::matching;
use crate::calibration::Limits;
use crate::ingest::IngestError;
use crate::records::RecordError;
use crate::store::Store;

/// A file read, decoded and prepared for matching (its hash, image and query), or why not.
type Prepared = Result<(String, Published, matching::Query), NotReviewed>;

/// How many files a review worker may run ahead of the checks…
const AHEAD: usize = 4;
/// …and what the checks set when they stop.
const STOP: usize = usize::MAX / 2;

/// What a review worker sends back: the file's place in the list, its prepared form, and its
/// sources (none when it could not be prepared).
type Worked = (
    usize,
    Prepared,
    Option<Result<Vec<matching::SourceMatch>, RecordError>>,
);

/// Totals over a review.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub images: usize,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    /// Files that could not be read as images (reported and skipped).
    pub unreadable: usize,
    /// Files holding several pictures (animations, multi-page TIFF): failed, since a frame
    /// other than the first could show a patient whose consent does not cover it.
    #[serde(default)]
    pub refused: usize,
    pub without_source: usize,
    pub sources_found: usize,
    pub consent_failures: usize,
    pub takedowns: usize,
    pub edits_flagged: usize,
    pub captures_indexed: usize,
    /// Captures with no fingerprint, or one from an older recipe (`sameframe fingerprint
    /// backfill` brings them up to date): images made from them may be missed. The review
    /// makes what is missing first, so this counts only captures whose data could not be made.
    #[serde(default)]
    pub captures_to_backfill: usize,
    /// Captures whose preview and fingerprint the review made first (deferred at import, or
    /// from an older recipe), so that none is missed.
    #[serde(default)]
    pub derived_before_review: usize,
}

/// The review.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Review {
    pub images: Vec<ImageReport>,
    pub summary: Summary,
    pub reviewed_at: String,
}

/// Image files under the given paths (folders are walked, hidden entries skipped), sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RecordError> {
    /// Walk a folder: links to folders are not followed (a link back up would loop), and a
    /// file reached twice (through a link to it) is listed once.
    fn walk(
        p: &Path,
        out: &mut Vec<PathBuf>,
        seen: &mut std::collections::HashSet<PathBuf>,
    ) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let hidden = e
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            let link = std::fs::symlink_metadata(&e)?.file_type().is_symlink();
            if e.is_dir() {
                if !link {
                    walk(&e, out, seen)?;
                }
            } else {
                add(&e, out, seen);
            }
        }
        Ok(())
    }
    fn add(p: &Path, out: &mut Vec<PathBuf>, seen: &mut std::collections::HashSet<PathBuf>) {
        // Captions travel beside their images.
        if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("txt")) {
            return;
        }
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if seen.insert(key) {
            out.push(p.to_path_buf());
        }
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in paths {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(RecordError::ReadFile {
                path: p.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        if p.is_dir() {
            walk(p, &mut out, &mut seen).map_err(|source| RecordError::ReadFile {
                path: p.clone(),
                source,
            })?;
        } else {
            add(p, &mut out, &mut seen);
        }
    }
    Ok(out)
}

/// The long side a published image is reviewed at (larger ones are reduced: matching and
/// the edit checks work at web and print sizes, and memory stays bounded).
pub const REVIEW_SIDE: u32 = 2048;

/// A published image, decoded for review.
#[derive(Clone, Debug)]
pub struct Published {
    /// Upright, at most [`REVIEW_SIDE`] on its long side.
    pub image: image::RgbImage,
    /// The file's own size, upright.
    pub width: u32,
    pub height: u32,
    /// What its provenance manifest says (read by a review that was given a reader).
    pub manifest: crate::publish::provenance::ManifestReading,
}

impl Published {
    /// File pixels per reviewed pixel.
    pub fn scale(&self) -> f64 {
        f64::from(self.width) / f64::from(self.image.width().max(1))
    }
}

/// The format of a published file, from its first bytes.
fn published_format(bytes: &[u8], subject: &str) -> Result<image::ImageFormat, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::Empty {
            subject: subject.to_string(),
        });
    }
    image::guess_format(bytes).map_err(|_| IngestError::UnsupportedFormat {
        subject: subject.to_string(),
        found: "not an image file sameframe reads (JPEG, PNG, TIFF, WebP, GIF)".into(),
    })
}

/// Plan the decode of a published file from its header (see [`crate::decode::plan`]).
pub fn plan_published(
    f: &mut std::fs::File,
    subject: &str,
    limits: &Limits,
) -> Result<crate::decode::Plan, IngestError> {
    use std::io::{Read, Seek};
    let io = |e: std::io::Error| IngestError::Unreadable {
        subject: subject.to_string(),
        message: e.to_string(),
    };
    let mut head = Vec::new();
    f.by_ref().take(64).read_to_end(&mut head).map_err(io)?;
    let fmt = published_format(&head, subject)?;
    f.rewind().map_err(io)?;
    let r = std::io::BufReader::new(&mut *f);
    crate::decode::plan(
        r,
        fmt,
        subject,
        limits,
        crate::decode::Request::fit(REVIEW_SIDE),
    )
}

/// Decode a published image (any supported format, upright), within the store's decoder
/// limits, reduced to [`REVIEW_SIDE`]; a truncated or corrupt JPEG or PNG, or a file that
/// holds several pictures, is an error. Errors name `subject`.
pub fn decode_published(
    bytes: &[u8],
    subject: &str,
    limits: &Limits,
) -> Result<Published, IngestError> {
    let fmt = published_format(bytes, subject)?;
    // A JPEG or PNG cut short still decodes (the rest painted grey): it is refused, as at
    // import, rather than reviewed as a picture with no source.
    let kind = match fmt {
        image::ImageFormat::Jpeg => Some(crate::ingest::ImageKind::Jpeg),
        image::ImageFormat::Png => Some(crate::ingest::ImageKind::Png),
        _ => None,
    };
    if let Some(kind) = kind {
        crate::ingest::check_structure(bytes, kind, subject)?;
    }
    let d = crate::decode::decode(
        bytes,
        fmt,
        subject,
        limits,
        crate::decode::Request::fit(REVIEW_SIDE),
    )?;
    let (exif, _) = crate::ingest::read_exif(bytes);
    let orientation = exif.and_then(|e| e.orientation);
    let (width, height) = if matches!(orientation, Some(5..=8)) {
        (d.height, d.width)
    } else {
        (d.width, d.height)
    };
    Ok(Published {
        image: crate::ingest::apply_orientation(d.image, orientation).to_rgb8(),
        width,
        height,
        manifest: crate::publish::provenance::ManifestReading::None,
    })
}

/// Why a file was not reviewed: it could not be read as one picture (a warning), or it holds
/// several pictures that cannot all be traced (a failure).
#[derive(Debug)]
enum NotReviewed {
    Unreadable(String),
    Refused(String),
}

impl From<IngestError> for NotReviewed {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::MultiFrame { .. } => NotReviewed::Refused(e.to_string()),
            e => NotReviewed::Unreadable(e.to_string()),
        }
    }
}

/// Read, plan and decode one published file, holding a share of the decode memory budget
/// from before the read until the decode is done; returns its hash and the decoded image.
fn read_published(
    f: &Path,
    limits: &Limits,
    provenance: Option<&dyn crate::publish::provenance::ProvenanceReader>,
) -> Result<(String, Published), IngestError> {
    let subject = f.display().to_string();
    let (mut file, len) = crate::ingest::open_file(f, limits)?;
    let plan = plan_published(&mut file, &subject, limits)?;
    let _share =
        crate::decode::gate::enter(len.saturating_add(plan.need), crate::decode::budget(limits));
    let bytes = crate::ingest::read_opened(file, f, limits)?;
    let mut published = decode_published(&bytes, &subject, limits)?;
    if let Some(r) = provenance {
        published.manifest = r.read(&bytes);
    }
    Ok((crate::ids::sha256_hex(&bytes), published))
}

impl Store {
    /// The sources of a published image: by its pixels, and, when it carries a valid manifest
    /// of this clinic for this store, the captures the manifest names wherever the pixels
    /// agree with it (the search prefers them among look-alikes).
    fn sources_of(
        &self,
        index: &Index,
        q: &matching::Query,
        p: &Published,
    ) -> Result<Vec<matching::SourceMatch>, RecordError> {
        let named = p.manifest.our_captures();
        let mut found = self.find_sources_preferring(index, q, &p.image, &named)?;
        let claim = match &p.manifest {
            crate::publish::provenance::ManifestReading::Valid {
                ours: true,
                claim: Some(c),
                ..
            } if c.store_id == self.store_id() => c,
            _ => return Ok(found),
        };
        let verified = self.verify_claimed(p, claim)?;
        found.retain(|m| {
            !verified
                .iter()
                .any(|v| v.capture_id == m.capture_id || matching::iou(&v.panel, &m.panel) > 0.3)
        });
        // In any order: the checks put sources in reading order.
        found.extend(verified);
        Ok(found)
    }

    /// Review published images. `progress(done, total)` is called as files complete.
    pub fn review(
        &self,
        paths: &[PathBuf],
        caption_dir: Option<&Path>,
        opts: &checks::ReviewOptions,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Review, RecordError> {
        let files = collect_files(paths)?;
        // Nothing is silently missing: what imports deferred is made now.
        let derived_before_review = self.derive_pending()?;
        let index: Index = self.review_index()?;
        let limits = self.calibration().limits()?;
        let mut images = Vec::with_capacity(files.len());
        let mut summary = Summary {
            captures_indexed: index.len(),
            captures_to_backfill: self.fingerprints_to_backfill()?,
            derived_before_review,
            ..Default::default()
        };
        // Decoding, feature extraction and matching run on one worker per core, each with
        // its own read-only handle on the store, a file at a time; this thread checks the
        // results in order. At most a few decoded images wait at once (published images can
        // be large).
        let prepare = |f: &PathBuf| -> Prepared {
            let (sha, published) = read_published(f, &limits, opts.provenance)?;
            let img = &published.image;
            if img.width() < 16 || img.height() < 16 {
                return Err(NotReviewed::Unreadable(format!(
                    "{}×{} is too small to review",
                    img.width(),
                    img.height()
                )));
            }
            let q = matching::prepare(img);
            Ok((sha, published, q))
        };
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len())
            .max(1);
        let readers = (0..workers)
            .map(|_| self.reader())
            .collect::<Result<Vec<Store>, _>>()?;
        // Files handed out, and files checked: a worker does not run more than a few files
        // ahead of the checks (a slow file would otherwise leave every later one waiting,
        // decoded, in memory).
        let (next, checked) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (files, prepare, index, next, checked) = (&files, &prepare, &index, &next, &checked);
        std::thread::scope(|s| -> Result<(), RecordError> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Worked>(4);
            for (w, reader) in readers.into_iter().enumerate() {
                let tx = tx.clone();
                std::thread::Builder::new()
                    .name(format!("review-{w}"))
                    .spawn_scoped(s, move || {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(f) = files.get(i) else { break };
                            let mut c = checked.load(Ordering::Acquire);
                            while c != STOP && i >= c + AHEAD {
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                c = checked.load(Ordering::Acquire);
                            }
                            if c == STOP {
                                break;
                            }
                            let prepared = prepare(f);
                            let matches = prepared
                                .as_ref()
                                .ok()
                                .map(|(_, p, q)| reader.sources_of(index, q, p));
                            // The receiver is gone only when a check failed: stop.
                            if tx.send((i, prepared, matches)).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(|e| RecordError::Invalid {
                        what: "review".into(),
                        why: format!("could not start a thread that reads images: {e}"),
                    })?;
            }
            drop(tx);
            // Results arrive as workers finish them; they are checked in the files' order.
            let mut waiting: std::collections::BTreeMap<usize, (Prepared, _)> = Default::default();
            let check_all = || -> Result<(), RecordError> {
                for (i, prepared, matches) in rx {
                    waiting.insert(i, (prepared, matches));
                    while let Some((prepared, matches)) = waiting.remove(&images.len()) {
                        let f = &files[images.len()];
                        let name = f.display().to_string();
                        let report = match (prepared, matches) {
                            (Ok((sha, published, _)), Some(matches)) => {
                                let caption = checks::caption_for(f, caption_dir);
                                self.review_matched(
                                    &name,
                                    Some(sha),
                                    &published,
                                    caption,
                                    matches?,
                                    opts,
                                )?
                            }
                            (prepared, _) => {
                                let (severity, why, action) = match prepared.err() {
                                    Some(NotReviewed::Refused(why)) => {
                                        summary.refused += 1;
                                        (
                                            Severity::Fail,
                                            why,
                                            "take down: publish each picture as a file of its own, and review each",
                                        )
                                    }
                                    Some(NotReviewed::Unreadable(why)) => {
                                        summary.unreadable += 1;
                                        (
                                            Severity::Warn,
                                            format!("skipped: {why}"),
                                            "check the file: it could not be reviewed",
                                        )
                                    }
                                    None => (
                                        Severity::Warn,
                                        "skipped".into(),
                                        "check the file: it could not be reviewed",
                                    ),
                                };
                                let mut r = ImageReport {
                                    file: name,
                                    sha256: None,
                                    width: 0,
                                    height: 0,
                                    sources: Vec::new(),
                                    verdict: Verdict::Pass,
                                    action: String::new(),
                                    findings: vec![Finding {
                                        kind: "file".into(),
                                        severity,
                                        message: why,
                                        action: Some(action.into()),
                                    }],
                                    edits: Vec::new(),
                                    caption: None,
                                    pair_grade: None,
                                    thumbnail: None,
                                };
                                r.conclude();
                                r
                            }
                        };
                        images.push(report);
                        checked.store(images.len(), Ordering::Release);
                        progress(images.len(), files.len());
                    }
                }
                Ok(())
            };
            let result = check_all();
            // Done, or a check failed (the results channel is closed now): no worker waits.
            checked.store(STOP, Ordering::Release);
            result
        })?;
        for i in &images {
            summary.images += 1;
            match i.verdict {
                Verdict::Pass => summary.pass += 1,
                Verdict::Warn => summary.warn += 1,
                Verdict::Fail => summary.fail += 1,
            }
            if i.width > 0 && i.sources.is_empty() {
                summary.without_source += 1;
            }
            summary.sources_found += i.sources.len();
            summary.consent_failures += i
                .findings
                .iter()
                .filter(|f| f.kind == "consent" && f.severity == Severity::Fail)
                .count();
            summary.takedowns += i.findings.iter().filter(|f| f.kind == "takedown").count();
            summary.edits_flagged += i
                .findings
                .iter()
                .filter(|f| f.kind == "edit" && f.severity == Severity::Fail)
                .count();
        }
        self.audit_now(
            "review.run",
            serde_json::json!({ "captures": images.iter().flat_map(|i| i.sources.iter().map(|s| s.capture_id.clone())).collect::<Vec<_>>() }),
            serde_json::json!({ "images": summary.images, "fail": summary.fail, "warn": summary.warn, "pass": summary.pass }),
        )?;
        Ok(Review {
            images,
            summary,
            reviewed_at: crate::timefmt::now_utc(),
        })
    }

    /// Write the HTML report, and record it as a copy of the sources' previews outside the data
    /// directory (it embeds their thumbnails), so a later withdrawal lists it.
    pub fn write_review_html(&self, review: &Review, out: &Path) -> Result<(), RecordError> {
        let mut thumbs = std::collections::HashMap::new();
        for s in review.images.iter().flat_map(|i| &i.sources) {
            if !thumbs.contains_key(&s.capture_id)
                && let Ok(p) = self.preview(&s.capture_id)
            {
                thumbs.insert(s.capture_id.clone(), matching::thumbnail_jpeg(&p, 200));
            }
        }
        let html = render_html(review, &thumbs);
        crate::records::capture::write_file_atomic(out, html.as_bytes())?;
        let mut rows = Vec::new();
        for id in thumbs.keys() {
            rows.push(self.export_row(&self.capture(id)?, "review", out)?);
        }
        self.write(|tx| {
            for row in &rows {
                tx.insert_export(row)?;
            }
            tx.audit(
                "review.report",
                serde_json::json!({ "captures": thumbs.keys().collect::<Vec<_>>() }),
                serde_json::json!({ "images": review.images.len() }),
            )?;
            Ok::<_, crate::store::StoreError>(())
        })?;
        Ok(())
    }
}

/// The images worst first (fail, warn, pass), each verdict in the files' order.
pub fn worst_first(images: &[ImageReport]) -> Vec<&ImageReport> {
    let mut v: Vec<&ImageReport> = images.iter().collect();
    v.sort_by_key(|i| std::cmp::Reverse(i.verdict));
    v
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The reviewer's HTML page: a summary table worst first, linking to each image; each image
/// with its verdict and what to do, the published image with the flagged edits drawn on it,
/// its source captures with patient, consent scopes and dates, and its findings (details
/// folded away).
pub fn render_html(r: &Review, thumbs: &std::collections::HashMap<String, Vec<u8>>) -> String {
    let order = worst_first(&r.images);
    let mut h = String::new();
    h += HTML_HEAD;
    h += "<h1>Compliance review of published images</h1>";
    h += &format!(
        "<p class=\"note\">Reviewed {}. This page embeds patient photographs: handle it as clinical data and delete it when done (it is listed in deletion certificates).</p>",
        esc(&r.reviewed_at)
    );
    h += &summary_html(r, &order);
    for (n, i) in order.iter().enumerate() {
        h += &image_html(n, i, thumbs);
    }
    h += "</body></html>\n";
    h
}

const HTML_HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>sameframe review</title><style>\
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;padding:16px;max-width:1320px;color:#1d2530;background:#f6f7f9}\
h1{font-size:22px;margin:4px 0}.note{color:#5b6370;font-size:13px}\
.totals{display:flex;gap:8px;flex-wrap:wrap;margin:10px 0}.totals span{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:4px 10px}\
.totals span.badge{border:0;border-radius:10px;font-size:14px;padding:4px 12px}.totals span.fail{background:#c0392b}.totals span.warn{background:#c98500}.totals span.pass{background:#2e8b57}\
table.sum{border-collapse:collapse;width:100%;background:#fff;margin:8px 0 18px}table.sum th,table.sum td{padding:6px 10px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}\
table.sum td.file{word-break:break-all;min-width:8em}\
.card{background:#fff;border:1px solid #d9dde3;border-left-width:6px;border-radius:8px;margin:16px 0;padding:14px}\
.card.fail{border-left-color:#c0392b}.card.warn{border-left-color:#c98500}.card.pass{border-left-color:#2e8b57}\
.card h2{font-size:17px;margin:0 0 6px;word-break:break-all}.action{font-weight:600;margin:4px 0 10px}\
.row{display:flex;gap:14px;flex-wrap:wrap;align-items:flex-start}.row figure{margin:0;max-width:100%}\
.pub{position:relative;display:inline-block;max-width:100%}.pub img,.row img{display:block;max-width:100%;max-height:260px;border:1px solid #ccd}\
.pub svg{position:absolute;left:0;top:0;width:100%;height:100%}\
figcaption{font-size:13px;color:#3f4754;max-width:300px;margin-top:4px}\
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:600;color:#fff;font-size:12px;text-transform:uppercase}\
.pass{background:#2e8b57}.warn{background:#c98500}.fail{background:#c0392b}.info{background:#6b7380}\
.card.fail,.card.warn,.card.pass{background:#fff}\
ul.f{margin:10px 0 0;padding-left:0;list-style:none}ul.f li{margin:5px 0}\
details{margin-top:8px;color:#4a5260}summary{cursor:pointer}\
.scope-withdrawn{color:#c0392b;font-weight:600}.scope-active{color:#2e8b57}\
a{color:#1f5fae}</style></head><body>";

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
    }
}

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warn => "warn",
        Severity::Fail => "fail",
    }
}

/// Totals, then one row per image (worst first) linking to it.
fn summary_html(r: &Review, order: &[&ImageReport]) -> String {
    let s = &r.summary;
    let mut h = format!(
        "<div class=\"totals\"><span><b>{}</b> images</span><span class=\"badge fail\">{} fail</span><span class=\"badge warn\">{} warn</span><span class=\"badge pass\">{} pass</span><span>{} take-downs</span><span>{} consent failures</span><span>{} edits flagged</span><span>{} without a source</span><span>{} unreadable</span></div>",
        s.images,
        s.fail,
        s.warn,
        s.pass,
        s.takedowns,
        s.consent_failures,
        s.edits_flagged,
        s.without_source,
        s.unreadable
    );
    if s.captures_to_backfill > 0 {
        h += &format!(
            "<p class=\"note\">{} stored capture(s) have no current fingerprint and may be missed: run <code>sameframe fingerprint backfill</code>.</p>",
            s.captures_to_backfill
        );
    }
    h += "<table class=\"sum\"><thead><tr><th>verdict</th><th>image</th><th>what to do</th></tr></thead><tbody>";
    for (n, i) in order.iter().enumerate() {
        let v = verdict_class(i.verdict);
        h += &format!(
            "<tr><td><span class=\"badge {v}\">{v}</span></td><td class=\"file\"><a href=\"#img-{n}\">{}</a></td><td>{}</td></tr>",
            esc(&i.file),
            esc(&i.action)
        );
    }
    h += "</tbody></table>";
    h
}

/// The published image with its panels and flagged edits drawn over it (boxes in the file's
/// pixels, numbered as in the findings).
fn published_figure(i: &ImageReport) -> String {
    let Some(t) = &i.thumbnail else {
        return String::new();
    };
    let (w, hgt) = (i.width.max(1), i.height.max(1));
    let stroke = (w.max(hgt) / 150).max(2);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {hgt}\" preserveAspectRatio=\"none\" aria-hidden=\"true\">"
    );
    for s in &i.sources {
        let [x, y, bw, bh] = s.panel;
        svg += &format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"{bw}\" height=\"{bh}\" fill=\"none\" stroke=\"#1f5fae\" stroke-width=\"{stroke}\" stroke-dasharray=\"{} {}\"/>",
            stroke * 4,
            stroke * 3
        );
    }
    for (k, e) in i.edits.iter().enumerate() {
        let [x, y, bw, bh] = e.bbox;
        let colour = if e.severity == Severity::Fail {
            "#e0245e"
        } else {
            "#8a93a0"
        };
        svg += &format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"{bw}\" height=\"{bh}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"{colour}\" font-weight=\"700\">{}</text>",
            stroke * 2,
            x + stroke * 2,
            y + stroke * 12,
            stroke * 11,
            k + 1
        );
    }
    svg += "</svg>";
    let edits = i
        .edits
        .iter()
        .filter(|e| e.severity == Severity::Fail)
        .count();
    format!(
        "<figure><div class=\"pub\"><img alt=\"published image\" src=\"data:image/jpeg;base64,{}\">{svg}</div><figcaption>published, {}×{}{}</figcaption></figure>",
        b64(t),
        i.width,
        i.height,
        if edits > 0 {
            format!(" — <b>{edits} edited region(s) boxed in red</b>")
        } else {
            String::new()
        }
    )
}

/// A source capture: thumbnail, where it sits, patient, date, consent scopes and dates.
fn source_figure(src: &super::checks::SourceReport, thumb: Option<&Vec<u8>>) -> String {
    let scopes = src
        .consent_scopes
        .iter()
        .map(|s| {
            if s.status == "withdrawn" {
                format!(
                    "<span class=\"scope-withdrawn\">{} withdrawn {}</span>",
                    esc(&s.scope),
                    esc(s
                        .withdrawn_at
                        .as_deref()
                        .unwrap_or("")
                        .get(..10)
                        .unwrap_or(""))
                )
            } else {
                format!(
                    "<span class=\"scope-active\">{} {}</span>",
                    esc(&s.scope),
                    esc(&s.status)
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let img = thumb
        .map(|t| {
            format!(
                "<img alt=\"source capture\" src=\"data:image/jpeg;base64,{}\">",
                b64(t)
            )
        })
        .unwrap_or_default();
    format!(
        "<figure>{img}<figcaption><b>{} panel</b>{}: patient <b>{}</b>, {} {}/{}, taken {}<br>consent {} signed {}{}: {scopes}</figcaption></figure>",
        esc(&src.position),
        if src.could_also_be.is_empty() {
            String::new()
        } else {
            format!(
                " (cannot tell: {} or {})",
                esc(&src.capture_id),
                esc(&src.could_also_be.join(", "))
            )
        },
        esc(&src.patient_ref),
        esc(&src.role.replace('_', "-")),
        esc(&src.area),
        esc(&src.view),
        esc(src.captured_at.get(..10).unwrap_or(&src.captured_at)),
        esc(&src.consent_id),
        esc(&src.consent_signed_on),
        src.consent_expires_on
            .as_ref()
            .map(|e| format!(", expires {}", esc(e)))
            .unwrap_or_default()
    )
}

fn image_html(
    n: usize,
    i: &ImageReport,
    thumbs: &std::collections::HashMap<String, Vec<u8>>,
) -> String {
    let v = verdict_class(i.verdict);
    let mut h = format!(
        "<section class=\"card {v}\" id=\"img-{n}\"><h2><span class=\"badge {v}\">{v}</span> {}</h2><div class=\"action\">{}</div><div class=\"row\">",
        esc(&i.file),
        esc(&i.action)
    );
    h += &published_figure(i);
    for src in &i.sources {
        h += &source_figure(src, thumbs.get(&src.capture_id));
    }
    h += "</div>";
    let (serious, info): (Vec<&Finding>, Vec<&Finding>) = i
        .findings
        .iter()
        .partition(|f| f.severity != Severity::Info);
    h += "<ul class=\"f\">";
    for f in serious {
        let sev = severity_class(f.severity);
        h += &format!(
            "<li><span class=\"badge {sev}\">{sev}</span> {}</li>",
            esc(&f.message)
        );
    }
    h += "</ul>";
    if let Some(c) = &i.caption {
        h += &format!("<p class=\"note\">caption: “{}”</p>", esc(c));
    }
    if !info.is_empty() {
        h += &format!(
            "<details><summary>{} detail(s)</summary><ul class=\"f\">",
            info.len()
        );
        for f in info {
            h += &format!("<li>{}</li>", esc(&f.message));
        }
        h += "</ul></details>";
    }
    h += "</section>";
    h
}
