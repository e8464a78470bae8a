"""Every relative link in the project's Markdown points to a file that git tracks, so a
clean checkout (CI's, a newcomer's) has what the docs link to."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def _tracked() -> set[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


def relative_links(text: str) -> list[str]:
    """The targets of relative links in Markdown text, without their #anchors."""
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor in the same page
        targets.append(target.split("#", 1)[0])
    return targets


def test_relative_links_are_found_in_markdown():
    text = "see [a](docs/A.md#x), ![img](img/p.png), [web](https://x.org), [here](#top)"
    assert relative_links(text) == ["docs/A.md", "img/p.png"]


def test_every_relative_link_points_to_a_tracked_file():
    tracked = _tracked()
    tracked_dirs = {str(Path(p).parent) for p in tracked}
    missing = []
    for doc in sorted(p for p in tracked if p.endswith(".md")):
        for target in relative_links((ROOT / doc).read_text()):
            path = ((ROOT / doc).parent / target).resolve()
            rel = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else target
            if rel not in tracked and rel not in tracked_dirs:
                missing.append(f"{doc}: {target}")
    assert not missing, "links to files git does not track:\n" + "\n".join(missing)
