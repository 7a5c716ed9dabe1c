"""The References page and its links: every source document and paper is cited once, with an
anchor a mention elsewhere links to and the pages that draw on it; the seeds' citations match
their own title pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_app import open_app

from app.references import LITERATURE, REFERENCES, SEEDS, link_mentions, ref_link

SEEDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def test_the_page_cites_every_reference_under_its_anchor():
    at = open_app(page="references")
    assert at.title[0].value == "References"
    headings = {h.proto.anchor: h.value for h in at.subheader}
    assert set(headings) == set(REFERENCES)
    body = "\n".join(md.value for md in at.markdown)
    for ref in REFERENCES.values():
        assert ref.citation in body
        assert ref.used_by and all(use in body for use in ref.used_by)
    assert len(SEEDS) == 4 and len(LITERATURE) >= 10


def test_ref_link_points_at_the_anchor():
    assert ref_link("thesis", "thesis 5.2") == "[thesis 5.2](/references#thesis)"
    assert ref_link("blog") == "[the blog](/references#blog)"
    with pytest.raises(KeyError):
        ref_link("nosuch")


def test_mentions_in_running_text_become_links():
    text = "Share drawn from the buffer; the blog's 50 %. See thesis 5.2 and the course."
    assert link_mentions(text) == (
        "Share drawn from the buffer; [the blog's 50 %](/references#blog). "
        "See [thesis 5.2](/references#thesis) and [the course](/references#course)."
    )
    assert link_mentions("(blog: a tenth)") == "([blog](/references#blog): a tenth)"
    assert link_mentions("nothing to link") == "nothing to link"


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="the seeds are not next to this checkout")
def test_the_seeds_citations_match_their_title_pages():
    head = {p.name: p.read_text(errors="replace")[:3000] for p in SEEDS_DIR.glob("*.txt")}
    thesis = head[REFERENCES["thesis"].seed]
    assert "Wojciech Masarczyk" in thesis and "Data representations in" in thesis
    assert "Warsaw University of Technology" in thesis and "2025" in thesis
    lecture, discussion = (
        head[f] for f in ("001_766704d599d37cb1.txt", "000_dcbaa95348b17cbf.txt")
    )
    assert (
        "Lecture 21: Catastrophic forgetting, knowledge distillation and meta-learning" in lecture
    )
    assert "Anant Sahai" in lecture and "Johan Fredrik Agerup" in lecture
    assert "EECS 182" in discussion and "Gireeja Ranade" in discussion
    assert head[REFERENCES["blog"].seed].startswith("Catastrophic Forgetting – Part 2")


def test_pages_link_their_mentions():
    at = open_app()
    body = "\n".join(md.value for md in at.markdown)
    assert "](/references#lopez-paz-2017)" in body and "](/references#van-de-ven-2019)" in body
    at.sidebar.selectbox(key="cfg:strategy.name").set_value("replay").run()
    helps = [w.help or "" for w in at.sidebar.number_input]
    assert any("[the blog's 50 %](/references#blog)" in h for h in helps)
