"""House checks (issue 17): docstrings that tell the truth, one list per vocabulary, caches in tmp."""

from __future__ import annotations

import inspect
import re
from typing import get_args

import adaptive.cli as cli
import adaptive.exceptions as exceptions
from adaptive.config import RandomizationCfg
from decision_rules.allocation import ALLOCATION_KINDS, AllocationKind


def test_cli_docstring_names_every_command_and_exit_code():
    doc = cli.__doc__
    assert set(re.findall(r"\w+", doc.splitlines()[0].split("``")[1])) - {"adaptive"} == set(
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
