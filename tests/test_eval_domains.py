"""The domain sets and the claim file: well formed, verbatim references, the promised mix."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from evals.claims import PERTURBATIONS, load_claims
from evals.domains import DEFAULT_DOMAINS, corpus_documents, domain_sets, load_domain_questions
from evals.matcher import expected_figure
from evals.metrics import figure_in

DOCS = {d.source: d.text for d in corpus_documents()}
SETS = domain_sets()
QUESTIONS = load_domain_questions()


def test_four_sets_each_with_its_document() -> None:
    assert len(SETS) >= 4
    for name, folder in SETS.items():
        assert (folder / f"{name}.txt").is_file(), name
        assert f"{name}.txt" in DOCS


@pytest.mark.parametrize("name", sorted(SETS))
def test_set_has_the_promised_mix(name: str) -> None:
    rows = [r for r in QUESTIONS if r["set"] == name]
    tags = Counter(t for r in rows for t in r["tags"])
    langs = Counter(r["language"] for r in rows)
    assert len(rows) >= 25
    assert langs["de"] >= 10 and langs["en"] >= 10
    assert tags["cross-language"] >= 5
    tempting = [r for r in rows if not r["answerable"] and "tempting" in r["tags"]]
    assert len(tempting) >= 6
    assert tags["duration"] + tags["deadline"] + tags["weekday"] >= 3
    follow_ups = [r for r in rows if r.get("history")]
    assert len(follow_ups) >= 2
    assert sum(1 for r in rows if r["answerable"] and not r["expected_figures"]
               and r.get("answer_contains")) >= 2  # answers that are names, not figures


@pytest.mark.parametrize("row", QUESTIONS, ids=lambda r: r["id"])
def test_reference_is_verbatim_and_states_the_figures(row: dict) -> None:
    text = DOCS[f"{row['set']}.txt"]
    if not row["answerable"]:
        assert row["expected_figures"] == [] and not row.get("answer_contains")
        return
    assert row["reference_quote"] in text
    for fig in row["expected_figures"]:
        assert expected_figure(fig) is not None, fig
        assert figure_in(fig, row["reference_quote"]), (row["id"], fig)


def test_claim_file_covers_every_perturbation() -> None:
    claims = load_claims()
    assert len(claims) >= 300
    kinds = Counter(c.perturbation for c in claims)
    assert set(kinds) == set(PERTURBATIONS) and min(kinds.values()) >= 20
    assert Counter(c.language for c in claims).keys() == {"de", "en"}
    for c in claims:
        assert c.span in DOCS[c.source], c.id


def test_domain_root_is_the_packaged_one() -> None:
    assert Path(DEFAULT_DOMAINS).name == "domains" and SETS
