"""Every relative link and ``#anchor`` in the README and the docs pages leads somewhere.

Anchors follow GitHub's rule: the heading's text in lower case, punctuation other than ``-`` and
``_`` dropped, spaces turned into ``-``, and ``-1``, ``-2``, … appended to repeated headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "BENCHMARKS.md", *(ROOT / "docs").glob("*.md")])

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+).*?\1")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans removed."""
    lines, fence = [], ""
    for line in text.splitlines():
        marker = re.match(r"^\s*(```+|~~~+)", line)
        if marker:
            if not fence:
                fence = marker.group(1)[:3]
            elif marker.group(1).startswith(fence):
                fence = ""
            continue
        if not fence:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    found = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        found.extend(LINK.findall(CODE_SPAN.sub("", line)))
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target} (no heading with that anchor in {destination.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_docs_page() -> None:
    linked = {Path(target.partition("#")[0]) for target in links(ROOT / "README.md")}
    pages = {page.relative_to(ROOT) for page in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set()


def test_anchor_rule() -> None:
    assert slug("check-tls: will Tradecloud be able to deliver to my endpoint?") == (
        "check-tls-will-tradecloud-be-able-to-deliver-to-my-endpoint"
    )
    assert slug("Sample events: `tcwebhook samples`") == "sample-events-tcwebhook-samples"
    assert slug("Monitoring: `status` and `/healthz`") == "monitoring-status-and-healthz"


CODE_REFERENCE = re.compile(r"\b(docs/[\w.-]+\.md)#([\w-]+)")


def test_code_comments_cite_existing_docs_sections() -> None:
    """Comments such as ``docs/tradecloud.md#changed-lines`` name a page and heading that exist."""
    broken = []
    for folder in ("tcwebhook", "tests", "bench", "scripts"):
        for source in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
                for page, anchor in CODE_REFERENCE.findall(line):
                    target = ROOT / page
                    if not target.exists() or anchor not in anchors(target):
                        where = f"{source.relative_to(ROOT)}:{number}"
                        broken.append(f"{where}: {page}#{anchor}")
    assert broken == []
