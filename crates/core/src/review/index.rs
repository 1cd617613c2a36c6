//! The in-memory index over every capture's fingerprint: whole-frame hashes scanned by popcount,
//! and locality-sensitive hash tables over the keypoint descriptors (each table keys a
//! descriptor by 20 fixed bits, so a bucket holds a handful of descriptors even at 100,000
//! captures, and checks a hit on 32 other bits kept beside it), so one published image is
//! matched against 100,000 captures in a few milliseconds. Each capture's indexed keypoints
//! are kept with where they lie, so a capture's hits can be checked for one placement before
//! any of its fingerprint is read.

use crate::analysis::pose::affine::Affine;
use crate::analysis::pose::features::Descriptor;

const TABLES: usize = 8;
const KEY_BITS: usize = 20;

/// One capture in the index.
#[derive(Clone, Debug)]
pub struct Entry {
    pub capture_id: String,
    pub phash: u64,
    pub dhash: u64,
}

/// One capture's indexed keypoints: where each lies (preview pixels) and its descriptor.
pub type Indexed = Vec<([f32; 2], Descriptor)>;

/// A candidate source with its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub index: usize,
    /// Query descriptors that hit this capture in some table.
    pub votes: u32,
    /// The most of those hits that one upright placement of the capture explains (see
    /// [`Index::placement`]), and that placement (capture preview → query pixels) when it
    /// explains at least [`PLACED`] of them.
    pub agree: u32,
    pub placed: Option<Affine>,
    /// Smallest pHash distance over the query's windows.
    pub phash_distance: u32,
}

/// A (capture, query) point pair.
type Pair = ([f64; 2], [f64; 2]);

/// How many distinct correspondences a set of (capture, query) point pairs holds: the same
/// corner is often found on two pyramid levels, and one query corner may hit several
/// look-alike corners of a capture, so neither side's points may count twice.
fn one_to_one(pairs: &[Pair]) -> u32 {
    let distinct = |side: fn(&Pair) -> [f64; 2]| {
        let mut seen: Vec<[f64; 2]> = Vec::with_capacity(pairs.len());
        for p in pairs {
            let v = side(p);
            if !seen
                .iter()
                .any(|s| (s[0] - v[0]).abs().max((s[1] - v[1]).abs()) <= 2.0)
            {
                seen.push(v);
            }
        }
        seen.len() as u32
    };
    distinct(|p| p.0).min(distinct(|p| p.1))
}

/// The whole-frame hash distance of two (pHash, dHash) pairs: the pHash distance, or the
/// dHash distance plus 4 when that is less.
#[inline]
fn hash_distance(a: (u64, u64), b: (u64, u64)) -> u32 {
    (a.0 ^ b.0).count_ones().min((a.1 ^ b.1).count_ones() + 4)
}

/// Which buckets [`Index::hits`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Those up to 8 times fuller than average. A descriptor that looks like thousands of
    /// others says little about which capture it came from, and reading its bucket costs
    /// more than the rest together.
    Distinctive,
    /// Those up to 64 times fuller than average too. A picture made of flat shapes has few
    /// distinctive corners: when nothing distinctive leads to its source, the generic ones
    /// may, and where they land on a capture (see [`Index::placement`]) tells the source
    /// from the many captures with corners like them.
    Generic,
}

impl Reach {
    /// How many times fuller than average a bucket may be.
    fn fill(self) -> usize {
        match self {
            Reach::Distinctive => 8,
            Reach::Generic => 64,
        }
    }
}

/// Which captures [`Index::candidates_from`] returns.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    /// Index hits a capture needs (hash near-duplicates need none)…
    pub min_votes: u32,
    /// …hits in place (see [`Index::placement`]) a capture needs (hash near-duplicates
    /// need none)…
    pub min_agree: u32,
    /// …the whole-frame hash distance of a near-duplicate…
    pub max_hash: u32,
    /// …and how many candidates at most.
    pub limit: usize,
}

