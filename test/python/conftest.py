import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = pathlib.Path(os.environ.get("VIDEO_SDK_TESTDATA", REPO.parent / "shared" / "testdata"))


def testdata(*parts: str) -> pathlib.Path:
    """Path of a shared test data file; skips the calling test with the reason when it is absent."""
    p = TESTDATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"test data {p} is absent (set VIDEO_SDK_TESTDATA to the shared testdata folder)")
    return p
