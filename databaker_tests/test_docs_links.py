"""The project's Markdown documents link to each other's sections by GitHub's heading anchors;
a section renamed or moved to another file must not leave a link that leads nowhere."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "benchmarks" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]*)\)")


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown``: lower case, punctuation other than
    hyphens and underscores dropped, spaces made hyphens; a repeated one gets ``-1``, ``-2``..."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6} (.*)", line)):
            anchor = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            repeats = seen.get(anchor, 0)
            seen[anchor] = repeats + 1
            anchors.add(anchor if repeats == 0 else f"{anchor}-{repeats}")
    return anchors


def broken_links(document: Path) -> list[str]:
    """Each relative link of ``document`` whose file or heading does not exist."""
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors_of(linked):
            broken.append(f"{target}: no such heading in {linked.name}")
    return broken


@cache
def _anchors_of(document: Path) -> frozenset[str]:
    """:func:`heading_anchors` of a file, read once however many links lead into it."""
    return frozenset(heading_anchors(document.read_text()))


def test_heading_anchors_are_githubs():
    markdown = (
        "# Bake: 30,000,000 addresses\n```sh\n# not a heading\n```\n"
        "## S3's (files)\n## S3's (files)\n"
    )
    assert heading_anchors(markdown) == {"bake-30000000-addresses", "s3s-files", "s3s-files-1"}


def test_a_link_to_a_missing_file_or_heading_is_found(tmp_path):
    (tmp_path / "b.md").write_text("## There\n")
    document = tmp_path / "a.md"
    document.write_text(
        "# Here\n[fine](#here) [gone](#there) [file](b.md) [section](b.md#there)"
        " [elsewhere](b.md#here) [away](c.md) [web](https://example.org/#x)\n"
    )
    assert broken_links(document) == [
        "#there: no such heading in a.md",
        "b.md#here: no such heading in b.md",
        "c.md: no such file",
    ]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(document):
    assert broken_links(document) == []
