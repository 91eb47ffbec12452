"""Fuzzing the readers with hypothesis: no input may crash them with anything but our own
error type, or make them allocate far beyond the file's size. (A longer campaign with the
same properties: bench/fuzz.py.)"""
import gzip
import os
import resource
import struct

import torch  # noqa: F401  (imported up front: its import must not count as the reader's memory)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnist_logreg.data import load_kaggle_csv, read_idx
from mnist_logreg.errors import DataError

# bench/fuzz.py runs the same tests with many more examples through FUZZ_EXAMPLES
FAST = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def idx_like():
    """Bytes that look like IDX often enough to reach the deep checks."""
    header = st.builds(lambda dt, nd, dims: bytes([0, 0, dt, nd]) + struct.pack(f">{len(dims)}I", *dims),
                       st.sampled_from([8, 8, 8, 9, 0x0D]), st.integers(0, 5),
                       st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 40), min_size=0, max_size=4))
    return st.one_of(st.binary(max_size=300), st.builds(lambda h, b: h + b, header, st.binary(max_size=2000)))


def check_reader(path, data, kind):
    path.write_bytes(data)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        t = read_idx(path, kind, num_classes=10)
        assert t.numel() <= len(data) * 1100  # never more than the bytes could hold
    except DataError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 50_000  # no runaway allocation


@FAST
@given(data=idx_like(), kind=st.sampled_from(["images", "labels", None]), gz=st.booleans())
def test_idx_reader_never_crashes(tmp_path, data, kind, gz):
    check_reader(tmp_path / ("f.gz" if gz else "f"), gzip.compress(data) if gz else data, kind)


@FAST
@given(data=st.binary(max_size=400))
def test_idx_reader_on_corrupted_gzip(tmp_path, data):
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]))
    check_reader(tmp_path / "c.gz", good[:10] + data, "labels")


def csv_like():
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    cell = st.one_of(st.integers(-5, 300).map(str), st.sampled_from(["", "x", "1.5", "nan", " 3", "1e3", '"7"']))
    # a row: n cells of one value (any cell, hostile ones included), up to 8 of them changed; drawn
    # cell by cell, 785 draws a row made generation ~90% of this test's 17 s, for the same class
    row = st.builds(lambda n, fill, changes: ",".join(changes.get(i, fill) for i in range(n)),
                    st.integers(783, 787), cell, st.dictionaries(st.integers(0, 786), cell, max_size=8))
    return st.one_of(st.text(max_size=300),
                     st.builds(lambda rows: header + "\n" + "\n".join(rows), st.lists(row, max_size=3)))


@FAST
@given(text=csv_like())
def test_csv_reader_never_crashes(tmp_path, text):
    p = tmp_path / "train.csv"
    p.write_text(text)
    try:
        s = load_kaggle_csv(p)
        assert s.images.shape[1:] == (28, 28) and len(s.labels) == len(s.images)
        assert int(s.images.max()) <= 255 if len(s) else True
    except DataError as e:
        assert str(p) in str(e) and "\n" not in str(e)
