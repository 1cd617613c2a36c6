//! Tracing a published image to its source captures, through resizing, crops, aspect changes,
//! re-encoding, brightness, overlays and before/after composites.
//!
//! 1. The published image is normalised (upright, long side 640) and split at gutters when it
//!    has them (uniform bands between panels).
//! 2. Candidates come from the index: keypoint descriptors voting in hash tables, plus
//!    whole-frame hash near-duplicates of the image and of each panel.
//! 3. Each candidate is verified geometrically (RANSAC similarity from the capture's preview to
//!    the published image); its frame, mapped into the published image, gives its panel.
//! 4. Before and after photos of one patient look alike, so panels claimed by several verified
//!    captures go to the one whose pixels agree best after alignment.

use image::{GrayImage, RgbImage};
use rusqlite::params;

use super::fingerprint::{self, Fingerprint};
use super::index::{Entry, Index};
use crate::analysis::pose::features::{self, Features, Pyramid};
use crate::analysis::pose::similarity::{self, Sim};
use crate::records::RecordError;
use crate::store::Store;

/// Published images are compared at this long side.
pub const QUERY_SIDE: u32 = 640;

/// The published side's pyramid: four levels cover captures shown from half to twice the
/// preview's size.
pub const QUERY_PYRAMID: Pyramid = Pyramid {
    base_scale: 1.0,
    shares: &[0.3, 0.27, 0.23, 0.2],
};

/// A published image prepared for matching.
#[derive(Clone, Debug)]
pub struct Query {
    /// Upright, long side [`QUERY_SIDE`].
    pub image: RgbImage,
    pub gray: GrayImage,
    /// Published pixels per query pixel.
    pub to_original: f64,
    pub features: Features,
    /// Panels found at gutters (query pixels: x, y, w, h); empty when none.
    pub gutters: Vec<[u32; 4]>,
    /// (pHash, dHash) of the whole image and of each gutter panel.
    pub hashes: Vec<(u64, u64)>,
}

/// A verified source.
#[derive(Clone, Debug)]
pub struct SourceMatch {
    pub capture_id: String,
    /// The capture's region in the published image (published pixels).
    pub panel: [u32; 4],
    /// Capture preview pixels → published pixels.
    pub sim: Sim,
    pub inliers: usize,
    /// Correlation of the aligned preview with the published pixels over the panel.
    pub ncc: f64,
    /// RMS difference after a whole-panel gain and offset (8-bit levels).
    pub residual: f64,
}

impl SourceMatch {
    /// A 0–1 distance: the residual difference in tenths of the 8-bit range.
    pub fn distance(&self) -> f64 {
        (self.residual / 25.5).clamp(0.0, 1.0)
    }
}

/// Prepare a published image.
pub fn prepare(img: &RgbImage) -> Query {
    let (w, h) = img.dimensions();
    let long = w.max(h).max(1);
    let k = f64::from(QUERY_SIDE) / f64::from(long);
    let (nw, nh) = (
        ((f64::from(w) * k).round() as u32).max(1),
        ((f64::from(h) * k).round() as u32).max(1),
    );
    let image = fingerprint::resize_rgb(img, nw, nh);
    let gray = fingerprint::luma(&image);
    let all = |_: f32, _: f32| true;
    let features = features::extract_with(&gray, 600, &all, &QUERY_PYRAMID);
    let gutters = find_panels(&gray);
    let mut hashes = vec![(fingerprint::phash(&gray), fingerprint::dhash(&gray))];
    for p in &gutters {
        let sub = image::imageops::crop_imm(&gray, p[0], p[1], p[2], p[3]).to_image();
        hashes.push((fingerprint::phash(&sub), fingerprint::dhash(&sub)));
    }
    Query {
        image,
        gray,
        to_original: 1.0 / k,
        features,
        gutters,
        hashes,
    }
}

