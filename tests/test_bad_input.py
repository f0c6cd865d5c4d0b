"""Issue 16: every bad input is a clear error (exit 2) naming file and line or config key and line,
with no traceback and nothing left behind (no output folder, ledger, lock or temporary folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive.cli import main
from adaptive.config import parse_config
from adaptive.data import load_patients
from adaptive.exceptions import ConfigError, DataError, ScenarioError
from adaptive.scenario import parse_scenario
from tests.conftest import CONFIG, EXAMPLE, SCENARIOS

LINES = EXAMPLE.read_text().splitlines()
HEADER = LINES[0].split(",")
COL = {c: j for j, c in enumerate(HEADER)}


def cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    # a clear error is a SystemExit with a code, never another exception (a traceback)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    assert "Traceback" not in res.output
    return res


def validate(data=None, config=CONFIG, *extra):
    args = ["validate", "--config", config]
    if data is not None:
        args += ["--data", data]
    return cli(*args, *extra)


def interim(tmp_path, data=EXAMPLE, config=CONFIG, cutoff="2026-10-31"):
    looks = tmp_path / "looks"
    res = cli("interim", "--config", config, "--data", data, "--cutoff", cutoff, "--out", looks / "look1")
    return res, looks


def assert_nothing_left(looks: Path):
    """No output folder, ledger, lock or temporary folder."""
    assert not looks.exists() or not any(looks.iterdir()), sorted(p.name for p in looks.iterdir())


def write_lines(tmp_path, lines, name="data.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def set_field(line: str, col: str, value: str) -> str:
    f = line.split(",")
    f[COL[col]] = value
    return ",".join(f)


# ------------------------------------------------------------------ 1. wrong number of fields
def test_truncated_row_refused_with_file_and_line(tmp_path):
    lines = LINES[:]
    lines[4] = ",".join(lines[4].split(",")[:14])  # a dead patient's death_on cut off
    res = validate(write_lines(tmp_path, lines))
    assert res.exit_code == 2
    want = f"data.csv line 5: 14 fields, fewer than the {len(HEADER)} columns of the header (line 1)"
    assert want in res.output


def test_row_with_extra_fields_refused(tmp_path):
    lines = LINES[:]
    lines[6] += ",surplus"
    res = validate(write_lines(tmp_path, lines))
    assert res.exit_code == 2
    assert f"data.csv line 7: {len(HEADER) + 1} fields, more than the {len(HEADER)} columns" in res.output


def test_truncated_row_in_interim_leaves_nothing(tmp_path):
    lines = LINES[:]
    lines[9] = lines[9].rsplit(",", 3)[0]
    res, looks = interim(tmp_path, data=write_lines(tmp_path, lines))
    assert res.exit_code == 2 and f"data.csv line 10: {len(HEADER) - 3} fields" in res.output
    assert_nothing_left(looks)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(1, 30), n=st.integers(1, 25).filter(lambda k: k != len(HEADER)))
def test_any_field_count_mismatch_named(tmp_path, row, n):
    lines = LINES[:40]
    fields = (lines[row].split(",") + ["x"] * 10)[:n]
    lines[row] = ",".join(fields)
    path = write_lines(tmp_path, lines)
    with pytest.raises(DataError) as exc:
        load_patients(path, _design())
    assert f"data.csv line {row + 1}: {n} fields" in str(exc.value)
    assert len(exc.value.problems) == 1


# ------------------------------------------------------------------ 8. physical line numbers
def test_line_number_after_blank_lines_and_embedded_newline(tmp_path):
    lines = LINES[:20]
    lines.insert(3, "")  # a blank line: physical lines shift by one from here
    lines[5] = set_field(lines[5], "site", '"SH\n02"')  # a quoted field spanning two lines
    lines[10] = set_field(lines[10], "arm", "armX")
    path = write_lines(tmp_path, lines)
    physical = path.read_text().splitlines()
    bad_line = next(i + 1 for i, ln in enumerate(physical) if ",armX," in ln)
    assert bad_line == 12
    with pytest.raises(DataError, match=rf"data.csv line {bad_line}, column 'arm': unknown arm 'armX'"):
        load_patients(path, _design())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    blanks=st.lists(st.integers(1, 15), max_size=5),
    multiline=st.lists(st.integers(1, 15), max_size=3),
    bad=st.integers(1, 15),
)
def test_reported_line_is_the_physical_line(tmp_path, blanks, multiline, bad):
    records = LINES[:16]
    records = [
        set_field(r, "site", f'"{r.split(",")[1]}\nx"') if i in multiline else r
        for i, r in enumerate(records)
    ]
    records[bad] = set_field(records[bad], "arm", "armX")
    out = []
    for i, r in enumerate(records):
        out += [""] * blanks.count(i)
        out.append(r)
    path = write_lines(tmp_path, out)
    text = path.read_text()
    start = text.index(records[bad].split(",")[0] + ",")
    physical = text[:start].count("\n") + 1
    with pytest.raises(DataError, match=rf"data.csv line {physical}, column 'arm'"):
        load_patients(path, _design())


# ------------------------------------------------------------------ 2. duplicate YAML keys
def test_duplicate_key_in_sampler_refused_with_both_lines(tmp_path):
    text = CONFIG.read_text()
    first = text.splitlines().index("sampler:") + 1
    bad = text.replace("sampler:\n", "sampler:\n  seed: 1\n", 1)
    cfg = tmp_path / "dup.yaml"
    cfg.write_text(bad)
    seed_lines = [i + 1 for i, ln in enumerate(bad.splitlines()) if ln.startswith("  seed:")]
    assert seed_lines[0] == first + 1
    res = validate(config=cfg)
    assert res.exit_code == 2
    assert (
        f"dup.yaml line {seed_lines[1]}: duplicate key 'sampler.seed' (first on line {seed_lines[0]})"
        in res.output
    )


def test_duplicate_arm_block_refused():
    text = CONFIG.read_text().replace("  arm1:\n", "  arm2:\n    label: copy\n  arm1:\n", 1)
    with pytest.raises(ConfigError, match=r"duplicate key 'arms.arm2' \(first on line \d+\)"):
        parse_config(text, "c.yaml")


def test_yaml_anchors_and_merge_keys_are_not_duplicates():
    text = "x-base: &base {a: 1, b: 2}\nthing:\n  <<: *base\n  b: 3\n"
    from adaptive.yamlfile import load_yaml

    doc, lines, problems = load_yaml(text, "t.yaml")
    assert problems == [] and doc["thing"] == {"a": 1, "b": 3}
    assert lines["thing.b"] == 4


def test_duplicate_key_in_scenario_refused():
    text = (SCENARIOS / "realistic.yaml").read_text()
    text = text.replace("name:", "name: first\nname:", 1)
    first = next(i + 1 for i, ln in enumerate(text.splitlines()) if ln.startswith("name:"))
    with pytest.raises(
        ScenarioError, match=rf"s.yaml line {first + 1}: duplicate key 'name' \(first on line {first}\)"
    ):
        parse_scenario(text, "s.yaml")


# ------------------------------------------------------------------ 3. tracebacks -> exit 2
def test_cutoff_before_first_enrolment(tmp_path):
    res = validate(EXAMPLE, CONFIG, "--cutoff", "2025-01-01")
    assert res.exit_code == 2
    assert "no patient was enrolled on or before the cutoff 2025-01-01" in res.output
    assert "first enrolment is on 2025-04-02" in res.output
    res, looks = interim(tmp_path, cutoff="2025-01-01")
    assert res.exit_code == 2 and "no patient was enrolled" in res.output
    assert_nothing_left(looks)


def test_header_only_csv(tmp_path):
    path = write_lines(tmp_path, LINES[:1])
    res = validate(path, CONFIG, "--cutoff", "2026-01-01")
    assert res.exit_code == 2 and "data.csv: the file holds a header but no patient rows" in res.output
    res, looks = interim(tmp_path, data=path)
    assert res.exit_code == 2 and "no patient rows" in res.output
    assert_nothing_left(looks)


def test_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    res = validate(path)
    assert res.exit_code == 2 and "empty.csv: the file is empty" in res.output


@pytest.mark.parametrize(
    "encode, expect",
    [
        (lambda t: t.replace("name:", "name: caf\u00e9 #", 1).encode("latin-1", "replace"), "Latin-1"),
        (lambda t: t.encode("utf-16"), "UTF-16"),
        (lambda t: bytes(range(256)) * 8, "binary"),
    ],
    ids=["latin1", "utf16", "binary"],
)
def test_config_not_utf8(tmp_path, encode, expect):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(encode(CONFIG.read_text()))
    res = validate(config=cfg)
    assert res.exit_code == 2
    assert re.search(r"c\.yaml line \d+: the file is not UTF-8 text", res.output)
    assert expect in res.output


def test_deeply_nested_yaml(tmp_path):
    cfg = tmp_path / "deep.yaml"
    cfg.write_text("a: " + "[" * 20000 + "]" * 20000 + "\n")
    res = validate(config=cfg)
    assert res.exit_code == 2 and "deep.yaml line 1: nested more than 200 levels deep" in res.output
    with pytest.raises(ScenarioError, match="nested more than"):
        parse_scenario("a: " + "{b: " * 5000, "s.yaml")


# ------------------------------------------------------------------ 6. YAML alias bomb
def _alias_bomb(levels: int) -> str:
    lines = ["x-a0: &a0 [arm1, arm1, arm1, arm1, arm1, arm1, arm1, arm1, arm1]"]
    lines += [f"x-a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_refused_before_expansion(tmp_path):
    """9 anchors of 9 aliases (9**9 values) used in a rule's arms: refused at once, exit 2, with
    the line where the expansion passes the cap (it used to run 110 s and 3.3 GB)."""
    text = CONFIG.read_text().replace(
        "    arms: [arm1, arm2, arm3, arm4, arm5, arm6]\n", "    arms: *a8\n", 1
    )
    assert "arms: *a8" in text
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(_alias_bomb(9) + text)
    res = validate(config=cfg)
    assert res.exit_code == 2
    # 9**6 = 531,441 > 200,000: the sixth anchor (line 6) is the first node over the cap
    assert "bomb.yaml line 6: its aliases (*name) expand to more than 200,000 values" in res.output
    with pytest.raises(ScenarioError, match="expand to more than"):
        parse_scenario(_alias_bomb(7), "s.yaml")


def test_modest_aliases_still_accepted(tmp_path):
    """Aliases that expand to a few hundred values are an ordinary YAML feature."""
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(_alias_bomb(3) + CONFIG.read_text())  # 9**3 = 729 values under x- keys
    res = validate(config=cfg)
    assert res.exit_code == 0, res.output


# ------------------------------------------------------------------ 7. accepted data that crashed later
def test_absurd_enrolment_year_refused(tmp_path):
    lines = LINES[:10]
    lines[2] = set_field(lines[2], "enrolled_on", "0001-01-01")
    res = validate(write_lines(tmp_path, lines))
    assert res.exit_code == 2
    assert "data.csv line 3, column 'enrolled_on': enrolled_on 0001-01-01 is implausible" in res.output


def test_enrolment_before_trial_start_warned(tmp_path):
    lines = LINES[:10]
    lines[2] = set_field(lines[2], "enrolled_on", "2025-03-01")  # start_date 2025-04-01
    table = load_patients(write_lines(tmp_path, lines), _design())
    assert any(
        "line 3, column 'enrolled_on'" in w.where and "before the trial's start_date 2025-04-01" in w.message
        for w in table.warnings
    )


def test_duplicate_column_header_refused(tmp_path):
    lines = LINES[:5]
    lines[0] = lines[0].replace("relapse_on", "arm")
    res = validate(write_lines(tmp_path, lines))
    assert res.exit_code == 2
    assert "data.csv line 1: duplicate column 'arm' at positions 3 and 14" in res.output


def test_response_date_without_response_warned(tmp_path):
    lines = LINES[:5]
    i = next(j for j in range(1, 5) if not lines[j].split(",")[COL["relapse_on"]])
    lines[i] = set_field(lines[i], "best_response", "")
    table = load_patients(write_lines(tmp_path, lines), _design())
    assert any("response_on" in w.where and "best_response is blank" in w.message for w in table.warnings)


@pytest.mark.parametrize("bad", ["2025-W15-2", "2025-098", "20250405", "2025-4-5"])
def test_non_calendar_dates_refused(tmp_path, bad):
    lines = LINES[:5]
    lines[1] = set_field(lines[1], "enrolled_on", bad)
    with pytest.raises(DataError, match=rf"line 2, column 'enrolled_on': cannot parse date '{bad}'"):
        load_patients(write_lines(tmp_path, lines), _design())


@pytest.mark.parametrize("bad", ["2026-1-5", "2026-W01-1", " 2026-01-05"])
def test_cutoff_must_be_yyyy_mm_dd(bad):
    res = validate(EXAMPLE, CONFIG, "--cutoff", bad)
    assert res.exit_code == 2 and "is not an ISO 8601 date (YYYY-MM-DD" in res.output


# ------------------------------------------------------------------ 12. messages
def test_long_bad_value_is_cut(tmp_path):
    lines = LINES[:5]
    lines[1] = set_field(lines[1], "death_on", "X" * 5000)
    res = validate(write_lines(tmp_path, lines))
    assert res.exit_code == 2
    assert "'" + "X" * 60 + "'... (5000 characters)" in res.output
    assert "X" * 61 not in res.output


def test_not_utf8_csv_names_the_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(("\n".join(LINES[:5]).replace("SH02", "S\u00e902") + "\n").encode("latin-1"))
    res = validate(path)
    assert res.exit_code == 2
    assert "latin.csv line 2: the file is not UTF-8 text" in res.output and "Latin-1" in res.output


def test_semicolon_csv_names_the_delimiter(tmp_path):
    path = write_lines(tmp_path, [ln.replace(",", ";") for ln in LINES[:5]])
    res = validate(path)
    assert res.exit_code == 2 and "semicolon-separated" in res.output


def test_non_regular_data_files_refused(tmp_path):
    res = validate(Path("/dev/zero"))
    assert res.exit_code == 2 and "not a regular file" in res.output
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    res = validate(fifo)  # would block forever if opened
    assert res.exit_code == 2 and "not a regular file" in res.output


def test_parquet_wrong_types_one_line_per_column(tmp_path):
    import pandas as pd

    df = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    df["enrolled_on"] = 20250101
    df["idh1"] = 0
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError) as exc:
        load_patients(path, _design())
    assert len(exc.value.problems) == 2
    assert "d.parquet, column 'enrolled_on': has type int64; expected dates" in str(exc.value)
    assert "d.parquet, column 'idh1': has type int64; expected booleans" in str(exc.value)


def test_ctrl_c_exits_130(monkeypatch):
    import adaptive.config

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(adaptive.config, "load_config", interrupted)
    res = CliRunner().invoke(main, ["validate", "--config", str(CONFIG)])
    assert res.exit_code == 130
    assert "Aborted!" not in res.output and "interrupted" in res.output


# ------------------------------------------------------------------ 4. plausible ranges
@pytest.mark.parametrize(
    "old, new, key",
    [
        ("max_n: 40", "max_n: 1000000", "arms.arm1.max_n"),
        ("max_n: 40", "max_n: 1e30", "arms.arm1.max_n"),
    ],
)
def test_implausible_sizes_name_key_and_line(tmp_path, old, new, key):
    text = CONFIG.read_text().replace(old, new, 1)
    line = next(i + 1 for i, ln in enumerate(text.splitlines()) if new in ln)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    res = validate(config=cfg)
    assert res.exit_code == 2 and f"c.yaml line {line}: {key}:" in res.output


@pytest.mark.parametrize(
    "block",
    ["looks:\n  max_patients: 1000000\n", "looks:\n  every_patients: 1000000\n"],
)
def test_implausible_looks_bounds(block):
    text = CONFIG.read_text()
    if "\nlooks:" in text:
        pytest.skip("the bundled config has its own looks block")
    text += "\n" + block
    with pytest.raises(ConfigError, match=r"c.yaml line \d+: looks\.(max_patients|every_patients): Input"):
        parse_config(text, "c.yaml")


_DESIGN = None


def _design():
    global _DESIGN
    if _DESIGN is None:
        _DESIGN = parse_config(CONFIG.read_text(), "rr_aml.yaml")
    return _DESIGN


# ------------------------------------------------------------------ 5. I/O errors before and during writing
def test_out_under_a_file_refused_before_fitting(tmp_path):
    blocker = tmp_path / "looks"
    blocker.write_text("not a folder")
    res = cli(
        "interim", "--config", CONFIG, "--data", EXAMPLE, "--cutoff", "2026-10-31", "--out", blocker / "look1"
    )
    assert res.exit_code == 2 and f"cannot write the folder of --out {blocker}" in res.output
    assert "is not a folder" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["looks"]


def test_read_only_out_parent_refused_before_fitting(tmp_path, monkeypatch):
    import adaptive.interim
    import adaptive.output

    def no_fit(*a, **k):
        raise AssertionError("fitted although --out cannot be written")

    monkeypatch.setattr(adaptive.interim, "_run_look", no_fit)
    real_access = os.access
    monkeypatch.setattr(
        adaptive.output.os, "access", lambda p, mode: Path(p) != tmp_path and real_access(p, mode)
    )
    res, looks = interim(tmp_path)
    assert res.exit_code == 2 and "is not writable by this user" in res.output
    assert_nothing_left(looks)


def test_disk_full_while_writing_is_exit_6(tmp_path, monkeypatch):
    import errno

    import adaptive.interim

    def disk_full(design, table, cutoff, out, seed, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "posterior.nc"))

    monkeypatch.setattr(adaptive.interim, "_run_look", disk_full)
    res, looks = interim(tmp_path)
    assert res.exit_code == 6
    assert "posterior.nc: No space left on device (ENOSPC)" in res.output
    assert not (looks / "look1").exists()


def test_write_text_atomic_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno

    from adaptive.output import write_text_atomic

    def full(self, *a, **k):
        Path(self).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError):
        write_text_atomic(tmp_path / "x.csv", "data")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 9. temporary folders of killed runs
def test_stale_temporary_folders_removed_at_next_look(tmp_path, monkeypatch):
    import adaptive.interim
    from adaptive.interim import LookResult, run_interim
    from adaptive.output import remove_stale_tmp_in

    looks = tmp_path / "looks"
    looks.mkdir()
    dead = looks / ".2026-09-30.tmp-999999999-abcd1234"  # beyond pid_max: never a live process
    alive = looks / f".2026-08-31.tmp-{os.getppid()}-abcd1234"
    other = looks / ".notes.tmp-999999999-x"
    for p in (dead, alive, other):
        p.mkdir()
        (p / "posterior.nc").write_text("half")
    assert remove_stale_tmp_in(tmp_path / "missing") == []

    def fake_look(design, table, cutoff, out, seed, **kw):
        return LookResult(report={}, fits={}, out=out)

    monkeypatch.setattr(adaptive.interim, "_run_look", fake_look)
    from datetime import date

    look = run_interim(CONFIG, EXAMPLE, date(2026, 10, 31), looks / "look1", ledger=looks / "ledger.sqlite")
    assert not dead.exists() and alive.exists() and other.exists()
    assert any(str(dead) in n and "killed" in n for n in look.notes)


def test_long_config_value_is_cut():
    text = CONFIG.read_text().replace("max_n: 40", "max_n: x" + "9" * 5000, 1)
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "c.yaml")
    msg = str(exc.value)
    assert "arms.arm1.max_n" in msg and "... (5003 characters)" in msg and "9" * 100 not in msg


_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda k: k not in ("y", "n", "yes", "no", "on", "off", "true", "false", "null")
)


@settings(max_examples=50, deadline=None)
@given(
    keys=st.lists(_KEY, min_size=1, max_size=6, unique=True),
    parent=_KEY,
    dup=st.integers(0, 5),
    value=st.integers(0, 10**6),
)
def test_any_duplicate_key_is_named_with_both_lines(keys, parent, dup, value):
    from adaptive.yamlfile import load_yaml

    dup = dup % len(keys)
    body = [f"  {k}: {i}" for i, k in enumerate(keys)] + [f"  {keys[dup]}: {value}"]
    text = "\n".join([f"{parent}:", *body]) + "\n"
    doc, _lines, problems = load_yaml(text, "f.yaml")
    assert doc is None and len(problems) == 1
    assert problems[0].where == f"f.yaml line {len(keys) + 2}"
    assert f"duplicate key '{parent}.{keys[dup]}' (first on line {dup + 2})" in problems[0].message
    ok, lines, none = load_yaml("\n".join([f"{parent}:", *body[:-1]]) + "\n", "f.yaml")
    assert none == [] and ok == {parent: {k: i for i, k in enumerate(keys)}}
    assert lines[f"{parent}.{keys[dup]}"] == dup + 2


def test_equal_keys_in_other_spellings_are_duplicates():
    from adaptive.yamlfile import load_yaml

    _, _, problems = load_yaml("a:\n  1: x\n  01: y\n", "f.yaml")
    assert "duplicate key 'a.01' (first on line 2)" in problems[0].message


def test_non_regular_scenario_refused(tmp_path):
    from adaptive.scenario import load_scenario

    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_scenario(fifo)


def test_parquet_dates_before_1000_reported_as_written(tmp_path):
    import datetime

    import pandas as pd

    df = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False).head(3)
    df["enrolled_on"] = [datetime.date(1, 1, 1), datetime.date(2025, 4, 2), datetime.date(2025, 4, 3)]
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError, match=r"d.parquet row 1, column 'enrolled_on': enrolled_on 0001-01-01"):
        load_patients(path, _design())


# ------------------------------------------------------------------ fuzz: only clear errors
_CSV_CHARS = st.sampled_from(list(',;"\n\r\t x9-:') + ["arm3", "2026-01-01", "true", "CR", "\x00", "\u00e9"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(_CSV_CHARS, max_size=60).map("".join), raw=st.binary(max_size=64))
def test_any_csv_is_read_or_refused_clearly(tmp_path, body, raw):
    path = tmp_path / "f.csv"
    for content in ((LINES[0] + "\n" + body).encode(), raw, LINES[0].encode() + b"\n" + raw):
        path.write_bytes(content)
        try:
            load_patients(path, _design())
        except DataError as exc:  # anything else is a traceback for the user
            assert all(p.where.startswith("f.csv") for p in exc.problems)


@settings(max_examples=150, deadline=None)
@given(
    text=st.lists(st.sampled_from([*"ab: -[]{}&*!|>'\"#\n\t?,.1", "<<", "\x00"]), max_size=60).map("".join)
)
def test_any_yaml_is_parsed_or_refused_clearly(text):
    from adaptive.yamlfile import load_yaml

    doc, _lines, problems = load_yaml(text, "f.yaml")  # never raises
    assert doc is None or not problems
    assert all(p.where.startswith("f.yaml") for p in problems)
    with pytest.raises(ConfigError):  # none of these is a whole config
        parse_config(text, "f.yaml")
    with pytest.raises(ScenarioError):
        parse_scenario(text, "f.yaml")


def test_ctrl_c_while_waiting_for_the_ledger_exits_130(tmp_path):
    import fcntl
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    looks = tmp_path / "looks"
    looks.mkdir()
    lock = looks / "ledger.sqlite.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another adaptive interim holds the ledger
    try:
        cmd = [
            sys.executable,
            "-m",
            "adaptive.cli",
            "interim",
            "--config",
            str(CONFIG),
            "--data",
            str(EXAMPLE),
        ]
        cmd += ["--cutoff", "2026-10-31", "--out", str(looks / "look1"), "--wait", "120"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until it has the lock file open (it is waiting)
            if str(lock) in _open_files(proc.pid):
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(fd)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out and "Aborted!" not in out
    assert sorted(p.name for p in looks.iterdir()) == ["ledger.sqlite.lock"]


def _open_files(pid: int) -> set[str]:
    out = set()
    try:
        for f in Path(f"/proc/{pid}/fd").iterdir():
            try:
                out.add(os.readlink(f))
            except OSError:
                pass  # closed meanwhile
    except OSError:
        pass  # the process ended
    return out


def test_parquet_duplicate_column_named_with_positions(tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False).head(3)
    t = pa.Table.from_pandas(df, preserve_index=False)
    t = pa.Table.from_arrays([*t.columns, t.column("arm")], names=[*t.column_names, "arm"])
    pq.write_table(t, tmp_path / "d.parquet")
    with pytest.raises(
        DataError, match=rf"d.parquet: duplicate column 'arm' at positions 3 and {df.shape[1] + 1}"
    ):
        load_patients(tmp_path / "d.parquet", _design())


def test_trailing_empty_csv_columns_are_ignored(tmp_path):
    path = write_lines(tmp_path, [ln + ",," for ln in LINES[:4]])  # e.g. a spreadsheet's export
    assert len(load_patients(path, _design()).frame) == 3


@pytest.mark.slow
def test_ctrl_c_of_the_process_group_during_simulate(tmp_path):
    """A terminal's Ctrl-C reaches every process of the group: the Dask workers must not die with
    KeyboardInterrupt tracebacks; the run stops with exit 130 and keeps its finished trials."""
    import json
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    out = tmp_path / "oc"
    cmd = [sys.executable, "-m", "adaptive.cli", "simulate", "--config", str(CONFIG), "--scenario",
           str(SCENARIOS / "global_null.yaml"), "--trials", "200000", "--workers", "2", "--chunk-size",
           "100", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    time.sleep(30)  # cluster started, some chunks finished
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    text = output.decode(errors="replace")
    assert proc.returncode == 130, text[-2000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-4000:]
    rep = json.loads((out / "oc.json").read_text())
    assert rep["complete"] is False


@pytest.mark.parametrize("command", ["simulate", "calibrate", "synth"])
def test_a_missing_scenario_file_is_a_usage_error_not_an_output_error(command, tmp_path):
    out = tmp_path / ("trial.csv" if command == "synth" else "study")
    args = [command, "--config", str(CONFIG), "--scenario", str(tmp_path / "nope.yaml"), "--out", str(out)]
    args += {"simulate": ["--trials", "10"], "calibrate": ["--trials", "10", "--rule", "x"]}.get(command, [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert "nope.yaml" in res.output and "does not exist" in res.output
    assert "input/output error" not in res.output and "Traceback" not in res.output
    assert not out.exists()
