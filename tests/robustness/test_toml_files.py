"""Settings files are flat (issue 25, item 5): whatever the text, reading one is a config or one
line, in bounded time and memory, before tomllib (quadratic in dotted keys: 32 kB took 1.23 GB)
or its recursion (10,000 nested arrays) see it."""
import resource
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_logreg.config import TrainConfig, TuneConfig
from mnist_logreg.errors import ConfigError

PIECES = st.sampled_from(["lr", "epochs", "a", ".", " ", "=", "1", "0.5", '"x"', "'y'", '"""', "[", "]", "{", "}",
                          ",", "\n", "#", "true", "\\", "[[t]]", "seed", "lams", "é", "\u2028"])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=60).map("".join))
def test_any_text_is_a_config_or_one_line(text):
    for cls in (TrainConfig, TuneConfig):
        try:
            cls.from_toml(text)
        except ConfigError as e:
            assert "\n" not in str(e).strip() or "got" in str(e)  # a value may be quoted back


@pytest.mark.parametrize("text", [
    "a" + ".a" * 16_000 + " = 1",                   # dotted keys: tomllib's quadratic case
    "".join(f"k{i}.x = 1\n" for i in range(4000)),   # many dotted keys
    "lams = " + "[" * 10_000 + "]" * 10_000,        # nesting: a RecursionError in tomllib
    "x = {" + "a = {" * 5000 + "}" * 5001,          # nested inline tables
    "[" + "a." * 3000 + "b]\nx = 1",                # a table header
])
def test_hostile_toml_is_refused_in_bounded_time_and_memory(text):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.process_time()
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_toml(text, source="c.toml")
    assert str(e.value).startswith("c.toml: ") and "\n" not in str(e.value)
    assert time.process_time() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_a_run_folder_config_and_multi_line_lists_still_read():
    cfg = TrainConfig.preset("digits")
    assert TrainConfig.from_toml(cfg.to_toml()) == cfg
    text = "# a tune file\nlams = [\n  1e-3,  # strong\n  1e-4,\n]\nsolver = 'newton'\n"
    assert TuneConfig.from_toml(text).lams == (1e-3, 1e-4)