/// Panels separated by uniform gutters (vertical or horizontal bands at least 2 % wide whose
/// pixels barely vary along their length), between 20 % and 80 % of the image.
pub fn find_panels(gray: &GrayImage) -> Vec<[u32; 4]> {
    let (w, h) = gray.dimensions();
    if w < 40 || h < 40 {
        return Vec::new();
    }
    let flat = |values: &mut dyn Iterator<Item = u8>| -> bool {
        let v: Vec<f32> = values.map(f32::from).collect();
        let m = v.iter().sum::<f32>() / v.len() as f32;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
        sd < 4.0
    };
    let runs = |flags: &[bool], len: u32| -> Option<(u32, u32)> {
        let (lo, hi) = ((len as f32 * 0.2) as usize, (len as f32 * 0.8) as usize);
        let min = ((len as f32 * 0.01) as usize).max(2);
        let mut best: Option<(u32, u32)> = None;
        let mut i = lo;
        while i < hi {
            if flags[i] {
                let s = i;
                while i < hi && flags[i] {
                    i += 1;
                }
                if i - s >= min && best.is_none_or(|(a, b)| (b - a) < (i - s) as u32) {
                    best = Some((s as u32, i as u32));
                }
            }
            i += 1;
        }
        best
    };
    let cols: Vec<bool> = (0..w)
        .map(|x| flat(&mut (0..h).map(|y| gray.get_pixel(x, y).0[0])))
        .collect();
    if let Some((a, b)) = runs(&cols, w) {
        return vec![[0, 0, a, h], [b, 0, w - b, h]];
    }
    let rows: Vec<bool> = (0..h)
        .map(|y| flat(&mut (0..w).map(|x| gray.get_pixel(x, y).0[0])))
        .collect();
    if let Some((a, b)) = runs(&rows, h) {
        return vec![[0, 0, w, a], [0, b, w, h - b]];
    }
    Vec::new()
}

impl Store {
    /// Load every fingerprint into an index.
    pub fn review_index(&self) -> Result<Index, RecordError> {
        let mut st = self.conn().prepare(
            "SELECT capture_id, phash, dhash, descriptors FROM fingerprint ORDER BY capture_id",
        )?;
        let mut entries = Vec::new();
        let mut descs = Vec::new();
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        for row in rows {
            let (capture_id, p, d, ds) = row?;
            entries.push(Entry {
                capture_id,
                phash: p as u64,
                dhash: d as u64,
            });
            descs.push(
                ds.chunks_exact(32)
                    .map(|c| {
                        std::array::from_fn(|w| {
                            u64::from_le_bytes(c[w * 8..w * 8 + 8].try_into().unwrap_or([0; 8]))
                        })
                    })
                    .collect(),
            );
        }
        Ok(Index::build(entries, &descs))
    }

    /// Find the source captures of a published image (see [`find_sources`]).
    pub fn find_sources(
        &self,
        index: &Index,
        q: &Query,
        original: &RgbImage,
    ) -> Result<Vec<SourceMatch>, RecordError> {
        find_sources(self, index, q, original)
    }

    /// Record where a published image went out, with its sources at that moment.
    pub fn record_publication(
        &self,
        file_sha256: &str,
        channel: &str,
        url: Option<&str>,
        date: &str,
        purpose: &str,
        sources: &[SourceMatch],
    ) -> Result<String, RecordError> {
        let id = crate::ids::new_id("pub")?;
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO publication (id, file_sha256, channel, url, date, purpose, recorded_at, actor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, file_sha256, channel, url, date, purpose, crate::timefmt::now_utc(), self.actor()],
        )?;
        for s in sources {
            let cap = self.capture(&s.capture_id)?;
            tx.execute(
                "INSERT OR IGNORE INTO publication_source (publication_id, capture_id, consent_id, patient_id, sha256, panel, distance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, cap.id, cap.consent_id, cap.patient_id, cap.sha256, serde_json::to_string(&s.panel).unwrap_or_default(), s.distance()],
            )?;
        }
        self.audit(
            &tx,
            "publication.record",
            serde_json::json!({ "publication": id, "sha256": file_sha256, "captures": sources.iter().map(|s| &s.capture_id).collect::<Vec<_>>() }),
            serde_json::json!({ "channel": channel, "date": date, "purpose": purpose }),
        )?;
        tx.commit()?;
        Ok(id)
    }
}

