"""The documentation is a specification too: its links resolve and its first commands parse.

* Every relative link and image path in ``README.md`` and ``docs/*.md`` names an existing file,
  and every ``#anchor`` names a heading of the target page under GitHub's slug rules.
* Every command in a fenced block of the README's Quickstart and Tour sections parses: its
  module exists, its ``--config=`` file exists and accepts its variants, every
  ``--config.KEY=VALUE`` names a key of that config (with a value of the key's type), and every
  other flag is one the module defines.

Flags are read from the modules' source (their ``flags.DEFINE_*`` and argparse
``add_argument`` calls), not by importing them: several entry points define the same absl
flag names (``--workdir``), which one process cannot import together.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import glob
import os
import re
import shlex
from typing import Iterable, Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKED_README_SECTIONS = ("Quickstart", "Tour")
ABSL_BUILTIN_FLAGS = {"help", "helpshort", "helpfull", "helpxml", "flagfile", "undefok"}


# ---------------------------------------------------------------------------------------------
# Markdown: headings, anchors, links


def blank_code_blocks(text: str) -> str:
    """``text`` with fenced code blocks blanked to spaces (offsets kept); inline code kept."""
    lines, fence = [], None
    for line in text.split("\n"):
        marker = re.match(r"^\s*(```+|~~~+)", line)
        if fence is None and marker:
            fence = marker.group(1)[:3]
            line = " " * len(line)
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
            line = " " * len(line)
        lines.append(line)
    return "\n".join(lines)


def without_code(text: str) -> str:
    """``text`` with fenced code blocks blanked and inline code spans removed (line count kept)."""
    return re.sub(r"(`+)(?:(?!\1)[^\n])+?\1", "", blank_code_blocks(text))


def github_slug(heading: str) -> str:
    """GitHub's anchor of a heading: rendered text, lowercased, punctuation dropped, spaces → ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images → their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page defines: heading slugs (duplicates numbered ``-1``, ``-2``) and HTML ids."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in blank_code_blocks(text).split("\n"):
        m = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = github_slug(m.group(1))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    found.update(re.findall(r"""<a\s[^>]*(?:id|name)=["']([^"']+)["']""", text))
    return found


LINK_PATTERNS = (
    re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)"),  # [text](target), ![alt](target)
    re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M),        # [label]: target
    re.compile(r"""<(?:a|img)\s[^>]*?(?:href|src)=["']([^"']+)["']"""),  # HTML links and images
)


def links(text: str) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link and image outside code."""
    clean = without_code(text)
    for pattern in LINK_PATTERNS:
        for m in pattern.finditer(clean):
            yield clean.count("\n", 0, m.start()) + 1, m.group(1)


def broken_links(md_path: str) -> list[str]:
    """One message per relative link of ``md_path`` whose file or ``#anchor`` does not exist."""
    with open(md_path, encoding="utf-8") as f:
        text = f.read()
    problems = []
    for line, target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(md_path), path)) if path else md_path
        where = f"{os.path.relpath(md_path, ROOT)}:{line}: {target}"
        if not os.path.exists(resolved):
            problems.append(f"{where}: no such file {os.path.relpath(resolved, ROOT)}")
        elif anchor and resolved.endswith(".md"):
            with open(resolved, encoding="utf-8") as f:
                if anchor not in anchors(f.read()):
                    problems.append(f"{where}: no heading with anchor #{anchor} in {os.path.relpath(resolved, ROOT)}")
    return problems


def doc_pages() -> list[str]:
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def test_slugs_follow_github_rules():
    assert github_slug("Resuming") == "resuming"
    assert github_slug("Reference systems (seed 000-004)") == "reference-systems-seed-000-004"
    assert github_slug("`model.d.norm` (Kurach'19's normalisation axis)") == "modeldnorm-kurach19s-normalisation-axis"
    assert github_slug("Trials × data parallel") == "trials--data-parallel"
    assert github_slug("Summary: `summary.md` and two plots") == "summary-summarymd-and-two-plots"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n## B c\n") == {"a", "a-1", "b-c"}


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_and_image_resolves(page):
    assert broken_links(page) == []


def test_a_broken_link_image_or_anchor_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    (tmp_path / "pic.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#a-section) ![fine](pic.png) [here](#page) [web](https://example.com/x.md)\n"
        "`[in code](nowhere.md)`\n\n```\n[in a block](nowhere.md)\n```\n"
        "[gone](missing.md)\n"
        "![gone](figures/missing.png)\n"
        "[bad anchor](other.md#no-such-section)\n"
        '<a href="other.md"><img src="gone.png"></a>\n'
        "[ref]: missing_ref.md\n")
    problems = broken_links(str(page))
    assert len(problems) == 5, problems
    for name in ("missing.md", "figures/missing.png", "#no-such-section", "gone.png", "missing_ref.md"):
        assert any(name in p for p in problems), (name, problems)