/// Hits that one placement must explain before it says where a capture lies: two points fit
/// any placement; a third that lands where the first two put it is rare by chance (a few
/// pixels in a 640×480 query).
pub const PLACED: u32 = 3;

/// The index.
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
    /// Per entry: (pHash, dHash), scanned for near-duplicates.
    hashes: Vec<(u64, u64)>,
    /// Per table: bucket offsets (CSR) into `items`.
    offsets: Vec<Vec<u32>>,
    /// Per table: each stored descriptor as (entry << [`SLOT_BITS`] | its place among the
    /// entry's descriptors, its check bits), grouped by bucket.
    items: Vec<Vec<[u32; 2]>>,
    bits: Vec<[u8; KEY_BITS]>,
    /// Per entry, from `point_start[e]`: where its indexed keypoints lie (eighths of a preview
    /// pixel, as fingerprints store them), by slot.
    points: Vec<[u16; 2]>,
    point_start: Vec<u32>,
}

/// A query descriptor's hit on an indexed capture: (query descriptor, entry, the stored
/// descriptor's place among the entry's).
pub type Hit = (u32, u32, u8);

/// A query's hits on the index (see [`Index::hits`]), grouped by entry.
#[derive(Clone, Debug, Default)]
pub struct Hits {
    /// Ordered by entry, then by query descriptor.
    all: Vec<Hit>,
    /// One per entry hit, in entry order.
    runs: Vec<Run>,
}

/// The hits of one entry: `all[start..end]`, from `votes` query descriptors.
#[derive(Clone, Copy, Debug)]
struct Run {
    entry: u32,
    votes: u32,
    start: u32,
    end: u32,
}

/// The query descriptors among `run` (one entry's hits) that `counts` marks (empty: all). A
/// query descriptor may hit several of the capture's keypoints, one after another, and votes
/// once.
fn votes(run: &[Hit], counts: &[bool]) -> u32 {
    run.chunk_by(|a, b| a.0 == b.0)
        .filter(|q| counts.is_empty() || counts[q[0].0 as usize])
        .count() as u32
}

impl Hits {
    /// From hits ordered by entry, then by query descriptor.
    fn new(all: Vec<Hit>) -> Self {
        let mut runs = Vec::new();
        let mut start = 0usize;
        for run in all.chunk_by(|a, b| a.1 == b.1) {
            runs.push(Run {
                entry: run[0].1,
                votes: votes(run, &[]),
                start: start as u32,
                end: (start + run.len()) as u32,
            });
            start += run.len();
        }
        Hits { all, runs }
    }

    /// The hits of one entry.
    pub fn of(&self, entry: u32) -> &[Hit] {
        match self.runs.binary_search_by_key(&entry, |r| r.entry) {
            Ok(k) => &self.all[self.runs[k].start as usize..self.runs[k].end as usize],
            Err(_) => &[],
        }
    }
}

