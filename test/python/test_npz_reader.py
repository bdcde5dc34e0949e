"""numpy reads what src/artifacts/npz.ts writes.

test/artifacts/write-sample.ts (compiled to dist/) writes the samples; these tests load them with
numpy.load and zipfile and check keys, shapes, dtypes and values exactly, and that each small member is
byte-for-byte what numpy.save itself writes. Set VIDEO_SDK_NPZ_BIG=1 to also write and read a member over
4 GiB (about a minute, 4.4 GB of disk).
"""
import io
import os
import pathlib
import struct
import subprocess
import zipfile

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
WRITER = REPO / "dist" / "test" / "artifacts" / "write-sample.js"
BIG = os.environ.get("VIDEO_SDK_NPZ_BIG") == "1"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    if not WRITER.exists():
        pytest.fail(f"{WRITER} is missing: build first with `npx tsc -p .`")
    out = tmp_path_factory.mktemp("npz")
    subprocess.run(["node", str(WRITER), str(out)] + (["--big"] if BIG else []), check=True, timeout=600)
    return out


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


EXPECTED_DTYPES = {
    "bool": np.array([True, False, True, True], dtype="|b1"),
    "uint8": np.array([0, 1, 127, 128, 255], dtype="|u1"),
    "int8": np.array([-128, -1, 0, 1, 127], dtype="|i1"),
    "uint16": np.array([0, 1, 65535], dtype="<u2"),
    "int16": np.array([-32768, -1, 0, 32767], dtype="<i2"),
    "uint32": np.array([0, 1, 4294967295], dtype="<u4"),
    "int32": np.array([-2147483648, -1, 0, 2147483647], dtype="<i4"),
    "uint64": np.array([0, 1, 18446744073709551615], dtype="<u8"),
    "int64": np.array([-9223372036854775808, -1, 0, 9007199254740993, 9223372036854775807], dtype="<i8"),
    "float32": np.array(
        [0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, np.finfo(np.float32).max, np.float32(1.401298464324817e-45)],
        dtype="<f4",
    ),
    "float64": np.array([0.0, -0.0, 0.1, -1e300, np.inf, -np.inf, np.nan, 5e-324, np.finfo(np.float64).max], dtype="<f8"),
    "float16": np.array([1.0, -2.0, np.inf, np.float16(2**-24), 65504.0], dtype="<f2"),
    "int32_2x3x4": np.arange(24, dtype="<i4").reshape(2, 3, 4),
    "float64_scalar": np.array(3.25, dtype="<f8"),
    "uint8_column": np.array([[7], [8], [9]], dtype="|u1"),
    "labels": np.array(["person", "bicycle", "", "ünïcødé 😀"]),
    "labels_2x2": np.array([["a", "bb"], ["ccc", "dddd"]]),
    "nested/path/name": np.array([1, -1], dtype="<i2"),
}


def same(a, b):
    """Exact equality: dtype, shape, bytes (so -0.0 and NaN payloads count too)."""
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.tobytes() == b.tobytes()


def test_every_dtype_loads_exactly(samples):
    path = samples / "dtypes.npz"
    with np.load(path) as z:
        assert sorted(z.files) == sorted(EXPECTED_DTYPES)
        for name, want in EXPECTED_DTYPES.items():
            same(z[name], want)


def test_members_are_what_numpy_save_writes(samples):
    with zipfile.ZipFile(samples / "dtypes.npz") as zf:
        assert zf.testzip() is None
        for name, want in EXPECTED_DTYPES.items():
            info = zf.getinfo(name + ".npy")
            assert info.compress_type == zipfile.ZIP_STORED
            assert zf.read(info) == npy_bytes(want), name


def test_npy_headers_are_64_byte_aligned_format_1(samples):
    with zipfile.ZipFile(samples / "dtypes.npz") as zf:
        for info in zf.infolist():
            with zf.open(info) as f:
                assert np.lib.format.read_magic(f) == (1, 0)
                np.lib.format.read_array_header_1_0(f)
                assert f.tell() % 64 == 0


