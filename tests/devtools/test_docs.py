"""The README and docs/ read as written: every code block closes, and every link between
them names a file and a heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(```+|~~~+)(.*)$")
# [text](target), outside code: the target up to a space or the closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`+[^`]*`+")


def _prose_lines(page: Path, keep_code: bool = False) -> list[tuple[int, str]]:
    """The page's lines outside fenced code, inline code removed unless kept."""
    lines, fence = [], None
    for number, line in enumerate(page.read_text().splitlines(), 1):
        found = FENCE.match(line)
        if found and fence is None:
            fence = found.group(1)
            continue
        if found and fence is not None and found.group(1).startswith(fence[0] * len(fence)):
            fence = None
            continue
        if fence is None:
            lines.append((number, line if keep_code else INLINE_CODE.sub("", line)))
    return lines


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings: lower case, punctuation dropped, spaces
    as hyphens, a repeated heading suffixed -1, -2..."""
    seen: dict[str, int] = {}
    anchors = set()
    for _, line in _prose_lines(page, keep_code=True):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_code_block_closes_on_a_line_of_its_own(page: Path) -> None:
    fence: str | None = None
    opened = 0
    for number, line in enumerate(page.read_text().splitlines(), 1):
        found = FENCE.match(line)
        if not found:
            continue
        marker, rest = found.groups()
        if fence is None:
            fence, opened = marker, number
        elif marker.startswith(fence[0] * len(fence)):
            # A closing fence holds nothing else: text after it leaves the block open.
            assert not rest.strip(), f"{page.name}:{number}: text after a closing fence"
            fence = None
    assert fence is None, f"{page.name}:{opened}: a code block that never closes"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_between_the_docs_reaches_its_file_and_heading(page: Path) -> None:
    broken = []
    for number, line in _prose_lines(page):
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:: outside the checkout
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}:{number}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.name}:{number}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
