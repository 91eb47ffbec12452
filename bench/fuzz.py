"""A longer fuzzing campaign of the IDX and CSV readers than the test suite runs: the same
properties as tests/robustness/test_fuzz.py (only DataError, bounded memory), with many
more examples.

    python bench/fuzz.py [--examples 20000]
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=20_000)
    args = ap.parse_args()
    os.environ["FUZZ_EXAMPLES"] = str(args.examples)
    import robustness.test_fuzz as fz
    for name in ("test_idx_reader_never_crashes", "test_idx_reader_on_corrupted_gzip", "test_csv_reader_never_crashes"):
        test = getattr(fz, name)
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{name}: running {args.examples:,} examples ...", flush=True)
            test(tmp_path=Path(tmp))
            print(f"{name}: ok")


if __name__ == "__main__":
    main()