def test_empty_arrays(samples):
    with np.load(samples / "empty.npz") as z:
        assert sorted(z.files) == ["f32_0", "i64_0x3", "str_0", "streamed_0x4", "streamed_5x0", "u8_2x0"]
        same(z["f32_0"], np.zeros((0,), "<f4"))
        same(z["i64_0x3"], np.zeros((0, 3), "<i8"))
        same(z["u8_2x0"], np.zeros((2, 0), "|u1"))
        same(z["str_0"], np.array([], dtype="<U1"))
        same(z["streamed_0x4"], np.zeros((0, 4), "<f8"))
        same(z["streamed_5x0"], np.zeros((5, 0), "<i4"))
    with np.load(samples / "no_arrays.npz") as z:
        assert z.files == []


def test_streamed_100mb(samples):
    path = samples / "streamed.npz"
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None  # every CRC, the streamed members' included
    with np.load(path) as z:
        assert sorted(z.files) == ["depth", "frame_index", "frames", "timestamps"]
        depth = z["depth"]
        assert depth.dtype == np.dtype("<f4") and depth.shape == (400, 256, 256)
        want = (np.arange(400 * 256 * 256, dtype=np.int64) % 65521).astype("<f4").reshape(400, 256, 256)
        assert np.array_equal(depth, want)
        same(z["frame_index"], np.arange(400, dtype="<i8"))
        same(z["timestamps"], np.arange(400, dtype="<f8") * 0.2)
        same(z["frames"], (np.arange(3 * 72) % 256).astype("|u1").reshape(3, 4, 6, 3))
    # The streamed member's header was rewritten in place with the final shape: still numpy.save's bytes.
    with zipfile.ZipFile(path) as zf:
        head = zf.open("depth.npy").read(128)
        assert head == npy_bytes(np.zeros((400, 256, 256), "<f4"))[:128]


def test_zip64_records_forced(samples):
    path = samples / "zip64_forced.npz"
    raw = path.read_bytes()
    # ZIP64 end of central directory record and its locator, right before the classic end record.
    assert raw[-22:-18] == b"PK\x05\x06"
    assert raw[-42:-38] == b"PK\x06\x07"
    (eocd64,) = struct.unpack("<Q", raw[-34:-26])
    assert raw[eocd64 : eocd64 + 4] == b"PK\x06\x06"
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        for info in zf.infolist():
            tags = []
            extra = info.extra
            while len(extra) >= 4:
                tag, size = struct.unpack("<HH", extra[:4])
                tags.append(tag)
                extra = extra[4 + size :]
            assert 0x0001 in tags, info.filename  # ZIP64 extended information
    with np.load(path) as z:
        assert sorted(z.files) == ["a", "b", "c", "d"]
        same(z["a"], np.arange(100, dtype="<f8") / 4)
        same(z["b"], np.array([[k, 2 * k, -k] for k in range(10)], dtype="<i4"))
        same(z["c"], np.array([1, 2], dtype="|u1"))
        same(z["d"], np.array(["zip", "64"]))


def test_npy_format_2_header(samples):
    path = samples / "header_v2.npy"
    with open(path, "rb") as f:
        assert np.lib.format.read_magic(f) == (2, 0)
    arr = np.load(path, max_header_size=200_000)
    same(arr, np.array([1, -2, 3], dtype="<i4"))


def test_no_temporary_files_left(samples):
    assert not [p.name for p in samples.iterdir() if ".tmp-" in p.name]


@pytest.mark.skipif(not BIG, reason="set VIDEO_SDK_NPZ_BIG=1 to write and read a 4.4 GB member")
def test_member_over_4_gib(samples):
    path = samples / "big.npz"
    rows, row_len = 4200, 1 << 20
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("big.npy")
        assert info.file_size > 2**32
        assert zf.getinfo("after.npy").header_offset > 2**32
        with zf.open(info) as f:  # reading to the end checks the CRC
            assert np.lib.format.read_magic(f) == (1, 0)
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            assert (shape, fortran, dtype) == ((rows, row_len), False, np.dtype("|u1"))
            for r in range(rows):
                chunk = f.read(row_len)
                assert len(chunk) == row_len
                if r % 97 == 0 or r == rows - 1:
                    assert chunk == bytes([r % 251]) * row_len, r
            assert f.read(1) == b""
    with np.load(path) as z:
        same(z["after"], np.array([7, 8, 9], dtype="<i4"))
