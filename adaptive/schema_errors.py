"""Readable messages from pydantic validation errors: key paths and "did you mean" hints."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Union

from pydantic import BaseModel, ValidationError

from adaptive.exceptions import Problem


def did_you_mean(word: str, options) -> str:
    """`` Did you mean 'x'?`` for the closest of ``options`` (case-insensitive), or ``""``."""
    opts = [str(o) for o in options]
    lower = {o.lower(): o for o in opts}
    w = str(word).lower()
    if w in lower and lower[w] != str(word):
        return f" Did you mean {lower[w]!r}?"
    close = difflib.get_close_matches(w, list(lower), n=1, cutoff=0.6)
    return f" Did you mean {lower[close[0]]!r}?" if close else ""


#: discriminator tags pydantic puts into error locations (rule and model kinds), filled in by
#: :func:`register_tags` from the config schema itself so that the kinds are listed once
_TAGS: set[str] = set()


def register_tags(*models: type[BaseModel]) -> None:
    """Record the ``kind`` literals of discriminated-union members (called by the config module)."""
    for m in models:
        kind = m.model_fields.get("kind")
        if kind is not None:
            _TAGS.update(str(t) for t in typing.get_args(kind.annotation))


def _bounded(value, limit: int = 60) -> str:
    """``repr`` of a received value, at most ``limit`` characters of it (a pasted blob stays short)."""
    r = repr(value)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(r)} characters)"


def doc_loc(loc: tuple) -> list:
    """A pydantic error location as keys of the YAML document (discriminator tags dropped)."""
    # pydantic puts the discriminator tag into the location ("rules.0.efficacy.threshold"): drop it
    return [
        p
        for i, p in enumerate(loc)
        if not (p in _TAGS and i > 0 and (isinstance(loc[i - 1], int) or loc[i - 1] == "model"))
    ]


def fmt_loc(loc: tuple) -> str:
    """A pydantic error location as a dotted key path."""
    return ".".join(str(p) for p in doc_loc(loc)) or "<top level>"


def _unwrap(tp):
    """Peel Annotated / Optional / Union down to the model classes, dicts and lists inside."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        out = []
        for a in typing.get_args(tp):
            out += _unwrap(a)
        return out
    return [tp]


def _fields_at(loc: tuple, root: type[BaseModel]) -> list[str]:
    """Names of the keys allowed at ``loc`` (for "did you mean" on unknown keys)."""
    candidates: list = [root]
    for part in loc:
        nxt: list = []
        for c in candidates:
            if isinstance(c, type) and issubclass(c, BaseModel):
                if isinstance(part, str) and part in c.model_fields:
                    nxt += _unwrap(c.model_fields[part].annotation)
                elif isinstance(part, str):
                    # a discriminated-union tag in the loc: keep the class whose kind matches
                    kind = c.model_fields.get("kind")
                    if kind is not None and part in typing.get_args(kind.annotation):
                        nxt.append(c)
            else:
                origin = typing.get_origin(c)
                args = typing.get_args(c)
                if origin is dict and args:
                    nxt += _unwrap(args[1])
                elif origin is list and args:
                    nxt += _unwrap(args[0])
                    if isinstance(part, str):  # tag right after a list index
                        nxt = [x for x in nxt if _tag_ok(x, part)] or nxt
        candidates = nxt
    names: list[str] = []
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            names += list(c.model_fields)
    return names


def _tag_ok(cls, tag: str) -> bool:
    if isinstance(cls, type) and issubclass(cls, BaseModel) and "kind" in cls.model_fields:
        return tag in typing.get_args(cls.model_fields["kind"].annotation)
    return False


def pydantic_problems(
    err: ValidationError, source: str, root: type[BaseModel], hints: dict[str, str] | None = None
) -> list[Problem]:
    """Turn a pydantic error into problems that name the key path and suggest fixes.

    ``hints``: key name -> a sentence added when that key is missing.
    """
    problems = []
    hints = hints or {}
    for e in err.errors():
        loc = tuple(e["loc"])
        if e["type"] == "extra_forbidden":
            key = loc[-1]
            allowed = _fields_at(loc[:-1], root)
            hint = did_you_mean(key, allowed)
            if not hint and allowed:
                hint = f" Allowed keys here: {', '.join(sorted(allowed))}."
            problems.append(Problem(f"{source}: {fmt_loc(loc)}", f"unknown key {key!r}.{hint}"))
            continue
        if e["type"] == "union_tag_invalid":
            tag = e.get("ctx", {}).get("tag")
            expected = e.get("ctx", {}).get("expected_tags", "")
            problems.append(
                Problem(
                    f"{source}: {fmt_loc(loc)}.kind",
                    f"unknown kind {tag!r}; expected one of {expected}."
                    f"{did_you_mean(tag, [t.strip(' ' + chr(39)) for t in expected.split(',')])}",
                )
            )
            continue
        if e["type"] == "missing" and loc and str(loc[-1]) in hints:
            problems.append(Problem(f"{source}: {fmt_loc(loc)}", f"required: {hints[str(loc[-1])]}"))
            continue
        got = e.get("input")
        msg = e["msg"].replace("Value error, ", "")
        got_s = "" if isinstance(got, dict | list) or "got" in msg else f" (got {_bounded(got)})"
        problems.append(Problem(f"{source}: {fmt_loc(loc)}", f"{msg}{got_s}."))
    return problems
