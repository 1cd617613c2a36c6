#!/usr/bin/env bash
# The DICOM validators the interoperability tests run: Debian's dicom3tools (dciodvfy) and
# dcmtk (dcmdump, dcmj2pnm) come from scripts/setup-debian.sh --gui; pydicom (with Pillow, its
# JPEG decoder, and NumPy, for its pixel arrays) from PyPI into a venv under
# ~/.cache/sameframe-venv; fhir.resources (the FHIR tests parse bundles with it) and
# c2pa-python (the publication tests verify provenance manifests with it, an implementation
# independent of the kit's) too. Prints the venv's python.
set -euo pipefail
venv="$HOME/.cache/sameframe-venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pydicom, PIL, numpy, fhir.resources, c2pa' 2>/dev/null; then
  echo "dicom-tools: installing pydicom, NumPy, Pillow, fhir.resources and c2pa-python into $venv" >&2
  "$venv/bin/pip" install -q pydicom pillow numpy fhir.resources c2pa-python
fi
echo "$venv/bin/python"