/// Where matching reads a candidate's stored fingerprint and preview: the store, or an
/// in-memory set (benchmarks, tests).
pub trait Sources {
    fn fingerprint_of(&self, capture_id: &str) -> Result<Option<Fingerprint>, RecordError>;
    fn preview_of(&self, capture_id: &str) -> Result<RgbImage, RecordError>;
}

impl Sources for Store {
    fn fingerprint_of(&self, capture_id: &str) -> Result<Option<Fingerprint>, RecordError> {
        self.fingerprint(capture_id)
    }

    fn preview_of(&self, capture_id: &str) -> Result<RgbImage, RecordError> {
        self.preview(capture_id)
    }
}

/// Find the source captures of a published image (`original`, prepared as `q`): each
/// gutter panel on its own; without gutters, the whole image, and when that does not
/// explain it, its halves side by side or stacked (before/after composites). Panels are
/// matched as images of their own, at full query resolution. Panels and transforms are in
/// published pixels.
pub fn find_sources<S: Sources + ?Sized>(
    src: &S,
    index: &Index,
    q: &Query,
    original: &RgbImage,
) -> Result<Vec<SourceMatch>, RecordError> {
    let (qw, qh) = q.gray.dimensions();
    let mut found: Vec<SourceMatch> = Vec::new();
    if !q.gutters.is_empty() {
        found = match_panels(src, index, q, original, &q.gutters)?;
    } else {
        let whole = match_region(src, index, q, &[0, 0, qw, qh], &q.hashes[..1])?;
        let w = whole
            .into_iter()
            .next()
            .map(|m| to_published(m, q.to_original, [0.0, 0.0]));
        let area = f64::from(original.width()) * f64::from(original.height());
        match w {
            Some(m) if f64::from(m.panel[2]) * f64::from(m.panel[3]) >= 0.65 * area => {
                found.push(m)
            }
            // Halves are worth matching on their own only when some capture shares
            // descriptors with the image at all: an unrelated image stops here.
            None if index
                .candidates(&q.features.descriptors, &q.hashes[..1], 3, 10, 1)
                .is_empty() => {}
            w => {
                let splits = [
                    vec![[0, 0, qw / 2, qh], [qw / 2, 0, qw - qw / 2, qh]],
                    vec![[0, 0, qw, qh / 2], [0, qh / 2, qw, qh - qh / 2]],
                ];
                let mut best: Option<(f64, Vec<SourceMatch>)> = None;
                for split in &splits {
                    let got = match_panels(src, index, q, original, split)?;
                    if got.len() == 2 {
                        let score = got.iter().map(|m| m.residual).sum::<f64>();
                        if best.as_ref().is_none_or(|(s, _)| score < *s) {
                            best = Some((score, got));
                        }
                    }
                }
                match (best, w) {
                    (Some((_, two)), _) => found = two,
                    (None, Some(m)) => found.push(m),
                    (None, None) => {}
                }
            }
        }
    }
    let h = original.height().max(1);
    found.sort_by_key(|m| (m.panel[1] / (h / 3 + 1), m.panel[0]));
    Ok(found)
}

