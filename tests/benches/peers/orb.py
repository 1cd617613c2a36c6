"""Peer for the pose benchmark: OpenCV ORB (2000 features) + brute-force Hamming matching +
estimateAffinePartial2D (RANSAC), on the same image pairs.

Arguments: pairs of files (baseline frame baseline frame ...), after `--runs N` to time N runs
of each pair instead of 3 (`--runs 1`: the whole process does what one command does). Prints
one JSON document:
[{"dx", "dy", "theta_deg", "scale", "ms", "ok"}] in the pose convention
p_frame = c + s·R(θ)(p_base − c) + d, θ counter-clockwise on screen, c the baseline centre.
"""
import json
import math
import sys
import time

import cv2
import numpy as np

cv2.setNumThreads(1)
orb = cv2.ORB_create(nfeatures=2000)
bf = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
out = []
args = sys.argv[1:]
runs = 3
if args[:1] == ["--runs"]:
    runs, args = int(args[1]), args[2:]
for i in range(0, len(args), 2):
    a = cv2.imread(args[i], cv2.IMREAD_GRAYSCALE)
    b = cv2.imread(args[i + 1], cv2.IMREAD_GRAYSCALE)
    best, res = None, None
    for _ in range(runs):
        t = time.perf_counter()
        ka, da = orb.detectAndCompute(a, None)
        kb, db = orb.detectAndCompute(b, None)
        m, inl = None, None
        if da is not None and db is not None and len(ka) >= 2 and len(kb) >= 2:
            matches = bf.match(da, db)
            if len(matches) >= 2:
                src = np.float32([ka[x.queryIdx].pt for x in matches])
                dst = np.float32([kb[x.trainIdx].pt for x in matches])
                m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
        res = m
    h, w = a.shape
    c = np.array([w / 2.0, h / 2.0])
    if res is None:
        out.append({"ok": False, "ms": best * 1e3})
        continue
    s = math.hypot(res[0, 0], res[1, 0])
    phi = math.atan2(res[1, 0], res[0, 0])
    d = res[:, :2] @ c + res[:, 2] - c
    out.append({"ok": True, "dx": float(d[0]), "dy": float(d[1]), "theta_deg": -math.degrees(phi), "scale": s, "ms": best * 1e3})
print(json.dumps(out))