def _linked_files(md_path: str, text: str) -> set[str]:
    base = os.path.dirname(md_path)
    return {os.path.relpath(os.path.normpath(os.path.join(base, target.partition("#")[0])), ROOT)
            for _, target in links(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)}


def test_docs_table_of_contents_links_every_page():
    """The README's Documentation section and docs/README.md link every page of docs/."""
    pages = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))} - {"docs/README.md"}
    readme = os.path.join(ROOT, "README.md")
    with open(readme, encoding="utf-8") as f:
        assert pages - _linked_files(readme, readme_section(f.read(), "Documentation")) == set()
    index = os.path.join(ROOT, "docs", "README.md")
    with open(index, encoding="utf-8") as f:
        assert pages - _linked_files(index, f.read()) == set()


# ---------------------------------------------------------------------------------------------
# README commands


def readme_section(text: str, title: str) -> str:
    """The body of the README's ``## title`` section, up to the next ``## `` heading."""
    m = re.search(rf"^## {re.escape(title)}[ \t]*$(.*?)(?=^## |\Z)", blank_code_blocks(text), re.M | re.S)
    assert m, f"README.md has no '## {title}' section"
    start, end = m.span(1)
    return text[start:end]


def fenced_commands(section: str) -> list[str]:
    """Shell commands of the section's fenced blocks: continuation lines joined, comments dropped, split on ``&&``."""
    commands = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", section, re.M | re.S):
        for line in block.replace("\\\n", " ").split("\n"):
            tokens = shlex.split(line, comments=True)
            while tokens:
                cut = tokens.index("&&") if "&&" in tokens else len(tokens)
                commands.append(shlex.join(tokens[:cut]))
                tokens = tokens[cut + 1:]
    return [c for c in commands if c]


def _define_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name.startswith("DEFINE_") and node.args and isinstance(node.args[0], ast.Constant):
                yield node


def _flag_names(call: ast.Call) -> set[str]:
    name = call.args[0].value
    kind = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id
    return {name, f"no{name}"} if kind in ("DEFINE_bool", "DEFINE_boolean") else {name}


