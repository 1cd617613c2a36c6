"""Peer for the lighting benchmark: OpenCV's ColorChecker detector (cv2.mcc) on the same files.

Prints one JSON document: [{"file", "found", "ms", "box"}] with the best of three runs per
file, on one thread (`--runs N` as the first argument: N runs instead).
"""
import json
import sys
import time

import cv2

cv2.setNumThreads(1)
out = []
args = sys.argv[1:]
runs = 3
if args[:1] == ["--runs"]:
    runs, args = int(args[1]), args[2:]
for f in args:
    img = cv2.imread(f)
    best, found, box = None, False, None
    for _ in range(runs):
        det = cv2.mcc.CCheckerDetector_create()
        det.setColorChartType(cv2.mcc.MCC24)
        t = time.perf_counter()
        ok = det.process(img, 1)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
        found = bool(ok)
        if ok:
            box = det.getBestColorChecker().getBox().reshape(-1).tolist()
    out.append({"file": f, "found": found, "ms": best * 1e3, "box": box})
print(json.dumps(out))
