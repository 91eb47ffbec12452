"""$MNIST_LOGREG_DATASETS declares datasets, within bounds (issue 14, item 10): http(s)
mirrors only, names of folders and files that stay in the data folder, and no silent
replacement of a built-in dataset."""
import json

import pytest

from mnist_logreg import ConfigError
from mnist_logreg.datasets import get_spec

MD5 = {"train-images": "0", "train-labels": "0", "test-images": "0", "test-labels": "0"}
BASE = {"name": "mine", "folder": "Mine", "classes": [str(i) for i in range(10)], "mirrors": [], "md5": MD5}


@pytest.mark.parametrize("change,message", [
    ({"mirrors": ["file:///etc/"]}, "mirror 'file:///etc/' is not an http(s) URL"),
    ({"mirrors": ["ftp://example.org/"]}, "is not an http(s) URL"),
    ({"folder": "../../outside"}, "'../../outside' is not a plain file or folder name"),
    ({"folder": "/abs"}, "is not a plain file or folder name"),
    ({"files": {"train-images": "/etc/passwd", "train-labels": "a", "test-images": "b", "test-labels": "c"}},
     "'/etc/passwd' is not a plain file or folder name"),
    ({"name": "mnist"}, "mnist: redefines the built-in dataset"),
    ({"name": "../up"}, "a dataset name is lower-case letters"),
    ({"system_dirs": ["/usr/share"]}, "system_dirs is for built-in datasets only"),
    ({"classes": [str(i) for i in range(11)]}, "classes must be 10 printable names"),  # issue 25 (15): it trained
    ({"classes": []}, "classes must be 10 printable names"),                          # every epoch, then failed
    ({"classes": [str(i) for i in range(9)] + ["a\x1b[31m"]}, "classes must be 10 printable names"),
])
def test_a_declaration_out_of_bounds_is_one_line(tmp_path, monkeypatch, run_cli, change, message):
    (tmp_path / "d.json").write_text(json.dumps([{**BASE, **change}]))
    monkeypatch.setenv("MNIST_LOGREG_DATASETS", str(tmp_path / "d.json"))
    with pytest.raises(ConfigError, match="not a valid dataset list") as e:
        get_spec("mine")
    assert message in str(e.value) and "\n" not in str(e.value)
    code, _, err = run_cli("data")
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_a_built_in_is_replaced_only_when_the_entry_says_so(tmp_path, monkeypatch):
    (tmp_path / "d.json").write_text(json.dumps([{**BASE, "name": "mnist", "override": True,
                                                  "mirrors": ["https://mirror.example/mnist/"]}]))
    monkeypatch.setenv("MNIST_LOGREG_DATASETS", str(tmp_path / "d.json"))
    assert get_spec("mnist").mirrors == ("https://mirror.example/mnist/",)
