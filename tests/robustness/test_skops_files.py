"""A tampered .skops file (issue 25, item 3): mnist_logreg.sklearn.load trusts exactly the three
estimator classes; a file naming any other callable of the package, the way a "reduce" node
names the function it calls, is refused with one line and that callable is never called."""
import importlib
import inspect
import io
import json
import pkgutil
import zipfile

import numpy as np
import pytest

import mnist_logreg
from mnist_logreg.errors import CheckpointError
from mnist_logreg.sklearn import SKOPS_TRUSTED, SoftmaxClassifier, load


@pytest.fixture(scope="module")
def skops_io():
    """skops.io, imported by the tests that use it (1.5 s: not in every test process's collection)."""
    return pytest.importorskip("skops.io")


def _callables():
    """(module, name) of every function and class defined in the package's modules."""
    found = []
    for info in pkgutil.iter_modules(mnist_logreg.__path__):
        if info.name in ("cli", "__main__"):
            continue
        mod = importlib.import_module(f"mnist_logreg.{info.name}")
        for name, obj in vars(mod).items():
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", "") == mod.__name__:
                found.append((mod.__name__, name))
    return sorted(set(found))


CALLABLES = [c for c in _callables() if f"{c[0]}.{c[1]}" not in SKOPS_TRUSTED]


@pytest.fixture(scope="module")
def honest(tmp_path_factory, skops_io):
    clf = SoftmaxClassifier(C=1.0).fit(np.eye(4), [0, 1, 0, 1])
    path = tmp_path_factory.mktemp("skops") / "clf.skops"
    skops_io.dump(clf, path)
    return path.read_bytes()


def _tampered(honest: bytes, module: str, name: str, loader: str) -> bytes:
    """The honest file with its ``tol`` attribute replaced by a node naming module.name, in the
    shape skops itself writes a function attribute (FunctionNode), or as an object to build."""
    src = zipfile.ZipFile(io.BytesIO(honest))
    schema = json.loads(src.read("schema.json"))
    node = {"__class__": name, "__module__": module, "__loader__": loader, "__id__": 3}
    if loader == "ObjectNode":
        node["content"] = schema["content"]["content"]["C"]  # a plain value as its state
    schema["content"]["content"]["tol"] = node
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.namelist():
            z.writestr(item, json.dumps(schema) if item == "schema.json" else src.read(item))
    return out.getvalue()


def test_the_package_has_callables_to_try(honest, tmp_path, skops_io):
    assert len(CALLABLES) > 100 and ("mnist_logreg._files", "atomic_write_text") in CALLABLES
    # the tampered files are real skops files: skops lists the name they carry, as it would
    # for the documented recipe, which then trusted every mnist_logreg.* name
    data = _tampered(honest, "mnist_logreg._files", "atomic_write_text", "FunctionNode")
    assert "mnist_logreg._files.atomic_write_text" in skops_io.get_untrusted_types(data=data)
    fn = skops_io.loads(data, trusted=skops_io.get_untrusted_types(data=data)).tol
    assert fn.__name__ == "atomic_write_text"  # what the old recipe let in


@pytest.mark.parametrize("loader", ["FunctionNode", "ObjectNode"])
def test_no_callable_of_the_package_is_called_by_a_tampered_file(honest, tmp_path, monkeypatch, loader):
    called = []
    for module, name in CALLABLES:
        mod = importlib.import_module(module)
        original = getattr(mod, name)
        if inspect.isfunction(original) and name not in ("read_input", "mib"):  # a spy in its place (the two
            # helpers sklearn.load reads the file with stay): it must never be reached
            monkeypatch.setattr(mod, name, lambda *a, _n=name, **k: called.append(_n))
        path = tmp_path / "t.skops"
        path.write_bytes(_tampered(honest, module, name, loader))
        with pytest.raises(CheckpointError, match=rf"refused: it names {module}\.{name}\b") as e:
            load(path)
        assert "\n" not in str(e.value)
    assert called == [] and not (tmp_path / "pwned.txt").exists()


def test_an_honest_file_loads_and_garbage_is_one_line(honest, tmp_path):
    (tmp_path / "ok.skops").write_bytes(honest)
    assert load(tmp_path / "ok.skops").predict(np.eye(4)).tolist() == [0, 1, 0, 1]
    (tmp_path / "bad.skops").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable .skops file"):
        load(tmp_path / "bad.skops")
