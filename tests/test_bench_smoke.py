"""Smoke runs of the benchmark scripts that CI can afford."""
from helpers import REPO


def test_accuracy_bench_smoke():
    """bench/accuracy.py's smoke version: every lever runs end to end and lands in the table."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(REPO / "bench" / "accuracy.py"), "--smoke", "--datasets", "mnist"],
                       capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| mnist |")]
    assert len(rows) == 24
    accs = {ln.split("|")[2].strip(): float(ln.split("|")[3].split("±")[0]) for ln in rows}
    assert accs["deskew, exact optimum"] > accs["raw pixels, exact optimum"] > 85
    # the refit sees 6,000 images instead of 4,000: one epoch of it ends ahead
    assert accs["raw pixels, Adam + cosine, refit on train+val"] > accs["raw pixels, Adam + cosine"]
    assert accs["deskew, robust loss + cosine"] > accs["raw pixels, robust loss + cosine"] > 75


def test_train_speed_bench_runs_to_the_end(data_dir):
    """bench/train_speed.py (make bench) printed its table and then died reading peak memory
    (issue 27): one epoch of each loop on 6,000 images, to the last line (on all 60,000 this
    took 20 s of the suite, to show a table whose figures the smoke does not read)."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(REPO / "bench" / "train_speed.py"), "--data-dir", str(data_dir),
                        "--smoke"], capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "peak resident memory" in r.stdout and "Traceback" not in r.stderr
