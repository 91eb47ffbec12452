"""Checkpoints are checked field by field against one schema on load (issue 14, item 5): a
field of any wrong type, a key that is no name, weights that are finite but absurd, a sparse
tensor, a class name that matplotlib would read as maths: one line or a working model, never a
traceback in the commands that read it."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnist_logreg import CheckpointError, load_checkpoint
from mnist_logreg.checkpoint import FIELDS, read_fields

WRONG = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                  st.text(max_size=5), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                  st.lists(st.text(max_size=2), min_size=10, max_size=10), st.just([{"epoch": "abc"}]),
                  st.just({1: 2}), st.just([[1, 2]]))


@pytest.fixture(scope="module")
def good(dry_run_dir):
    return torch.load(dry_run_dir / "checkpoint.pt", weights_only=True)


def changed(good: dict, field, value) -> dict:
    """The good checkpoint with ``field`` (a key, ``config.NAME``, ``history.0``; an int: a key
    that is no name) set to ``value``; ``model.*`` fields are left to the caller."""
    ckpt = {**good, "config": dict(good["config"]), "history": list(good["history"]), "model": dict(good["model"])}
    if isinstance(field, str) and field.startswith("config."):
        ckpt["config"][field[7:]] = value
    elif isinstance(field, str) and field.startswith("history."):
        ckpt["history"][0] = value
    elif not (isinstance(field, str) and field.startswith("model.")):
        ckpt[field] = value
    return ckpt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(FIELDS) + ["config.lr", "config.solver", "history.0", 7]), value=WRONG)
def test_any_field_of_any_type_is_a_working_model_or_one_line(tmp_path, good, run_cli, field, value):
    path = tmp_path / "c.pt"
    torch.save(changed(good, field, value), path)
    for argv in (["predict", path, "--index", "0", "--json"], ["evaluate", path, "--split", "val"],
                 ["train", "--resume", path, "--epochs", "1", "--no-report"]):
        code, out, err = run_cli(*argv)
        assert code in (0, 2), (argv, err)
        if code == 2:
            assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("change,message", [
    (lambda w: w.fill_(3e38), r"has values up to 3e\+38"),
    (lambda w: w.to_sparse(), "is a torch.sparse_coo"),
])
def test_absurd_or_sparse_weights_are_refused(tmp_path, good, change, message):
    ckpt = {**good, "model": dict(good["model"])}
    ckpt["model"]["linear.weight"] = change(ckpt["model"]["linear.weight"].clone())
    torch.save(ckpt, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "c.pt")


def test_a_class_name_with_dollars_reports(tmp_path, good, data_dir):
    from mnist_logreg import build_report
    ckpt = {**good, "classes": [f"${i}$x" for i in range(9)] + ["$\\frac$"]}  # invalid mathtext last
    torch.save(ckpt, tmp_path / "c.pt")
    build_report(tmp_path / "c.pt", data_dir=data_dir, out_dir=tmp_path / "rep", log=None)
    import json
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["classes"][3] == "$3$x"
    assert (tmp_path / "rep" / "confusion.png").stat().st_size > 10_000  # drawn, names and all


def _with_opcodes(good_path, out, payload: bytes):
    """An honest checkpoint whose top-level table gains a field "extra" holding a list built from
    raw pickle opcodes ``payload`` (what no torch.save writes), zipped as torch zips."""
    import zipfile
    src = zipfile.ZipFile(good_path)
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("/data.pkl"):
                assert data.endswith(b".")
                data = data[:-1] + b"X\x05\x00\x00\x00extra](" + payload + b"es."
            z.writestr(name, data)


@pytest.mark.parametrize("payload,message", [
    (b"\x8f" * 2_000_000, "uses EMPTY_SET"),               # 2 MB of sets: about 400 MB once built
    (b"]" * 2_000_000, "builds over 300,000 objects"),     # 2 MB of lists: about 120 MB
    (b"\x8a\xff" + b"\x01" * 255, "integer"),              # a 600-digit integer
])
def test_a_pickle_that_would_amplify_is_refused_before_it_is_built(tmp_path, good, payload, message):
    import resource
    torch.save(good, tmp_path / "good.pt")
    _with_opcodes(tmp_path / "good.pt", tmp_path / "bad.pt", payload)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=message) as e:
        load_checkpoint(tmp_path / "bad.pt")
    assert "\n" not in str(e.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing was built


def test_an_unknown_field_is_refused(tmp_path, good):
    torch.save({**good, "surprise": [1, 2, 3]}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="a field named 'surprise', which no checkpoint of this tool has"):
        load_checkpoint(tmp_path / "c.pt")


WEIGHTS = st.sampled_from([
    lambda w: w, lambda w: w.fill_(float("nan")), lambda w: w.fill_(float("inf")), lambda w: w.fill_(3e38),
    lambda w: w.fill_(1e6), lambda w: w.fill_(1.0000001e6), lambda w: w.double(), lambda w: w.half(),
    lambda w: w.to_sparse(), lambda w: w.t().contiguous().t(), lambda w: w[..., :-1], lambda w: w.reshape(-1),
    lambda w: torch.cat([w, w])[10:], lambda w: w.int()])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(set(FIELDS) - {"trust"}) + ["config.lr", "history.0", "model.linear.weight",
                                                                 "model.linear.bias"]), value=WRONG, change=WEIGHTS)
def test_what_runs_reads_without_torch_is_what_load_checkpoint_reads(tmp_path, good, field, value, change):
    """Issue 24: `runs` reads checkpoints without torch (checkpoint.read_fields). Whatever that
    reader accepts, load_checkpoint accepts with the same fields; what it refuses, runs hands to
    load_checkpoint. The one field it checks less is ``trust`` (a table, its contents unread):
    `runs` does not show it, and every command that answers loads it with load_checkpoint."""
    ckpt = changed(good, field, value)
    if field.startswith("model."):
        ckpt["model"][field[6:]] = change(ckpt["model"][field[6:]].clone())
    torch.save(ckpt, tmp_path / "c.pt")
    try:
        fields = read_fields(tmp_path / "c.pt")
    except CheckpointError as e:
        assert len(str(e).splitlines()) == 1
        return
    loaded = load_checkpoint(tmp_path / "c.pt")  # raises if the light reader let through what it refuses
    assert (fields["epoch"], fields["config"], fields["metrics"], fields["history"], fields["dataset"]) == \
        (loaded.epoch, loaded.config, loaded.metrics, loaded.history, loaded.dataset)
    assert torch.equal(loaded.model.linear.weight, ckpt["model"]["linear.weight"].float().to_dense())
