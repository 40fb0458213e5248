"""Where the shared, read-only test data lives (../shared next to the repository)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
SHARED_TESTDATA = SHARED / "testdata"
VENDOR_ROOTS = SHARED_TESTDATA / "tpm-vendor-roots"
EK_CERTS = SHARED_TESTDATA / "ek-certs"
