//! The in-memory index over every capture's fingerprint: whole-frame hashes scanned by popcount,
//! and locality-sensitive hash tables over the keypoint descriptors (each table keys a
//! descriptor by 20 fixed bits, so a bucket holds a handful of descriptors even at 100,000
//! captures, and checks a hit on 32 other bits kept beside it), so one published image is
//! matched against 100,000 captures in a few milliseconds.

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

/// A candidate source with its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub index: usize,
    /// Query descriptors that hit this capture in some table.
    pub votes: u32,
    /// Smallest pHash distance over the query's windows.
    pub phash_distance: u32,
}

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
}

/// A query descriptor's hit on an indexed capture: (query descriptor, entry, the stored
/// descriptor's place among the entry's).
pub type Hit = (u32, u32, u8);

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
fn table_bits(descriptors: &[Vec<Descriptor>]) -> Vec<[u8; KEY_BITS]> {
    let mut ones = [0u64; 256];
    let mut n = 0u64;
    for d in descriptors.iter().flatten().step_by(7) {
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

/// One table: bucket offsets and items (see [`Index`]), each descriptor keyed once.
fn build_table(
    t: usize,
    bits: &[u8; KEY_BITS],
    descriptors: &[Vec<Descriptor>],
) -> (Vec<u32>, Vec<[u32; 2]>) {
    let buckets = 1usize << KEY_BITS;
    let indexed = |ds: &Vec<Descriptor>| ds.len().min(SLOT_MASK as usize + 1);
    let mut keys: Vec<u32> = Vec::with_capacity(descriptors.iter().map(indexed).sum());
    let mut counts = vec![0u32; buckets + 1];
    for ds in descriptors.iter().take(MAX_ENTRIES) {
        for d in &ds[..indexed(ds)] {
            let k = key(d, bits);
            keys.push(k as u32);
            counts[k + 1] += 1;
        }
    }
    for i in 1..=buckets {
        counts[i] += counts[i - 1];
    }
    let mut fill = counts.clone();
    let mut items = vec![[0u32; 2]; keys.len()];
    let mut next = keys.iter();
    for (e, ds) in descriptors.iter().take(MAX_ENTRIES).enumerate() {
        for (slot, d) in ds[..indexed(ds)].iter().enumerate() {
            let k = next.next().map_or(0, |&k| k as usize);
            items[fill[k] as usize] = [(e as u32) << SLOT_BITS | slot as u32, check_bits(d, t)];
            fill[k] += 1;
        }
    }
    (counts, items)
}

impl Index {
    /// Build from entries and each entry's descriptors. The tables are built in parallel
    /// (at 100,000 captures each holds millions of descriptors).
    pub fn build(entries: Vec<Entry>, descriptors: &[Vec<Descriptor>]) -> Self {
        let bits = table_bits(descriptors);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(TABLES));
        let mut tables: Vec<(usize, Vec<u32>, Vec<[u32; 2]>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|w| {
                    let bits = &bits;
                    s.spawn(move || {
                        (w..TABLES)
                            .step_by(threads)
                            .map(|t| {
                                let (offsets, items) = build_table(t, &bits[t], descriptors);
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
        Self {
            hashes: entries.iter().map(|e| (e.phash, e.dhash)).collect(),
            entries,
            offsets,
            items,
            bits,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Which captures each query descriptor hits: `(query descriptor, entry, stored
    /// descriptor)`, each (query descriptor, entry) pair once, ordered by entry and then by
    /// query descriptor. A hit is a shared bucket in some table and check bits within
    /// [`CHECK_DISTANCE`]; buckets far fuller than average are skipped (a descriptor that
    /// looks like thousands of others says nothing about which capture it came from).
    pub fn hits(&self, descriptors: &[Descriptor]) -> Vec<Hit> {
        let total = self.items.first().map_or(0, Vec::len);
        let crowded = (8 * total / (1usize << KEY_BITS)).max(48);
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
        let mut last = vec![u32::MAX; self.entries.len()];
        let mut out = Vec::new();
        for (qi, t, a, b) in probes {
            let check = check_bits(&descriptors[qi as usize], t as usize);
            for &[packed, c] in &self.items[t as usize][a as usize..b as usize] {
                let e = packed >> SLOT_BITS;
                if (c ^ check).count_ones() <= CHECK_DISTANCE && last[e as usize] != qi {
                    last[e as usize] = qi;
                    out.push((qi, e, (packed & SLOT_MASK) as u8));
                }
            }
        }
        by_entry(out)
    }

    /// Candidates for a query: captures hit by at least `min_votes` query descriptors, and
    /// captures whose whole-frame hashes are within `max_hash` of any of `hashes` (pHash,
    /// dHash pairs of the query and its panels). Best first, at most `limit`.
    pub fn candidates(
        &self,
        descriptors: &[Descriptor],
        hashes: &[(u64, u64)],
        min_votes: u32,
        max_hash: u32,
        limit: usize,
    ) -> Vec<Candidate> {
        let hits = self.hits(descriptors);
        self.candidates_from(&hits, None, hashes, min_votes, max_hash, limit)
    }

    /// Candidates from precomputed [`Index::hits`] (ordered by entry), counting only the
    /// query descriptors `counts` marks (those inside one panel of the published image;
    /// `None`: all of them).
    pub fn candidates_from(
        &self,
        hits: &[Hit],
        counts: Option<&[bool]>,
        hashes: &[(u64, u64)],
        min_votes: u32,
        max_hash: u32,
        limit: usize,
    ) -> Vec<Candidate> {
        debug_assert!(
            hits.is_sorted_by_key(|h| h.1),
            "hits must be ordered by entry"
        );
        let votes: Vec<(u32, u32)> = hits
            .chunk_by(|a, b| a.1 == b.1)
            .filter_map(|run| {
                let n = match counts {
                    None => run.len(),
                    Some(c) => run.iter().filter(|h| c[h.0 as usize]).count(),
                } as u32;
                (n > 0).then_some((run[0].1, n))
            })
            .collect();
        let hash_distance = |phash: u64, dhash: u64| {
            hashes
                .iter()
                .map(|&(p, d)| (p ^ phash).count_ones().min((d ^ dhash).count_ones() + 4))
                .min()
                .unwrap_or(64)
        };
        let mut out: Vec<Candidate> = Vec::new();
        for &(e, v) in &votes {
            if v >= min_votes {
                out.push(Candidate {
                    index: e as usize,
                    votes: v,
                    phash_distance: {
                        let (p, d) = self.hashes[e as usize];
                        hash_distance(p, d)
                    },
                });
            }
        }
        // Near-duplicates by hash: one tight scan per query hash.
        let mut near: Vec<usize> = Vec::new();
        for &(qp, qd) in hashes {
            near.extend(self.hashes.iter().enumerate().filter_map(|(i, &(p, d))| {
                ((p ^ qp).count_ones() <= max_hash || (d ^ qd).count_ones() + 4 <= max_hash)
                    .then_some(i)
            }));
        }
        near.sort_unstable();
        near.dedup();
        for i in near {
            if !out.iter().any(|c| c.index == i) {
                let (ph, dh) = self.hashes[i];
                let v = votes
                    .binary_search_by_key(&(i as u32), |&(e, _)| e)
                    .map_or(0, |k| votes[k].1);
                out.push(Candidate {
                    index: i,
                    votes: v,
                    phash_distance: hash_distance(ph, dh),
                });
            }
        }
        // Rank: hash near-duplicates first, then by votes.
        out.sort_by(|a, b| {
            let ka = (a.phash_distance <= max_hash, a.votes);
            let kb = (b.phash_distance <= max_hash, b.votes);
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

    #[test]
    fn a_descriptor_finds_its_capture() {
        let mut s = 1u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s
        };
        let descs: Vec<Vec<Descriptor>> = (0..200)
            .map(|_| (0..48).map(|_| [rnd(), rnd(), rnd(), rnd()]).collect())
            .collect();
        let entries: Vec<Entry> = (0..200)
            .map(|i| Entry {
                capture_id: format!("cap_{i}"),
                phash: rnd(),
                dhash: rnd(),
            })
            .collect();
        let idx = Index::build(entries, &descs);
        // A query made of capture 77's descriptors with a few flipped bits each.
        let q: Vec<Descriptor> = descs[77]
            .iter()
            .map(|d| [d[0] ^ 0b1001, d[1] ^ (1 << 40), d[2], d[3] ^ 0x10])
            .collect();
        let c = idx.candidates(&q, &[], 5, 0, 3);
        assert_eq!(c[0].index, 77);
        assert!(c[0].votes >= 30, "{:?}", c[0]);
        let by_hash = idx.candidates(&[], &[(idx.entries[5].phash ^ 0b11, 0)], 5, 4, 3);
        assert_eq!(by_hash[0].index, 5);
    }
}