/// Match each panel (query pixels) as an image of its own; assign captures to panels by
/// least residual, each capture to one panel.
fn match_panels<S: Sources + ?Sized>(
    src: &S,
    index: &Index,
    q: &Query,
    original: &RgbImage,
    panels: &[[u32; 4]],
) -> Result<Vec<SourceMatch>, RecordError> {
    let k = q.to_original;
    let mut options: Vec<(usize, SourceMatch)> = Vec::new();
    for (pi, p) in panels.iter().enumerate() {
        let (ox, oy) = (
            (f64::from(p[0]) * k).round() as u32,
            (f64::from(p[1]) * k).round() as u32,
        );
        let (ow, oh) = (
            (f64::from(p[2]) * k).round() as u32,
            (f64::from(p[3]) * k).round() as u32,
        );
        let (ow, oh) = (
            ow.min(original.width().saturating_sub(ox)),
            oh.min(original.height().saturating_sub(oy)),
        );
        if ow < 32 || oh < 32 {
            continue;
        }
        let sub = image::imageops::crop_imm(original, ox, oy, ow, oh).to_image();
        let sq = prepare(&sub);
        let (sw, sh) = sq.gray.dimensions();
        for m in match_region(src, index, &sq, &[0, 0, sw, sh], &sq.hashes[..1])? {
            options.push((
                pi,
                to_published(m, sq.to_original, [f64::from(ox), f64::from(oy)]),
            ));
        }
    }
    options.sort_by(|a, b| a.1.residual.total_cmp(&b.1.residual));
    let mut out: Vec<SourceMatch> = Vec::new();
    let mut done = vec![false; panels.len()];
    for (pi, m) in options {
        if !done[pi] && !out.iter().any(|o| o.capture_id == m.capture_id) {
            done[pi] = true;
            out.push(m);
        }
    }
    Ok(out)
}

/// Verified sources for one region of the query, best (least residual) first, in query
/// pixels.
fn match_region<S: Sources + ?Sized>(
    src: &S,
    index: &Index,
    q: &Query,
    region: &[u32; 4],
    hashes: &[(u64, u64)],
) -> Result<Vec<SourceMatch>, RecordError> {
    let inside = |x: f32, y: f32| {
        let (x, y) = (x as u32, y as u32);
        x >= region[0] && x < region[0] + region[2] && y >= region[1] && y < region[1] + region[3]
    };
    let keep: Vec<usize> = (0..q.features.keypoints.len())
        .filter(|&i| inside(q.features.keypoints[i].x, q.features.keypoints[i].y))
        .collect();
    if keep.len() < 20 {
        return Ok(Vec::new());
    }
    let sub = Features {
        keypoints: keep.iter().map(|&i| q.features.keypoints[i]).collect(),
        descriptors: keep.iter().map(|&i| q.features.descriptors[i]).collect(),
    };
    let cands = index.candidates(&sub.descriptors, hashes, 4, 10, 8);
    let mut qgrad = None;
    let mut out: Vec<SourceMatch> = Vec::new();
    for c in cands {
        let id = &index.entries[c.index].capture_id;
        let Some(fp) = src.fingerprint_of(id)? else {
            continue;
        };
        let Some((panel, sim, inliers)) = verify(&fp, &sub, q) else {
            continue;
        };
        let preview = src.preview_of(id)?;
        // Precise alignment before the pixels are compared.
        let qgrad =
            qgrad.get_or_insert_with(|| crate::analysis::pose::refine::GradImage::new(&q.gray));
        let sim = refine_alignment(&preview, qgrad, sim, &intersect(&panel, region)).unwrap_or(sim);
        let Some(ag) = agreement(&preview, q, &sim, &intersect(&panel, region)) else {
            continue;
        };
        if ag.ncc > 0.45 {
            out.push(SourceMatch {
                capture_id: id.clone(),
                panel: intersect(&ag.extent, region),
                sim,
                inliers,
                ncc: ag.ncc,
                residual: ag.residual,
            });
        }
    }
    // Among verified look-alikes, the exact source leaves the least difference.
    out.sort_by(|a, b| a.residual.total_cmp(&b.residual));
    Ok(out)
}

/// A match in query pixels → published pixels (`k` published pixels per query pixel, the
/// query's origin at `off`).
fn to_published(m: SourceMatch, k: f64, off: [f64; 2]) -> SourceMatch {
    SourceMatch {
        panel: [
            (off[0] + f64::from(m.panel[0]) * k).round() as u32,
            (off[1] + f64::from(m.panel[1]) * k).round() as u32,
            (f64::from(m.panel[2]) * k).round() as u32,
            (f64::from(m.panel[3]) * k).round() as u32,
        ],
        sim: Sim {
            a: [m.sim.a[0] * k, m.sim.a[1] * k],
            b: [m.sim.b[0] * k + off[0], m.sim.b[1] * k + off[1]],
        },
        ..m
    }
}