def _module_file(module: str) -> str | None:
    base = os.path.join(ROOT, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__main__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _imported_project_modules(tree: ast.Module) -> Iterator[str]:
    """Project modules imported at the top level of a module (where absl flags get defined)."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


@functools.lru_cache(maxsize=None)
def _parsed(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def _runs_on_import(tree: ast.Module) -> ast.Module:
    """The statements of a module that run when it is imported (not function bodies or ``__main__`` blocks)."""
    def on_import(node: ast.stmt) -> bool:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return False
        return not (isinstance(node, ast.If) and "__name__" in ast.dump(node.test))
    return ast.Module(body=[n for n in tree.body if on_import(n)], type_ignores=[])


def _defined(calls: Iterable[ast.Call]) -> tuple[set[str], set[str]]:
    """(flag names, config-file flag names) of ``DEFINE_*`` calls."""
    calls = list(calls)
    flags = set().union(*(_flag_names(c) for c in calls))
    config_flags = {c.args[0].value for c in calls if getattr(c.func, "attr", "") == "DEFINE_config_file"}
    return flags, config_flags


def _flags_defined_on_import(module: str, seen: set[str]) -> tuple[set[str], set[str]]:
    """(flags, config flags) that importing ``module`` defines, following its project imports."""
    path = _module_file(module)
    if path is None or path in seen or not module.startswith(("ganjax", "experiments")):
        return set(), set()
    seen.add(path)
    tree = _parsed(path)
    flags, config_flags = _defined(_define_calls(_runs_on_import(tree)))
    for imported in _imported_project_modules(tree):
        more, more_config = _flags_defined_on_import(imported, seen)
        flags |= more
        config_flags |= more_config
    return flags, config_flags


@dataclasses.dataclass(frozen=True)
class ModuleFlags:
    flags: frozenset[str]
    config_flags: frozenset[str]  # flags defined with config_flags.DEFINE_config_file


@functools.lru_cache(maxsize=None)
def module_flags(module: str) -> ModuleFlags:
    """The flags ``python -m module`` accepts: absl ``DEFINE_*`` calls anywhere in the module and at
    import time in what it imports, or, for argparse scripts, their ``add_argument`` options."""
    path = _module_file(module)
    tree = _parsed(path)
    calls = list(_define_calls(tree))
    flags, config_flags = _defined(calls)
    for imported in _imported_project_modules(tree):
        more, more_config = _flags_defined_on_import(imported, {path})
        flags |= more
        config_flags |= more_config
    if calls:
        flags |= ABSL_BUILTIN_FLAGS
    argparse_files = [path]
    if any(m.startswith("experiments.common") or m == "experiments" for m in _imported_project_modules(tree)):
        argparse_files.append(os.path.join(ROOT, "experiments", "common.py"))
    for file in argparse_files:
        for node in ast.walk(_parsed(file)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                flags |= {a.value[2:] for a in node.args
                          if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("--")}
    flags |= {"help"}
    return ModuleFlags(frozenset(flags), frozenset(config_flags))


def _literal(value: str):
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _check_override(config, key: str, value: str) -> str | None:
    node = config
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not hasattr(node, "keys") or part not in node:
            return f"no config key {'.'.join(parts[:i + 1])!r}"
        if i < len(parts) - 1:
            node = node[part]
    try:
        node[parts[-1]] = _literal(value)  # ConfigDict's type check: a float key refuses a string
    except (TypeError, ValueError) as e:
        return f"bad value {value!r} for config key {key!r}: {e}"
    return None


def command_problems(command: str) -> list[str]:
    """Why ``command`` would not parse; empty if it does."""
    from ganjax.config import load_config_file
    from ganjax.errors import GanjaxError

    tokens = shlex.split(command)
    if tokens[:3] == ["pip", "install", "-r"]:
        return [] if os.path.isfile(os.path.join(ROOT, tokens[3])) else [f"{command}: no file {tokens[3]}"]
    if tokens[:3] == ["python", "-m", "pytest"]:
        return [] if os.path.isdir(os.path.join(ROOT, "tests")) else [f"{command}: no tests/ folder"]
    if tokens[:2] != ["python", "-m"] or len(tokens) < 3:
        return [f"{command}: not a command this test knows how to check"]
    module = tokens[2]
    if _module_file(module) is None:
        return [f"{command}: no module {module}"]
    known = module_flags(module)
    problems, configs = [], {}
    args = tokens[3:]
    for i, arg in enumerate(args):
        if not arg.startswith("--"):
            if i == 0 or "=" in args[i - 1] or not args[i - 1].startswith("--"):
                problems.append(f"{command}: unexpected argument {arg!r}")
            continue
        name, _, value = arg[2:].partition("=")
        head, _, key = name.partition(".")
        if key and head in known.config_flags:
            if head not in configs:
                problems.append(f"{command}: --{name} comes before --{head}=")
            elif configs[head] is not None:
                problem = _check_override(configs[head], key, value)
                if problem:
                    problems.append(f"{command}: {problem}")
        elif name not in known.flags:
            problems.append(f"{command}: unknown flag --{name} for {module}; known: {', '.join(sorted(known.flags))}")
        elif name in known.config_flags:
            path, _, variants = value.partition(":")
            configs[name] = None
            if not os.path.isfile(os.path.join(ROOT, path)):
                problems.append(f"{command}: no config file {path}")
                continue
            try:
                configs[name] = load_config_file(os.path.join(ROOT, path), variants or None)
            except GanjaxError as e:
                problems.append(f"{command}: {e}")
    return problems


def readme_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return [c for title in CHECKED_README_SECTIONS for c in fenced_commands(readme_section(text, title))]


def test_readme_quickstart_has_the_two_first_commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        quickstart = fenced_commands(readme_section(f.read(), "Quickstart"))
    assert "python -m ganjax.main --config=configs/gaussian_1d.py --workdir=runs/g1d" in quickstart
    assert "python -m pytest -q" in quickstart


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_parses(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert command_problems(command) == []


@pytest.mark.parametrize("command, expected", [
    ("python -m ganjax.main --config=configs/nope.py --workdir=w", "no config file configs/nope.py"),
    ("python -m ganjax.main --config=configs/gaussian_1d.py:fast --workdir=w", "unknown config variant"),
    ("python -m ganjax.main --config=configs/gaussian_1d.py --workdir=w --config.los=hinge", "no config key 'los'"),
    ("python -m ganjax.main --config=configs/gaussian_1d.py --workdir=w --config.model.g.nope=1",
     "no config key 'model.g.nope'"),
    ("python -m ganjax.main --config=configs/gaussian_1d.py --workdir=w --config.penalty_weight=high",
     "bad value 'high'"),
    ("python -m ganjax.main --config=configs/gaussian_1d.py --work_dir=w", "unknown flag --work_dir"),
    ("python -m ganjax.sample --workdir=w --emaa", "unknown flag --emaa"),
    ("python -m ganjax.train_now --workdir=w", "no module ganjax.train_now"),
    ("python -m experiments.gaussian_1d --out=d --quick --fast", "unknown flag --fast"),
    ("pip install -r requirement.txt", "no file requirement.txt"),
    ("bash run.sh", "not a command this test knows how to check"),
])
def test_a_command_that_would_not_parse_is_reported(command, expected, monkeypatch):
    monkeypatch.chdir(ROOT)
    problems = command_problems(command)
    assert any(expected in p for p in problems), problems


def test_known_flags_come_from_the_modules():
    main = module_flags("ganjax.main")
    assert {"config", "workdir", "verbose"} <= main.flags and main.config_flags == {"config"}
    assert {"ema", "noema", "num", "out", "step", "seed"} <= module_flags("ganjax.sample").flags
    assert {"summarize", "metric", "mode", "workers"} <= module_flags("ganjax.sweep").flags
    assert {"out", "quick", "seeds"} <= module_flags("experiments.gaussian_1d").flags
