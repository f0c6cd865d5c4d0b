"""Strict YAML reading for config and scenario files.

PyYAML's ``safe_load`` silently keeps the last of two equal keys (a second ``seed:`` under
``sampler:``, a second ``arm1:`` block); here a duplicate key is a problem naming its key path and
both lines. Text that is not UTF-8, NUL bytes and absurdly deep nesting are refused with a message
instead of a traceback. :func:`load_yaml` also returns the line of every key path, so schema
errors can name the line.
"""

from __future__ import annotations

import yaml

from adaptive.exceptions import Problem

_MERGE_TAG = "tag:yaml.org,2002:merge"
#: nesting deeper than this is refused before PyYAML's recursive parser meets it
MAX_DEPTH = 200
#: a document whose aliases expand to more nodes than this is refused (a "billion laughs" alias
#: bomb: 9 anchors of 9 aliases each expand to 9**9 nodes; the bundled config has ~3,000)
MAX_EXPANDED_NODES = 200_000


def decode_text(raw: bytes, source: str) -> tuple[str | None, list[Problem]]:
    """Decode a YAML file's bytes as UTF-8 (a BOM allowed), or say why it cannot be."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            guess = "it looks like UTF-16 (it starts with a UTF-16 byte-order mark)"
        elif b"\x00" in raw[:4096]:
            guess = "it holds NUL bytes: UTF-16 or a binary file, not a YAML text file"
        else:
            guess = "it looks like Latin-1 / Windows-1252"
        return None, [
            Problem(
                f"{source} line {line}",
                f"the file is not UTF-8 text (byte {raw[exc.start : exc.start + 1]!r} at offset "
                f"{exc.start}); {guess}. Save it as UTF-8.",
            )
        ]
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        return None, [
            Problem(f"{source} line {line}", "the file holds NUL bytes; it is not a YAML text file.")
        ]
    return text, []


def _too_deep(text: str) -> int | None:
    """The line where flow or block nesting first exceeds :data:`MAX_DEPTH` (a cheap pre-scan)."""
    depth = 0
    line = 1
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif ch in "]}":
            depth = max(depth - 1, 0)
        elif ch == "\n":
            line += 1
    return None


def _expanded_size(root) -> tuple[int, int]:
    """Nodes of the document with every alias expanded, and the line where the cap is passed.

    Iterative and memoized; the line is that of the first node found to exceed
    :data:`MAX_EXPANDED_NODES` (else the root's).

    PyYAML builds an alias as a reference to the anchored object, so the document itself stays
    small; the blow-up comes later, in whatever walks or copies it (validation, hashing, JSON).
    Counting on the node graph costs one visit per distinct node.
    """
    size: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if done:
            size[id(node)] = 1 + sum(size.get(id(c), 0) for c in children)
            if size[id(node)] > MAX_EXPANDED_NODES:
                return size[id(node)], node.start_mark.line + 1
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return size.get(id(root), 1), root.start_mark.line + 1


def _key_text(node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{node.tag}>"


def _key_value(loader: yaml.SafeLoader, node):
    """The key as YAML reads it (``1`` and ``01`` are one key, ``yes`` and ``true`` too)."""
    if isinstance(node, yaml.ScalarNode):
        try:
            value = loader.construct_object(node)
            hash(value)
            return (type(value).__name__, value)
        except (yaml.YAMLError, TypeError, ValueError):
            pass
    return ("text", _key_text(node))


def _walk(root, loader: yaml.SafeLoader) -> tuple[list[Problem], dict[str, int]]:
    """Duplicate keys (with paths and lines) and the line of every key path, without recursion."""
    dups: list[tuple[str, int, int]] = []
    lines: dict[str, int] = {}
    seen_nodes: set[int] = set()
    stack = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:  # an alias: the anchored node was checked once
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    stack.append((value_node, path))
                    continue
                key = _key_text(key_node)
                sub = f"{path}.{key}" if path else key
                line = key_node.start_mark.line + 1
                value = _key_value(loader, key_node)
                if value in first:
                    dups.append((sub, first[value], line))
                else:
                    first[value] = line
                    lines.setdefault(sub, line)
                stack.append((value_node, sub))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                sub = f"{path}.{i}" if path else str(i)
                lines.setdefault(sub, item.start_mark.line + 1)
                stack.append((item, sub))
    return [(p, a, b) for p, a, b in sorted(dups, key=lambda d: d[2])], lines


def load_yaml(text: str, source: str) -> tuple[object, dict[str, int], list[Problem]]:
    """Parse YAML text safely.

    Returns
    -------
    doc, lines, problems
        The document (``None`` when there are problems), the 1-based line of each dotted key path
        (``"sampler.seed"``, ``"routing.0.arms"``), and the problems found: invalid YAML (with line
        and column), duplicate keys (key path and both lines), nesting deeper than
        :data:`MAX_DEPTH`.
    """
    deep = _too_deep(text)
    if deep is not None:
        return (
            None,
            {},
            [Problem(f"{source} line {deep}", f"nested more than {MAX_DEPTH} levels deep; not a config.")],
        )
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters: may raise a ReaderError
        node = loader.get_single_node()
        if node is None:
            return None, {}, []
        expanded, at = _expanded_size(node)
        if expanded > MAX_EXPANDED_NODES:
            return (
                None,
                {},
                [
                    Problem(
                        f"{source} line {at}",
                        f"its aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} values; "
                        "a config is a few thousand. Refused (an alias bomb, or aliases nested "
                        "far deeper than a config needs).",
                    )
                ],
            )
        dups, lines = _walk(node, loader)
        if dups:
            problems = [
                Problem(
                    f"{source} line {second}",
                    f"duplicate key {path!r} (first on line {first}); YAML would silently keep only "
                    "the last one. Remove or rename one of them.",
                )
                for path, first, second in dups
            ]
            return None, lines, problems
        doc = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is None and isinstance(exc, yaml.reader.ReaderError):
            line = text[: exc.position].count("\n") + 1
            return (
                None,
                {},
                [Problem(f"{source} line {line}", f"not valid YAML: {exc.reason} ({exc.character:#06x}).")],
            )
        where = f"{source} line {mark.line + 1}, column {mark.column + 1}" if mark else source
        return None, {}, [Problem(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]
    except RecursionError:
        return None, {}, [Problem(source, "nested too deeply (or a recursive alias); not a config.")]
    finally:
        if loader is not None:
            loader.dispose()
    return doc, lines, []


def with_line(where: str, source: str, lines: dict[str, int]) -> str:
    """``"<source>: key.path"`` -> ``"<source> line N: key.path"`` when the key path has a known line.

    A key path with no line of its own (a missing key) gets the line of its nearest parent.
    """
    prefix = f"{source}: "
    if not where.startswith(prefix):
        return where
    path = where[len(prefix) :]
    while path:
        if path in lines:
            return f"{source} line {lines[path]}: {where[len(prefix) :]}"
        if "." not in path:
            break
        path = path.rsplit(".", 1)[0]
    return where