/// Geometric verification against some of the query's features: the panel (query pixels), the
/// transform and its inlier count.
fn verify(fp: &Fingerprint, qf: &Features, q: &Query) -> Option<([u32; 4], Sim, usize)> {
    let cf = fp.features();
    let matches = features::match_features(&cf, qf, 0.9, 96);
    if matches.len() < 8 {
        return None;
    }
    let src: Vec<[f64; 2]> = matches
        .iter()
        .map(|m| {
            [
                f64::from(cf.keypoints[m.0].x),
                f64::from(cf.keypoints[m.0].y),
            ]
        })
        .collect();
    let dst: Vec<[f64; 2]> = matches
        .iter()
        .map(|m| {
            [
                f64::from(qf.keypoints[m.1].x),
                f64::from(qf.keypoints[m.1].y),
            ]
        })
        .collect();
    let c = similarity::ransac(&src, &dst, 5.0, (0.15, 6.0), 0xC0FFEE)?;
    if c.inliers.len() < 8 || (c.inliers.len() as f64) < 0.25 * matches.len() as f64 {
        return None;
    }
    // The capture's frame in the published image, clipped; snapped to a gutter panel when the
    // published image has them.
    let corners = [
        [0.0, 0.0],
        [f64::from(fp.width), 0.0],
        [f64::from(fp.width), f64::from(fp.height)],
        [0.0, f64::from(fp.height)],
    ]
    .map(|p| c.sim.apply(p));
    let (qw, qh) = (f64::from(q.image.width()), f64::from(q.image.height()));
    let x0 = corners
        .iter()
        .map(|p| p[0])
        .fold(f64::INFINITY, f64::min)
        .clamp(0.0, qw);
    let x1 = corners
        .iter()
        .map(|p| p[0])
        .fold(f64::NEG_INFINITY, f64::max)
        .clamp(0.0, qw);
    let y0 = corners
        .iter()
        .map(|p| p[1])
        .fold(f64::INFINITY, f64::min)
        .clamp(0.0, qh);
    let y1 = corners
        .iter()
        .map(|p| p[1])
        .fold(f64::NEG_INFINITY, f64::max)
        .clamp(0.0, qh);
    if x1 - x0 < 16.0 || y1 - y0 < 16.0 {
        return None;
    }
    let mut panel = [x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32];
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    if let Some(g) = q.gutters.iter().find(|g| {
        cx >= f64::from(g[0])
            && cx < f64::from(g[0] + g[2])
            && cy >= f64::from(g[1])
            && cy < f64::from(g[1] + g[3])
    }) {
        panel = intersect(&panel, g);
    }
    Some((panel, c.sim, c.inliers.len()))
}

/// Sub-pixel alignment of the preview onto the published image over a panel.
fn refine_alignment(
    preview: &RgbImage,
    qgrad: &crate::analysis::pose::refine::GradImage,
    sim: Sim,
    panel: &[u32; 4],
) -> Option<Sim> {
    refine_onto(preview, qgrad, sim, panel, 2000, 25, 0.5)
}

/// Refine `sim` (source pixels → target pixels) by direct alignment of `points` template
/// points of `source` whose image under `sim` falls inside `panel` (target pixels); None when
/// the aligned correlation stays at or below `min_ncc`.
pub(super) fn refine_onto(
    source: &RgbImage,
    target: &crate::analysis::pose::refine::GradImage,
    sim: Sim,
    panel: &[u32; 4],
    points: usize,
    iterations: usize,
    min_ncc: f64,
) -> Option<Sim> {
    use crate::analysis::pose::refine::{GradImage, Template, refine};
    let sg = GradImage::new(&fingerprint::luma(source));
    let inside = |x: f32, y: f32| {
        let p = sim.apply([f64::from(x), f64::from(y)]);
        p[0] >= f64::from(panel[0])
            && p[1] >= f64::from(panel[1])
            && p[0] < f64::from(panel[0] + panel[2])
            && p[1] < f64::from(panel[1] + panel[3])
    };
    let t = Template::new(&sg, points, &inside);
    let r = refine(&t, target, sim, iterations)?;
    (r.ncc > min_ncc).then_some(r.sim)
}

