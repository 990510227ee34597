"""Keep the tables the docs pages show identical to the generated results files they come from.

A page embeds a generated file, or one section of it, between two markers:

    <!-- generated from results/study/study.md#Paired differences; `make pages` refreshes it -->
    ...the section's text, copied...
    <!-- end generated -->

The path is relative to the page; `#HEADING` takes the text under that heading (up to the next heading of the
same or a higher level), no `#` the whole file without its title. Relative links and images in the copied text
are rewritten to work from the page. `python .ci/pages.py` rewrites the blocks; `--check` exits 1 naming every
stale block (tests/test_readme.py runs it), so a page can show a table but never retype one.
"""
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- generated from (?P<source>[^#;]+)(?:#(?P<heading>[^;]+))?; `make pages` refreshes it -->\n)"
                   r"(?P<body>.*?)(?=<!-- end generated -->)", re.DOTALL)


def section(text: str, heading: str | None) -> str:
    "The text under `heading` (to the next heading of its level or higher), or the whole text without its title."
    lines = text.splitlines()
    if heading is None:
        body = lines[1:] if lines and lines[0].startswith("# ") else lines
    else:
        starts = [i for i, line in enumerate(lines) if re.fullmatch(rf"(#+) {re.escape(heading)}", line)]
        if not starts:
            raise ValueError(f"no heading {heading!r}; headings: {[l for l in lines if l.startswith('#')]}")
        level = len(lines[starts[0]].split(" ", 1)[0])
        body = []
        for line in lines[starts[0] + 1:]:
            if re.match(rf"#{{1,{level}}} ", line):
                break
            body.append(line)
    return "\n".join(body).strip("\n") + "\n"


def relink(text: str, folder: str) -> str:
    "Relative links and images of a file in `folder` (relative to the page), rewritten from the page."
    return re.sub(r"\]\((?!https?:|#|/)([^)]+)\)", lambda m: f"]({folder}/{m.group(1)})", text)


def refresh(page: Path) -> tuple[str, list[str]]:
    "The page with every generated block refreshed, and the sources of the blocks that were stale."
    text, stale = page.read_text(), []

    def fill(match):
        source = match.group("source").strip()
        generated = (page.parent / source).read_text()
        body = relink(section(generated, match.group("heading")), str(Path(source).parent))
        if body != match.group("body"):
            stale.append(f"{page.relative_to(root)}: {source}#{match.group('heading') or ''}")
        return match.group(1) + body

    return BLOCK.sub(fill, text), stale


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    stale = []
    for page in sorted((root / "docs").glob("*.md")):
        text, found = refresh(page)
        stale += found
        if found and not check:
            page.write_text(text)
    if stale and check:
        print("pages whose generated blocks differ from their sources; run `make pages`:", *stale, sep="\n  ")
        sys.exit(1)
    print(f"{'stale' if stale else 'current'}: {len(stale)} generated block(s) {'refreshed' if stale and not check else 'to refresh' if stale else ''}".strip())
