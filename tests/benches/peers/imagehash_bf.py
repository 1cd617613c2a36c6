"""Peer for the review benchmark: Python `imagehash` pHash with a NumPy brute-force Hamming scan.

Arguments: CAPTURES.txt (id<TAB>path per line) QUERIES.txt (a path per line) CACHE.npy
The capture hashes are computed once (two processes) and cached in CACHE.npy. For each query:
decode + pHash, then popcount(xor) over every stored hash; the nearest is the answer.
Prints one JSON document with per-query answers and timings.
"""
import json
import os
import sys
import time
from multiprocessing import Pool

import imagehash
import numpy as np
from PIL import Image


def phash64(path):
    with Image.open(path) as im:
        h = imagehash.phash(im)
    return int("".join("1" if b else "0" for b in h.hash.flatten()), 2)


def popcount(x):
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    b = x.view(np.uint8).reshape(-1, 8)
    return np.unpackbits(b, axis=1).sum(axis=1)


def main():
    captures, queries, cache = sys.argv[1:4]
    rows = [l.rstrip("\n").split("\t") for l in open(captures) if l.strip()]
    ids = [r[0] for r in rows]
    db_hash_s = 0.0
    if os.path.exists(cache):
        hashes = np.load(cache)
    else:
        hashes = None
    if hashes is None or len(hashes) != len(ids):
        t = time.perf_counter()
        with Pool(2) as pool:
            hashes = np.array(pool.map(phash64, [r[1] for r in rows], chunksize=256), dtype=np.uint64)
        db_hash_s = time.perf_counter() - t
        np.save(cache, hashes)
    out, hash_ms, search_ms = [], [], []
    t_all = time.perf_counter()
    for path in [l.strip() for l in open(queries) if l.strip()]:
        t = time.perf_counter()
        q = np.uint64(phash64(path))
        t1 = time.perf_counter()
        d = popcount(np.bitwise_xor(hashes, q))
        best = int(np.argmin(d))
        t2 = time.perf_counter()
        hash_ms.append((t1 - t) * 1e3)
        search_ms.append((t2 - t1) * 1e3)
        out.append({"best": ids[best], "distance": int(d[best])})
    total_s = time.perf_counter() - t_all
    print(json.dumps({
        "db_hash_s": db_hash_s,
        "hash_ms_p50": float(np.median(hash_ms)),
        "search_ms_p50": float(np.median(search_ms)),
        "search_ms_max": float(np.max(search_ms)),
        "total_s": total_s,
        "numpy": np.__version__,
        "queries": out,
    }))


if __name__ == "__main__":
    main()