fn intersect(a: &[u32; 4], b: &[u32; 4]) -> [u32; 4] {
    let x0 = a[0].max(b[0]);
    let y0 = a[1].max(b[1]);
    let x1 = (a[0] + a[2]).min(b[0] + b[2]);
    let y1 = (a[1] + a[3]).min(b[1] + b[3]);
    [x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0)]
}

/// Intersection over union of two rectangles.
pub fn iou(a: &[u32; 4], b: &[u32; 4]) -> f64 {
    let i = intersect(a, b);
    let inter = f64::from(i[2]) * f64::from(i[3]);
    let union = f64::from(a[2]) * f64::from(a[3]) + f64::from(b[2]) * f64::from(b[3]) - inter;
    inter / union.max(1.0)
}

/// Warp the capture preview into the query frame over a panel: returns (query luma, warped
/// luma) pairs for pixels covered by both.
pub fn aligned_pairs(
    preview: &RgbImage,
    q: &Query,
    sim: &Sim,
    panel: &[u32; 4],
    step: u32,
) -> Vec<(f32, f32)> {
    let inv = sim.inverse();
    let pg = fingerprint::luma(preview);
    let (pw, ph) = (f64::from(pg.width()), f64::from(pg.height()));
    let mut out = Vec::new();
    for y in (panel[1]..panel[1] + panel[3]).step_by(step as usize) {
        for x in (panel[0]..panel[0] + panel[2]).step_by(step as usize) {
            if x >= q.gray.width() || y >= q.gray.height() {
                continue;
            }
            let p = inv.apply([f64::from(x) + 0.5, f64::from(y) + 0.5]);
            let (sx, sy) = (p[0] - 0.5, p[1] - 0.5);
            if sx < 0.0 || sy < 0.0 || sx >= pw - 1.0 || sy >= ph - 1.0 {
                continue;
            }
            let (x0, y0) = (sx as u32, sy as u32);
            let (fx, fy) = ((sx - f64::from(x0)) as f32, (sy - f64::from(y0)) as f32);
            let g = |xx: u32, yy: u32| f32::from(pg.get_pixel(xx, yy).0[0]);
            let v = (g(x0, y0) * (1.0 - fx) + g(x0 + 1, y0) * fx) * (1.0 - fy)
                + (g(x0, y0 + 1) * (1.0 - fx) + g(x0 + 1, y0 + 1) * fx) * fy;
            out.push((f32::from(q.gray.get_pixel(x, y).0[0]), v));
        }
    }
    out
}

/// How well an aligned preview explains the published pixels.
#[derive(Clone, Copy, Debug)]
pub struct Agreement {
    /// Mean block correlation inside the agreeing region.
    pub ncc: f64,
    /// RMS difference (8-bit levels) inside the agreeing region after one whole-region gain and
    /// offset: the exact source leaves only re-encoding noise, another session of the same
    /// patient leaves its local changes and its different light.
    pub residual: f64,
    /// The agreeing region (query pixels).
    pub extent: [u32; 4],
}