/// `hits` stably ordered by entry: a radix sort on the entry's 26 bits, in two passes (the
/// hits of a query number in the tens of thousands at 100,000 captures).
fn by_entry(hits: Vec<Hit>) -> Vec<Hit> {
    const DIGIT: u32 = 13;
    const MASK: u32 = (1 << DIGIT) - 1;
    let mut from = hits;
    let mut to = vec![(0, 0, 0); from.len()];
    for shift in [0, DIGIT] {
        let mut at = vec![0usize; (1 << DIGIT) + 1];
        for h in &from {
            at[((h.1 >> shift) & MASK) as usize + 1] += 1;
        }
        for i in 1..at.len() {
            at[i] += at[i - 1];
        }
        for h in &from {
            let d = ((h.1 >> shift) & MASK) as usize;
            to[at[d]] = *h;
            at[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
    }
    from
}

/// Each stored descriptor's place among its entry's descriptors takes the low bits of its
/// item (at most 64 descriptors per entry are indexed; 2^26 entries).
const SLOT_BITS: u32 = 6;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Entries whose descriptors are indexed (any more are found by their hashes only).
const MAX_ENTRIES: usize = 1 << (32 - SLOT_BITS);

/// A bucket hit counts as a vote only when the descriptors also agree on the table's 32 check
/// bits (a 32-bit word of the descriptor that the table's key does not use) to within this
/// many bits: a descriptor of the same point differs in about a sixth of its bits, a random
/// one in half, and 9 of 32 or fewer happens to about 1 % of random pairs. Descriptors that
/// share a bucket are not random (generic patterns look alike), and at 100,000 captures about
/// half of the members a photo's probes scan pass. The check needs no read of the stored
/// descriptor (at 100,000 captures that read, a cache miss per bucket member, was most of a
/// query's time).
const CHECK_DISTANCE: u32 = 9;

/// The check bits of `d` for table `t`: its `t`-th 32-bit word (of 8).
#[inline]
fn check_bits(d: &Descriptor, t: usize) -> u32 {
    let w = t % 8;
    (d[w / 2] >> (32 * (w % 2))) as u32
}

fn key(d: &Descriptor, bits: &[u8; KEY_BITS]) -> usize {
    let mut k = 0usize;
    for (i, &b) in bits.iter().enumerate() {
        if d[usize::from(b) / 64] >> (b % 64) & 1 == 1 {
            k |= 1 << i;
        }
    }
    k
}

/// Key bits per table: drawn (deterministically) from the descriptor bits that split the
/// stored descriptors most evenly, without repeating a bit within a table. BRIEF bits on
/// natural images are far from fair coins; keying on lopsided bits would pile descriptors into
/// a few buckets and make every capture a candidate.
fn table_bits(indexed: &[Indexed]) -> Vec<[u8; KEY_BITS]> {
    let mut ones = [0u64; 256];
    let mut n = 0u64;
    for (_, d) in indexed.iter().flatten().step_by(7) {
        n += 1;
        for (b, o) in ones.iter_mut().enumerate() {
            *o += d[b / 64] >> (b % 64) & 1;
        }
    }
    let mut order: Vec<usize> = (0..256).collect();
    if n > 0 {
        order.sort_by(|&a, &b| {
            let fa = (ones[a] as f64 / n as f64 - 0.5).abs();
            let fb = (ones[b] as f64 / n as f64 - 0.5).abs();
            fa.total_cmp(&fb)
        });
    }
    // The fairest 128 bits form the pool each table draws from, leaving out the table's check
    // word (see `check_bits`).
    let pool = &order[..128];
    let mut state = 0x9E37_79B9_u64;
    (0..TABLES)
        .map(|t| {
            let check = (t % 8) * 32..(t % 8) * 32 + 32;
            let mut chosen = [0u8; KEY_BITS];
            let mut used = [false; 128];
            let mut i = 0;
            while i < KEY_BITS {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let k = (state % 128) as usize;
                if !used[k] && !check.contains(&pool[k]) {
                    used[k] = true;
                    chosen[i] = pool[k] as u8;
                    i += 1;
                }
            }
            chosen
        })
        .collect()
}

/// How many of a capture's keypoints are indexed.
fn slots(ds: &Indexed) -> usize {
    ds.len().min(SLOT_MASK as usize + 1)
}

/// Key bits the first pass of [`build_table`] partitions by.
const PART_BITS: usize = 8;

/// One table: bucket offsets and items (see [`Index`]), each bucket's items in entry order.
///
/// A counting sort straight into a million buckets would touch the bucket counts and the
/// items at random, a cache miss per descriptor (millions at 100,000 captures); instead the
/// items are first partitioned by their keys' top bits (a few hundred write streams), and
/// each partition, whose buckets and items fit in cache, is then counted and placed. Both
/// passes are stable.
fn build_table(t: usize, bits: &[u8; KEY_BITS], all: &[Indexed]) -> (Vec<u32>, Vec<[u32; 2]>) {
    const LOW: usize = KEY_BITS - PART_BITS;
    let all = &all[..all.len().min(MAX_ENTRIES)];
    let n: usize = all.iter().map(slots).sum();
    let mut part = vec![0usize; (1 << PART_BITS) + 1];
    let mut keys: Vec<u32> = Vec::with_capacity(n);
    for ds in all {
        for (_, d) in &ds[..slots(ds)] {
            let k = key(d, bits);
            part[(k >> LOW) + 1] += 1;
            keys.push(k as u32);
        }
    }
    for i in 1..part.len() {
        part[i] += part[i - 1];
    }
    // (key, item, check bits), partitioned.
    let mut parted = vec![[0u32; 3]; n];
    let mut fill = part.clone();
    let mut next = keys.iter();
    for (e, ds) in all.iter().enumerate() {
        for (slot, (_, d)) in ds[..slots(ds)].iter().enumerate() {
            let k = next.next().copied().unwrap_or(0);
            let p = k as usize >> LOW;
            parted[fill[p]] = [k, (e as u32) << SLOT_BITS | slot as u32, check_bits(d, t)];
            fill[p] += 1;
        }
    }
    drop(keys);
    let mut offsets = vec![0u32; (1 << KEY_BITS) + 1];
    let mut items = vec![[0u32; 2]; n];
    for p in 0..1 << PART_BITS {
        let first = p << LOW;
        let chunk = &parted[part[p]..part[p + 1]];
        // This partition's bucket offsets: counts, then where each bucket starts.
        let local = &mut offsets[first..first + (1 << LOW)];
        for &[k, ..] in chunk {
            local[k as usize - first] += 1;
        }
        let mut at = part[p] as u32;
        for o in local.iter_mut() {
            (*o, at) = (at, at + *o);
        }
        let mut next = local.to_vec();
        for &[k, item, check] in chunk {
            let o = &mut next[k as usize - first];
            items[*o as usize] = [item, check];
            *o += 1;
        }
    }
    offsets[1 << KEY_BITS] = n as u32;
    (offsets, items)
}

impl Index {
    /// Build from entries and each entry's indexed keypoints. The tables are built in
    /// parallel (at 100,000 captures each holds millions of descriptors).
    pub fn build(entries: Vec<Entry>, indexed: &[Indexed]) -> Self {
        let bits = table_bits(indexed);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(TABLES));
        let mut tables: Vec<(usize, Vec<u32>, Vec<[u32; 2]>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|w| {
                    let bits = &bits;
                    s.spawn(move || {
                        (w..TABLES)
                            .step_by(threads)
                            .map(|t| {
                                let (offsets, items) = build_table(t, &bits[t], indexed);
                                (t, offsets, items)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        tables.sort_by_key(|t| t.0);
        let (offsets, items) = tables.into_iter().map(|(_, o, i)| (o, i)).unzip();
        let mut point_start = Vec::with_capacity(indexed.len() + 1);
        let mut points = Vec::with_capacity(indexed.iter().map(slots).sum());
        for ds in indexed {
            point_start.push(points.len() as u32);
            points.extend(
                ds[..slots(ds)]
                    .iter()
                    .map(|(p, _)| p.map(|v| (v * 8.0).round().clamp(0.0, 65535.0) as u16)),
            );
        }
        point_start.push(points.len() as u32);
        Self {
            hashes: entries.iter().map(|e| (e.phash, e.dhash)).collect(),
            entries,
            offsets,
            items,
            bits,
            points,
            point_start,
        }
    }

    /// Where entry `e`'s keypoint in `slot` lies (preview pixels).
    fn point(&self, e: u32, slot: u8) -> Option<[f64; 2]> {
        let at = self.point_start.get(e as usize)? + u32::from(slot);
        let end = *self.point_start.get(e as usize + 1)?;
        (at < end).then(|| self.points[at as usize].map(|v| f64::from(v) / 8.0))
    }

    /// The most of one entry's hits (`run`, those `counts` marks) that one upright placement
    /// explains, and that placement (capture preview → query pixels, `query` the query
    /// keypoints) when it explains at least [`PLACED`].
    ///
    /// Published images are resized, cropped and stretched, not turned: a placement is a
    /// scale per axis (0.3–3.5, at most 1.6 apart) and a shift, and any two hits spread along
    /// both axes fix one. Descriptors that merely look alike (corners of flat shapes, at
    /// 100,000 captures) land anywhere; a true source's land where its keypoints are, so
    /// this separates a true source with a few hits from look-alikes with more.
    pub fn placement(
        &self,
        run: &[Hit],
        counts: Option<&[bool]>,
        query: &[[f32; 2]],
    ) -> (u32, Option<Affine>) {
        /// Capture pixels two points must be apart along an axis to fix its scale.
        const SPAN: f64 = 12.0;
        /// Hits a placement is fitted from, at most (a true source's first hits suffice).
        const FIT_FROM: usize = 16;
        let mut pairs: Vec<Pair> = Vec::with_capacity(run.len());
        for &(qi, e, slot) in run {
            if counts.is_some_and(|c| !c[qi as usize]) {
                continue;
            }
            if let (Some(c), Some(q)) = (self.point(e, slot), query.get(qi as usize)) {
                pairs.push((c, [f64::from(q[0]), f64::from(q[1])]));
            }
        }
        let mut best: (u32, Option<Affine>) = (pairs.len().min(1) as u32, None);
        let fit = &pairs[..pairs.len().min(FIT_FROM)];
        let mut inliers: Vec<Pair> = Vec::with_capacity(pairs.len());
        for (i, &(c1, q1)) in fit.iter().enumerate() {
            for &(c2, q2) in &fit[i + 1..] {
                let axis = |a: usize| {
                    let dc = c2[a] - c1[a];
                    (dc.abs() >= SPAN).then(|| (q2[a] - q1[a]) / dc)
                };
                let (sx, sy) = match (axis(0), axis(1)) {
                    (Some(x), Some(y)) => (x, y),
                    (Some(s), None) | (None, Some(s)) => (s, s),
                    (None, None) => continue,
                };
                let ok = |s: f64| (0.3..=3.5).contains(&s);
                if !ok(sx) || !ok(sy) || sx.max(sy) > 1.6 * sx.min(sy) {
                    continue;
                }
                let t = [
                    0.5 * (q1[0] + q2[0] - sx * (c1[0] + c2[0])),
                    0.5 * (q1[1] + q2[1] - sy * (c1[1] + c2[1])),
                ];
                // Keypoints lie to about a pixel of their pyramid level, on both sides.
                let tol = 2.5 + sx.max(sy);
                inliers.clear();
                inliers.extend(pairs.iter().filter(|(c, q)| {
                    (q[0] - sx * c[0] - t[0]).abs() <= tol && (q[1] - sy * c[1] - t[1]).abs() <= tol
                }));
                if inliers.len() as u32 <= best.0 {
                    continue;
                }
                let n = one_to_one(&inliers);
                if n > best.0 {
                    let placed = Affine {
                        m: [[sx, 0.0], [0.0, sy]],
                        t,
                    };
                    best = (n, (n >= PLACED).then_some(placed));
                }
            }
        }
        best
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Which captures each query descriptor hits: `(query descriptor, entry, stored
    /// descriptor)`, each once, ordered by entry and then by query descriptor (a descriptor
    /// may hit several of one capture's keypoints: corners of flat shapes look alike, and
    /// only one of them is where the capture lies). A hit is a shared bucket in some table
    /// and check bits within `CHECK_DISTANCE`; buckets fuller than `reach` allows are
    /// skipped.
    pub fn hits(&self, descriptors: &[Descriptor], reach: Reach) -> Hits {
        let total = self.items.first().map_or(0, Vec::len);
        // (At least 6 times the multiple: in a small collection every bucket is near empty.)
        let crowded = (reach.fill() * total / (1usize << KEY_BITS)).max(6 * reach.fill());
        // At 100,000 captures the tables are far larger than the caches, and a probe is two
        // cache misses (its bucket's bounds, then its first member). Each step below is a
        // loop of independent, branch-free reads, so the misses of many probes are in flight
        // at once; the scan that branches on what it reads then finds them all cached.
        let keys: Vec<(u32, usize, usize)> = descriptors
            .iter()
            .enumerate()
            .flat_map(|(qi, d)| {
                self.bits
                    .iter()
                    .enumerate()
                    .map(move |(t, tb)| (qi as u32, t, key(d, tb)))
            })
            .collect();
        let bounds: Vec<(u32, u32)> = keys
            .iter()
            .map(|&(_, t, k)| (self.offsets[t][k], self.offsets[t][k + 1]))
            .collect();
        let touched = keys
            .iter()
            .zip(&bounds)
            .fold(0u32, |acc, (&(_, t, _), &(a, _))| {
                acc ^ self.items[t].get(a as usize).map_or(0, |it| it[1])
            });
        std::hint::black_box(touched);
        let probes = keys
            .iter()
            .zip(&bounds)
            .filter(|(_, (a, b))| b > a && ((b - a) as usize) <= crowded)
            .map(|(&(qi, t, _), &(a, b))| (qi, t as u32, a, b));
        // Per entry: the last query descriptor that hit it, and which of its slots it hit.
        let mut last = vec![(u32::MAX, 0u64); self.entries.len()];
        let mut out = Vec::new();
        for (qi, t, a, b) in probes {
            let check = check_bits(&descriptors[qi as usize], t as usize);
            for &[packed, c] in &self.items[t as usize][a as usize..b as usize] {
                let e = packed >> SLOT_BITS;
                let slot = packed & SLOT_MASK;
                if (c ^ check).count_ones() <= CHECK_DISTANCE {
                    let l = &mut last[e as usize];
                    if l.0 != qi {
                        *l = (qi, 0);
                    }
                    if l.1 >> slot & 1 == 0 {
                        l.1 |= 1 << slot;
                        out.push((qi, e, slot as u8));
                    }
                }
            }
        }
        Hits::new(by_entry(out))
    }

    /// Candidates for a query (its keypoints' descriptors and positions, and the (pHash,
    /// dHash) pairs of the query and its panels); see [`Index::candidates_from`].
    pub fn candidates(
        &self,
        descriptors: &[Descriptor],
        points: &[[f32; 2]],
        hashes: &[(u64, u64)],
        want: Wanted,
    ) -> Vec<Candidate> {
        let hits = self.hits(descriptors, Reach::Distinctive);
        self.candidates_from(&hits, points, None, hashes, want)
    }

    /// Candidates from precomputed [`Index::hits`] (ordered by entry; `points`: where each
    /// query keypoint lies), counting only the query descriptors `counts` marks (those inside
    /// one panel of the published image; `None`: all of them): captures hit by at least
    /// `want.min_votes` query descriptors, and captures whose whole-frame hashes are within
    /// `want.max_hash` of any of `hashes`. Best first (hash near-duplicates, then the most
    /// hits one placement explains, then the most hits), at most `want.limit`.
    pub fn candidates_from(
        &self,
        hits: &Hits,
        points: &[[f32; 2]],
        counts: Option<&[bool]>,
        hashes: &[(u64, u64)],
        want: Wanted,
    ) -> Vec<Candidate> {
        let Wanted {
            min_votes,
            min_agree,
            max_hash,
            limit,
        } = want;
        let nearest_hash = |entry: (u64, u64)| {
            hashes
                .iter()
                .map(|&q| hash_distance(entry, q))
                .min()
                .unwrap_or(64)
        };
        let candidate = |e: usize, votes: u32, run: &[Hit]| {
            let (agree, placed) = self.placement(run, counts, points);
            Candidate {
                index: e,
                votes,
                agree,
                placed,
                phash_distance: nearest_hash(self.hashes[e]),
            }
        };
        // A region's votes are some of the whole image's: only captures with enough of
        // those are counted again.
        let mut voted: Vec<(u32, u32, &[Hit])> = hits
            .runs
            .iter()
            .filter(|r| r.votes >= min_votes)
            .filter_map(|r| {
                let run = &hits.all[r.start as usize..r.end as usize];
                let n = counts.map_or(r.votes, |c| votes(run, c));
                (n >= min_votes).then_some((r.entry, n, run))
            })
            .collect();
        // Most votes first. A capture's hits in place never outnumber its votes: once the
        // `limit`-th most hits in place reach a capture's votes, it and all after it rank
        // below those `limit`.
        voted.sort_by_key(|r| std::cmp::Reverse(r.1));
        let mut out: Vec<Candidate> = Vec::new();
        let mut most: Vec<u32> = Vec::with_capacity(limit + 1);
        for &(e, v, run) in &voted {
            if most.len() == limit && most.last().is_some_and(|&m| v <= m) {
                break;
            }
            let c = candidate(e as usize, v, run);
            if c.agree < min_agree {
                continue;
            }
            let at = most.partition_point(|&m| m >= c.agree);
            most.insert(at, c.agree);
            most.truncate(limit);
            out.push(c);
        }
        // Near-duplicates by hash: one tight scan per query hash.
        let mut near: Vec<usize> = Vec::new();
        for &q in hashes {
            near.extend(
                self.hashes
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &e)| (hash_distance(e, q) <= max_hash).then_some(i)),
            );
        }
        near.sort_unstable();
        near.dedup();
        for i in near {
            if !out.iter().any(|c| c.index == i) {
                let run = hits.of(i as u32);
                let v = votes(run, counts.unwrap_or(&[]));
                out.push(candidate(i, v, run));
            }
        }
        out.sort_by(|a, b| {
            let ka = (a.phash_distance <= max_hash, a.agree, a.votes);
            let kb = (b.phash_distance <= max_hash, b.agree, b.votes);
            kb.cmp(&ka)
        });
        out.truncate(limit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_ordered_by_entry_then_query_descriptor() {
        let mut s = 7u64;
        let mut hits: Vec<Hit> = (0..5000u32)
            .map(|qi| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                (qi / 3, ((s >> 33) as u32) % (1 << 26), (qi % 64) as u8)
            })
            .collect();
        hits.push((9999, 1 << 25, 0));
        let sorted = by_entry(hits.clone());
        let mut want = hits;
        want.sort_by_key(|h| (h.1, h.0));
        assert_eq!(sorted, want);
    }

    /// `n` captures of 48 random keypoints each.
    fn random_points(n: usize, rnd: &mut impl FnMut() -> u64) -> Vec<Indexed> {
        (0..n)
            .map(|_| {
                (0..48)
                    .map(|_| {
                        let p = [(rnd() % 512) as f32, (rnd() % 384) as f32];
                        (p, [rnd(), rnd(), rnd(), rnd()])
                    })
                    .collect()
            })
            .collect()
    }

    /// The index of `all`, with random hashes.
    fn index_of(all: &[Indexed], rnd: &mut impl FnMut() -> u64) -> Index {
        let entries: Vec<Entry> = (0..all.len())
            .map(|i| Entry {
                capture_id: format!("cap_{i}"),
                phash: rnd(),
                dhash: rnd(),
            })
            .collect();
        Index::build(entries, all)
    }

    fn random_collection(n: usize, rnd: &mut impl FnMut() -> u64) -> (Index, Vec<Indexed>) {
        let all = random_points(n, rnd);
        (index_of(&all, rnd), all)
    }

    fn lcg(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s
        }
    }

    #[test]
    fn each_bucket_holds_the_descriptors_with_its_key_in_entry_order() {
        let mut rnd = lcg(11);
        let mut all = random_points(400, &mut rnd);
        all[3].truncate(5);
        all[4].clear();
        // More keypoints than are indexed: only the first 64 are.
        let more = [all[6].clone(), all[7].clone()].concat();
        all[5].extend(more);
        let bits = table_bits(&all);
        for t in [0, 5] {
            let (offsets, items) = build_table(t, &bits[t], &all);
            let mut want: Vec<(usize, [u32; 2])> = Vec::new();
            for (e, ds) in all.iter().enumerate() {
                for (slot, (_, d)) in ds.iter().take(64).enumerate() {
                    want.push((
                        key(d, &bits[t]),
                        [(e as u32) << SLOT_BITS | slot as u32, check_bits(d, t)],
                    ));
                }
            }
            want.sort_by_key(|w| w.0);
            assert_eq!(items, want.iter().map(|w| w.1).collect::<Vec<_>>());
            assert_eq!(offsets.len(), (1 << KEY_BITS) + 1);
            for (k, o) in offsets.iter().enumerate() {
                assert_eq!(*o as usize, want.partition_point(|w| w.0 < k), "bucket {k}");
            }
        }
    }

    const WANT: Wanted = Wanted {
        min_votes: 5,
        min_agree: 0,
        max_hash: 0,
        limit: 3,
    };

    #[test]
    fn a_descriptor_finds_its_capture_and_where_it_lies() {
        let mut rnd = lcg(1);
        let (idx, all) = random_collection(200, &mut rnd);
        // A query made of capture 77's descriptors with a few flipped bits each, its
        // keypoints scaled 1.5× across and 1.2× down and shifted.
        let (points, q): (Vec<[f32; 2]>, Vec<Descriptor>) = all[77]
            .iter()
            .map(|(p, d)| {
                (
                    [1.5 * p[0] - 40.0, 1.2 * p[1] + 7.0],
                    [d[0] ^ 0b1001, d[1] ^ (1 << 40), d[2], d[3] ^ 0x10],
                )
            })
            .unzip();
        let c = idx.candidates(&q, &points, &[], WANT);
        assert_eq!(c[0].index, 77);
        assert!(c[0].votes >= 30, "{:?}", c[0]);
        assert!(c[0].agree >= c[0].votes - 1, "{:?}", c[0]);
        let placed = c[0].placed.expect("a placement");
        let p = placed.apply([100.0, 200.0]);
        assert!(
            (p[0] - 110.0).abs() < 1.0 && (p[1] - 247.0).abs() < 1.0,
            "{p:?}"
        );
        let by_hash = idx.candidates(
            &[],
            &[],
            &[(idx.entries[5].phash ^ 0b11, 0)],
            Wanted {
                max_hash: 4,
                ..WANT
            },
        );
        assert_eq!(by_hash[0].index, 5);
    }

    #[test]
    fn generic_reach_reads_crowded_buckets() {
        let mut rnd = lcg(3);
        let mut all = random_points(400, &mut rnd);
        // One corner that 300 captures share (a flat shape's corner, say), at the same place
        // in each: its bucket is far fuller than average.
        let corner = all[0][0].1;
        for ds in all.iter_mut().take(300) {
            ds[0] = ([100.0, 100.0], corner);
        }
        let idx = index_of(&all, &mut rnd);
        let hit = |reach| idx.hits(&[corner], reach).all.len();
        assert_eq!(hit(Reach::Distinctive), 0);
        assert_eq!(hit(Reach::Generic), 300);
    }

    #[test]
    fn hits_that_land_anywhere_are_not_placed() {
        let mut rnd = lcg(9);
        let (idx, all) = random_collection(50, &mut rnd);
        // Capture 7's descriptors at unrelated positions: every hit, no placement (at most
        // two hits agree by chance).
        let (points, q): (Vec<[f32; 2]>, Vec<Descriptor>) = all[7]
            .iter()
            .map(|(_, d)| ([(rnd() % 640) as f32, (rnd() % 480) as f32], *d))
            .unzip();
        let c = idx.candidates(&q, &points, &[], WANT);
        assert_eq!(c[0].index, 7);
        assert!(c[0].votes >= 40, "{:?}", c[0]);
        assert!(c[0].agree < PLACED && c[0].placed.is_none(), "{:?}", c[0]);
        // Turned a quarter: not an upright placement.
        let (points, q): (Vec<[f32; 2]>, Vec<Descriptor>) = all[7]
            .iter()
            .map(|(p, d)| ([400.0 - p[1], p[0]], *d))
            .unzip();
        let c = idx.candidates(&q, &points, &[], WANT);
        assert!(c[0].agree < 6, "{:?}", c[0]);
    }
}
