"""The README and the pages under docs/ link only to what exists.

Every relative markdown link `[text](target)` (not http(s) or mailto) must name a file or
folder that exists relative to the page, and every anchor into the repository's markdown
(`page.md#section` or `#section`) must name a heading of that page, slugged as GitHub does.
Every docs page is reachable from the README and named on the dbt docs site's overview.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def outside_code_blocks(text: str) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fence = [], None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * len(opening.group(1))
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: markup reduced to its text, lowercased, every
    character but letters, digits, underscores, hyphens and spaces dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link or image: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in outside_code_blocks(text):  # a `# comment` in a code block is no heading
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def link_targets(text: str) -> list[str]:
    """The target of every inline markdown link or image outside code."""
    prose = (INLINE_CODE.sub("", line) for line in outside_code_blocks(text))
    return [match.group(1) for line in prose for match in LINK.finditer(line)]


def broken_links(page: Path) -> list[str]:
    """The page's relative links whose file, folder or heading does not exist, each with why."""
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in link_targets(text):
        if not target or EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file or folder")
        elif (
            anchor
            and destination.suffix == ".md"
            and destination.is_file()
            and anchor not in anchors(destination.read_text(encoding="utf-8"))
        ):
            broken.append(f"{target}: no heading #{anchor} in {destination.name}")
    return broken


# -- the checker itself, on a made-up page: it must be able to fail -----------------------


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("How good, on real held-out data", "how-good-on-real-held-out-data"),
        ("One machine, 10M to 100M rows (`make bench`)", "one-machine-10m-to-100m-rows-make-bench"),
        ("Two ways to run (selectors.yml)", "two-ways-to-run-selectorsyml"),
        (
            "The report, and why each forecast is what it is",
            "the-report-and-why-each-forecast-is-what-it-is",
        ),
        ("rpt_* tables: [the lineage](x.md)", "rpt_-tables-the-lineage"),
    ],
)
def test_slug_follows_githubs_rule(heading: str, expected: str) -> None:
    assert slug(heading) == expected


MADE_UP_PAGE = """\
# A page

## A section, with punctuation!

## A section, with punctuation!

Links: {link}

```sh
echo "[in a code block](nowhere.md) is not a link"
```

And `[inline code](nowhere.md)` is not one either.
"""


@pytest.mark.parametrize(
    ("link", "broken"),
    [
        ("[ok](other.md)", []),
        ("[ok](folder/)", []),
        ("[ok](other.md#other-heading)", []),
        ("[ok](#a-section-with-punctuation)", []),
        ("[ok, the repeat](#a-section-with-punctuation-1)", []),
        ("[external](https://example.com/missing.md)", []),
        ("[mail](mailto:someone@example.com)", []),
        ("[missing file](missing.md)", ["missing.md: no such file or folder"]),
        ("[missing file](missing.md#anything)", ["missing.md#anything: no such file or folder"]),
        ("[bad anchor](other.md#nope)", ["other.md#nope: no heading #nope in other.md"]),
        ("[bad local anchor](#a-section)", ["#a-section: no heading #a-section in page.md"]),
        ("![image](missing.png)", ["missing.png: no such file or folder"]),
    ],
)
def test_the_checker_finds_exactly_the_broken_links(
    tmp_path: Path, link: str, broken: list[str]
) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Other heading\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    page = tmp_path / "page.md"
    page.write_text(MADE_UP_PAGE.format(link=link), encoding="utf-8")
    assert broken_links(page) == broken


# -- the real pages ------------------------------------------------------------------------


def test_there_are_docs_pages() -> None:
    assert len(PAGES) > 1, "no pages under docs/"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES[1:], ids=[str(p.relative_to(ROOT)) for p in PAGES[1:]])
def test_every_docs_page_is_linked_from_the_readme_and_the_docs_site(page: Path) -> None:
    path = page.relative_to(ROOT).as_posix()
    readme_targets = {t.partition("#")[0] for t in link_targets(PAGES[0].read_text("utf-8"))}
    assert path in readme_targets, f"README.md does not link to {path}"
    overview = (ROOT / "models" / "docs.md").read_text(encoding="utf-8")
    block = overview.split("{% docs __overview__ %}", 1)[1].split("{% enddocs %}", 1)[0]
    assert f"`{path}`" in block, f"the docs site's overview (models/docs.md) does not name {path}"
    text = page.read_text(encoding="utf-8")
    assert "../README.md" in link_targets(text), f"{path} does not link back to the README"