/// Compare the aligned preview with the published pixels block by block (16×16 query pixels).
pub fn agreement(preview: &RgbImage, q: &Query, sim: &Sim, within: &[u32; 4]) -> Option<Agreement> {
    const B: u32 = 16;
    let inv = sim.inverse();
    let pg = fingerprint::luma(preview);
    let (pw, ph) = (f64::from(pg.width()), f64::from(pg.height()));
    let (qw, qh) = q.gray.dimensions();
    // Per block: (x, y, n, Σa, Σb, Σa², Σb², Σab) with a published, b preview.
    let mut blocks: Vec<(u32, u32, [f64; 6])> = Vec::new();
    let mut by = within[1];
    while by + B <= (within[1] + within[3]).min(qh) {
        let mut bx = within[0];
        while bx + B <= (within[0] + within[2]).min(qw) {
            let mut st = [0f64; 6];
            for y in (by..by + B).step_by(2) {
                for x in (bx..bx + B).step_by(2) {
                    let p = inv.apply([f64::from(x) + 0.5, f64::from(y) + 0.5]);
                    let (sx, sy) = (p[0] - 0.5, p[1] - 0.5);
                    if sx < 0.0 || sy < 0.0 || sx >= pw - 1.0 || sy >= ph - 1.0 {
                        continue;
                    }
                    let (x0, y0) = (sx as u32, sy as u32);
                    let (fx, fy) = (sx - f64::from(x0), sy - f64::from(y0));
                    let g = |xx: u32, yy: u32| f64::from(pg.get_pixel(xx, yy).0[0]);
                    let v = (g(x0, y0) * (1.0 - fx) + g(x0 + 1, y0) * fx) * (1.0 - fy)
                        + (g(x0, y0 + 1) * (1.0 - fx) + g(x0 + 1, y0 + 1) * fx) * fy;
                    let a = f64::from(q.gray.get_pixel(x, y).0[0]);
                    st[0] += 1.0;
                    st[1] += a;
                    st[2] += v;
                    st[3] += a * a;
                    st[4] += v * v;
                    st[5] += a * v;
                }
            }
            if st[0] >= f64::from(B * B / 4) * 0.75 {
                blocks.push((bx, by, st));
            }
            bx += B;
        }
        by += B;
    }
    let ncc_of = |st: &[f64; 6]| {
        let n = st[0];
        let va = st[3] / n - (st[1] / n).powi(2);
        let vb = st[4] / n - (st[2] / n).powi(2);
        (va > 9.0 && vb > 9.0).then(|| (st[5] / n - st[1] / n * st[2] / n) / (va * vb).sqrt())
    };
    let agree: Vec<&(u32, u32, [f64; 6])> = blocks
        .iter()
        .filter(|b| ncc_of(&b.2).is_some_and(|c| c >= 0.5))
        .collect();
    if agree.len() < 6 {
        return None;
    }
    let x0 = agree.iter().map(|b| b.0).min().unwrap_or(0);
    let y0 = agree.iter().map(|b| b.1).min().unwrap_or(0);
    let x1 = agree.iter().map(|b| b.0 + B).max().unwrap_or(0);
    let y1 = agree.iter().map(|b| b.1 + B).max().unwrap_or(0);
    let inside: Vec<&(u32, u32, [f64; 6])> = blocks
        .iter()
        .filter(|b| b.0 >= x0 && b.0 < x1 && b.1 >= y0 && b.1 < y1)
        .collect();
    let nccs: Vec<f64> = inside.iter().filter_map(|b| ncc_of(&b.2)).collect();
    let ncc = nccs.iter().sum::<f64>() / nccs.len().max(1) as f64;
    // One gain and offset over the region (whole-frame colour is allowed), then the residual.
    let t = inside.iter().fold([0f64; 6], |mut acc, b| {
        for (a, v) in acc.iter_mut().zip(&b.2) {
            *a += v;
        }
        acc
    });
    let n = t[0].max(1.0);
    let vb = t[4] / n - (t[2] / n).powi(2);
    let gain = if vb > 1e-6 {
        (t[5] / n - t[1] / n * t[2] / n) / vb
    } else {
        1.0
    };
    let off = t[1] / n - gain * t[2] / n;
    let ss = t[3] - 2.0 * gain * t[5] - 2.0 * off * t[1]
        + gain * gain * t[4]
        + 2.0 * gain * off * t[2]
        + n * off * off;
    let residual = (ss.max(0.0) / n).sqrt();
    Some(Agreement {
        ncc,
        residual,
        extent: [x0, y0, x1 - x0, y1 - y0],
    })
}

/// A JPEG of `img` with its long side at most `side` (for reports).
pub fn thumbnail_jpeg(img: &RgbImage, side: u32) -> Vec<u8> {
    let small = fingerprint::fit_within(img, side);
    let mut out = Vec::new();
    let _ = small.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 80,
    ));
    out
}
