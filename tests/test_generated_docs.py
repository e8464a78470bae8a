"""The generated blocks of the docs match what their commands print on the published results
(analysis/pages.py): a hand-edited number, or rows published without `make docs`, fail here,
naming the block."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("README.md", "docs/RESULTS.md")
PROLOGUE = "from analysis.pages import map_progress, preset_table, published, show, show_figure, show_text"


def regenerate(text: str, name: str) -> str:
    from cogapp import Cog

    cog = Cog()
    cog.options.prologue = PROLOGUE
    return cog.process_string(text, fname=name)


def stale_blocks(text: str, fresh: str) -> list[str]:
    """The cog lines of the blocks whose output differs between ``text`` and ``fresh``
    (both have the same blocks, in the same order: cog changes only their output)."""

    def outputs(s: str) -> list[tuple[str, list[str]]]:
        blocks: list[tuple[str, list[str]]] = []
        current: tuple[str, list[str]] | None = None
        for line in s.splitlines():
            if "[[[cog" in line:
                current = (line.strip(), [])
            elif "[[[end]]]" in line and current is not None:
                blocks.append(current)
                current = None
            elif current is not None:
                current[1].append(line)
        return blocks

    return [a[0] for a, b in zip(outputs(text), outputs(fresh), strict=True) if a[1] != b[1]]


@pytest.mark.parametrize("doc", GENERATED)
def test_every_generated_block_matches_its_command_on_the_published_data(doc, monkeypatch):
    pytest.importorskip("cogapp")
    monkeypatch.chdir(ROOT)  # the published folder is read from the repository's top folder
    monkeypatch.setenv("ADX_DOCS_CHECK", "1")  # figures: their links are checked, nothing is written
    text = (ROOT / doc).read_text()
    fresh = regenerate(text, doc)
    stale = stale_blocks(text, fresh)
    assert not stale, f"{doc}: these blocks differ from what their commands print (run `make docs`):\n" + "\n".join(
        stale
    )
    assert fresh == text


def test_a_hand_edited_number_is_found_and_its_block_named(monkeypatch):
    pytest.importorskip("cogapp")
    text = "intro\n<!-- [[[cog import cog; cog.outl('| a | 1.23 |') ]]] -->\n| a | 1.23 |\n<!-- [[[end]]] -->\nend\n"
    assert regenerate(text, "x.md") == text and stale_blocks(text, regenerate(text, "x.md")) == []
    edited = text.replace("| a | 1.23 |\n<!--", "| a | 1.24 |\n<!--")
    assert stale_blocks(edited, regenerate(edited, "x.md")) == [
        "<!-- [[[cog import cog; cog.outl('| a | 1.23 |') ]]] -->"
    ]
