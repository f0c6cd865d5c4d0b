"""House checks (issue 17): docstrings that tell the truth, one list per vocabulary, caches in tmp."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import click
import pytest
from click.testing import CliRunner

import adaptive.cli as cli
import adaptive.exceptions as exceptions
from adaptive.config import RandomizationCfg
from decision_rules.allocation import ALLOCATION_KINDS, AllocationKind


def test_cli_docstring_names_every_command_and_exit_code():
    doc = cli.__doc__
    assert set(re.findall(r"[\w-]+", doc.splitlines()[0].split("``")[1])) - {"adaptive"} == set(
        cli.main.commands
    )
    codes = {
        cls.exit_code
        for _, cls in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(cls, exceptions.AdaptiveError)
    }
    listed = {int(c) for c in re.findall(r"^- (\d+) ", doc, flags=re.M)}
    assert listed == codes | {0, 130}
    for name, cls in inspect.getmembers(exceptions, inspect.isclass):
        if issubclass(cls, exceptions.AdaptiveError) and not name.startswith("_"):
            block = re.search(rf"^- {cls.exit_code} (.*?)(?=^- |\Z)", doc, flags=re.M | re.S).group(1)
            assert f"``{name}``" in block, (name, cls.exit_code)


def test_allocation_kinds_are_listed_once():
    assert ALLOCATION_KINDS == get_args(AllocationKind) == ("fixed", "thall_wathen", "variance_weighted")
    assert get_args(RandomizationCfg.model_fields["kind"].annotation) == ALLOCATION_KINDS


def test_caches_point_into_the_session_folder(tmp_path):
    """Numba, PyTensor, matplotlib and the quadrature tables write under the session's folder, in
    this process and in the processes it starts (fitting and Dask workers, CLI subprocesses)."""
    import _isolate_caches
    import matplotlib
    import numba
    import pytensor

    from adaptive.simulate.run import default_cache_dir

    root = _isolate_caches.ROOT
    assert root.is_dir() and not root.is_relative_to(Path.home())
    assert Path(numba.config.CACHE_DIR).is_relative_to(root)
    assert Path(pytensor.config.compiledir).is_relative_to(root)
    assert Path(matplotlib.get_cachedir()).is_relative_to(root)
    assert default_cache_dir().is_relative_to(root)
    code = (
        "import json, matplotlib, numba, pytensor\n"
        "from adaptive.simulate.run import default_cache_dir\n"
        "print(json.dumps([str(p) for p in (numba.config.CACHE_DIR, pytensor.config.compiledir, matplotlib.get_cachedir(),"
        " default_cache_dir())]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    for path in json.loads(out.stdout.strip().splitlines()[-1]):
        assert Path(path).is_relative_to(root), path


def test_an_unknown_beta_prior_name_is_refused():
    """It used to be unpacked as ``(a, b)`` (a two-letter name gave a nonsense prior)."""
    from decision_rules.beta import beta_prior, beta_prior_name

    assert beta_prior((2.0, 3.0), [0.2, 0.3])[1].tolist() == [3.0, 3.0]
    assert beta_prior_name((2.0, 3.0)) == "Beta(2, 3)"
    with pytest.raises(ValueError, match="unknown Beta prior 'ab'"):
        beta_prior("ab", 0.3)


def test_help_lists_whole_command_summaries_and_every_option_is_explained():
    out = CliRunner().invoke(cli.main, ["--help"], terminal_width=80).output
    listed = out.split("Commands:")[1].strip().splitlines()
    assert len(listed) == len(cli.main.commands)
    assert not any(line.rstrip().endswith("...") for line in listed), out
    missing = [
        (name, p.opts[0])
        for name, cmd in cli.main.commands.items()
        for p in cmd.params
        if isinstance(p, click.Option) and not p.help
    ]
    assert missing == []


@pytest.mark.parametrize(("columns", "width"), [(None, 180), ("100", 100), ("0", 180), ("wide", 180)])
def test_output_width_honours_columns_when_not_a_terminal(columns, width, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert cli._width() == width


def test_the_public_api_is_lazy_and_resolves_to_the_engine_functions():
    code = (
        "import sys, adaptive\n"
        "assert 'adaptive.interim' not in sys.modules and 'pymc' not in sys.modules\n"
        "from adaptive import build_memo, load_config\n"
        "assert 'pymc' not in sys.modules, 'the report must not load PyMC'\n"
        "import adaptive.config, adaptive.report.render\n"
        "assert load_config is adaptive.config.load_config and build_memo is adaptive.report.render.build_memo\n"
        "print(sorted(adaptive.__all__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == [
        "AdaptiveError", "ConfigError", "ConvergenceError", "DataError", "build_memo",
        "build_sim_report", "calibrate", "derive_endpoints", "load_config", "load_patients",
        "run_interim", "simulate_study",
    ]  # fmt: skip
    import adaptive
    import adaptive.derive

    for name in adaptive.__all__:
        assert callable(getattr(adaptive, name))
        assert getattr(adaptive, name).__doc__, f"{name} has no docstring"
        assert name in dir(adaptive)
    assert adaptive.derive_endpoints is adaptive.derive.derive  # public name, internal module's verb
    assert adaptive.ConvergenceError is exceptions.ConvergenceError
    assert issubclass(adaptive.ConfigError, adaptive.AdaptiveError)
    assert issubclass(adaptive.DataError, ValueError)  # the errors keep their builtin bases
    with pytest.raises(AttributeError, match="no attribute 'no_such_function'"):
        adaptive.no_such_function  # noqa: B018


def test_the_public_api_has_type_hints():
    import inspect

    import adaptive

    for name in adaptive.__all__:
        obj = getattr(adaptive, name)
        if inspect.isclass(obj):
            continue
        sig = inspect.signature(obj)
        assert sig.return_annotation is not inspect.Signature.empty, f"{name} has no return type"
        unhinted = [p for p in sig.parameters if sig.parameters[p].annotation is inspect.Parameter.empty]
        assert unhinted in ([], ["progress"]), f"{name}: parameters without a type hint: {unhinted}"
