"""The documents a newcomer reads (issue 38): every relative link in
README.md, models/README.md, docs/*.md and benches/RESULTS.md points at a
file or folder in the repository; the README stays short, with its first
command near the top; models/README.md stays one page; and the README's
test command is exactly what CI (.ci/run) runs.

Links are `[text](target)`, `![alt](target)`, `<target>` and reference
definitions `[name]: target`, outside fenced code blocks and inline code.
http(s) and mailto links and pure `#anchor`s are not checked; a file
link's `#anchor` is dropped before the file is looked for."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
README_MAX_LINES = 250
COMMAND_1_BY_LINE = 60
MODEL_CARD_MAX_LINES = 120
COMMAND_1 = "cargo run --release -- transcribe"

INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
ANGLE = re.compile(r"<([^<>\s]+)>")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE_SPAN = re.compile(r"(`+).*?\1")


def documents():
    docs = [REPO / "README.md", REPO / "models" / "README.md", REPO / "benches" / "RESULTS.md"]
    docs += sorted((REPO / "docs").glob("*.md"))
    return docs


def prose_lines(text):
    """(line number, line) outside fenced code blocks, inline code removed."""
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(`{3,}|~{3,})", line)
        if m:
            if fence is None:
                fence = m.group(1)[0] * 3
            elif line.strip().startswith(fence):
                fence = None
            continue
        if fence is None:
            yield n, CODE_SPAN.sub("", line)


def links(text):
    """(line number, target) of every link in the markdown text."""
    for n, line in prose_lines(text):
        for m in INLINE.finditer(line):
            yield n, m.group(1)
        m = REFERENCE.match(line)
        if m:
            yield n, m.group(1)
        for m in ANGLE.finditer(line):
            target = m.group(1)
            # an autolink or a relative path in angle brackets, not an HTML tag
            if "://" in target or target.startswith("mailto:") or "/" in target or target.endswith(".md"):
                yield n, target


def external(target):
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) is not None


def test_the_documents_exist():
    for doc in documents():
        assert doc.is_file(), doc
    assert list((REPO / "docs").glob("*.md")), "docs/ has no .md files"


def test_the_link_parser_reads_the_forms_the_documents_use():
    text = "\n".join([
        "See [the card](models/README.md#accuracy) and ![plot](benches/x.png).",
        "A [site](https://example.org) and [mail](mailto:a@b.c), [top](#top).",
        "[ref]: docs/usage.md",
        "In code `[not](a/link.md)` and <docs/how-it-works.md>.",
        "```",
        "[not a link](nowhere.md)",
        "```",
    ])
    assert [t for _, t in links(text)] == [
        "models/README.md#accuracy", "benches/x.png", "https://example.org",
        "mailto:a@b.c", "#top", "docs/usage.md", "docs/how-it-works.md",
    ]


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc):
    broken = []
    for n, target in links(doc.read_text(encoding="utf-8")):
        if external(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path:
            continue
        if not (doc.parent / path).exists():
            broken.append(f"{doc.relative_to(REPO)}:{n}: {target}")
    assert not broken, "links to files that are not in the repository:\n" + "\n".join(broken)


def code_lines(text):
    """(line number, line) inside fenced code blocks."""
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(`{3,}|~{3,})", line)
        if m:
            fence = None if fence else m.group(1)[0] * 3
            continue
        if fence:
            yield n, line


def test_the_readme_is_short_with_command_1_near_the_top():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    n_lines = len(text.splitlines())
    assert n_lines <= README_MAX_LINES, f"README.md has {n_lines} lines (at most {README_MAX_LINES})"
    first = [n for n, line in code_lines(text) if line.strip().startswith(COMMAND_1)]
    assert first, f"README.md: no code block runs `{COMMAND_1} ...`"
    assert first[0] <= COMMAND_1_BY_LINE, f"README.md: command 1 is on line {first[0]} (by {COMMAND_1_BY_LINE})"


def test_the_model_card_is_one_page():
    n_lines = len((REPO / "models" / "README.md").read_text(encoding="utf-8").splitlines())
    assert n_lines <= MODEL_CARD_MAX_LINES, f"models/README.md has {n_lines} lines (at most {MODEL_CARD_MAX_LINES})"


def ci_commands():
    """The command lines of .ci/run, less its set-up (shebang, comments,
    `set`, the `cd` to the repository root)."""
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    return [line for line in lines
            if line and not line.startswith("#") and not line.startswith(("set ", "cd "))]


def test_the_readme_test_command_is_what_ci_runs():
    ci = ci_commands()
    assert len(ci) == 1, f".ci/run runs {ci}: one command expected"
    text = (REPO / "README.md").read_text(encoding="utf-8")
    stated = [line.strip() for _, line in code_lines(text) if "scripts/test.sh" in line]
    assert stated, "README.md: no code block runs scripts/test.sh"
    assert all(line == ci[0] for line in stated), f"README.md runs {stated}, .ci/run runs {ci[0]!r}"
