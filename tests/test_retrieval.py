"""Hybrid retrieval over the seed article (real e5 model); the XQuAD runner (fake model)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store.lexical import LexicalIndex, normalize, tokenize
from store.retrieval import top_indices

# (question, a string only the right chunk contains); German and English paraphrases.
PARAPHRASES = [
    ("Wie viele Soldaten aus Nordkorea kämpfen für Russland in der Ukraine?", "15'000"),
    ("Wie hoch ist der Wert der nordkoreanischen Waffenlieferungen?", "5,6 Milliarden"),
    ("Was bekommt Nordkorea von Russland als Gegenleistung?", "457 Millionen"),
    ("Wie viele nordkoreanische Soldaten sind bereits gestorben?", "rund 2000"),
    ("Was passiert mit der Währung Nordkoreas?", "Won hat"),
    ("Wann haben Putin und Kim ihre strategische Partnerschaft geschlossen?", "Sommer 2024"),
    ("Wer leitet das Büro der Stiftung in Südkorea?", "Frederic Spohr"),
    ("How many North Korean troops are fighting in the war in Ukraine?", "15'000"),
    ("What did Russia give North Korea in return for the weapons?", "457 Millionen"),
    ("What happened to the North Korean currency?", "Won hat"),
    ("How many North Korean soldiers have been killed?", "rund 2000"),
    ("When did Putin and Kim sign a strategic partnership?", "Sommer 2024"),
    ("Which university does Olena Guseinova work at?", "Hankuk"),
]
DE_SOLDIERS = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
EN_DIED = "How many North Korean soldiers have died?"


@pytest.fixture(scope="module")
def retriever(seed_engine):  # type: ignore[no-untyped-def]
    return seed_engine.retriever


@pytest.fixture(scope="module")
def vectors(retriever) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Query vectors, embedded once in one batch (the model is the slow part)."""
    questions = [q for q, _ in PARAPHRASES] + [DE_SOLDIERS, EN_DIED]
    return dict(zip(questions, retriever.embedder.embed_queries(questions)))


def rank(hits: list[Any], needle: str) -> int | None:
    return next((i for i, h in enumerate(hits, 1) if needle in h.chunk.text), None)


def test_german_question_finds_the_soldiers_chunk_first(retriever, vectors) -> None:
    hits = retriever.search(DE_SOLDIERS, 5, query_vector=vectors[DE_SOLDIERS])
    assert "15'000" in hits[0].chunk.text
    assert len(hits) == 5
    assert hits[0].score >= hits[1].score
    assert hits[0].lexical > 0 and hits[0].dense > 0.8


def test_english_question_finds_the_german_chunk(retriever, vectors) -> None:
    hits = retriever.search(EN_DIED, 5, query_vector=vectors[EN_DIED])
    assert "rund 2000" in hits[0].chunk.text


def test_query_vector_is_optional(retriever) -> None:  # type: ignore[no-untyped-def]
    hits = retriever.search(EN_DIED, 3)
    assert "rund 2000" in hits[0].chunk.text


def test_hits_are_exact_spans_of_the_document(retriever, seed_text: str, vectors) -> None:
    for q in (DE_SOLDIERS, EN_DIED):
        for h in retriever.search(q, 5, query_vector=vectors[q]):
            assert seed_text[h.chunk.start:h.chunk.end] == h.chunk.text
            d = h.to_dict()
            assert {"source", "start", "end", "score", "dense", "lexical", "text"} <= set(d)


def test_hybrid_is_at_least_as_good_as_each_baseline(retriever, vectors) -> None:
    rr: dict[str, list[float]] = {"hybrid": [], "dense": [], "lexical": []}
    table = []
    for question, needle in PARAPHRASES:
        row = []
        for mode, reciprocal in rr.items():
            r = rank(retriever.search(question, 20, mode=mode, query_vector=vectors[question]),
                     needle)
            reciprocal.append(1 / r if r else 0.0)
            row.append(r)
        table.append((question, row))
    mrr = {m: sum(v) / len(v) for m, v in rr.items()}
    detail = f"MRR {mrr}; ranks [hybrid, dense, lexical]: {table}"
    assert mrr["hybrid"] >= mrr["dense"] - 1e-9, detail
    assert mrr["hybrid"] >= mrr["lexical"] - 1e-9, detail
    assert mrr["hybrid"] >= 0.75, detail
    hit1 = sum(x == 1.0 for x in rr["hybrid"]) / len(PARAPHRASES)
    assert hit1 >= 0.7, detail


def test_lexical_weight_follows_query_language(retriever) -> None:  # type: ignore[no-untyped-def]
    lex = retriever.lexical()
    de = lex.coverage(DE_SOLDIERS)
    en = lex.coverage(EN_DIED)
    assert de > 0.8, de
    assert en < 0.1, en
    assert retriever.lexical_weight * en < 0.03
    assert retriever.lexical_weight * de > 0.2
    assert lex.coverage("") == 0.0


def test_english_hybrid_ranking_equals_dense_when_coverage_is_zero(retriever, vectors) -> None:
    v = vectors[EN_DIED]
    hybrid = [h.chunk.id for h in retriever.search(EN_DIED, 5, mode="hybrid", query_vector=v)]
    dense = [h.chunk.id for h in retriever.search(EN_DIED, 5, mode="dense", query_vector=v)]
    assert hybrid == dense


def test_modes(retriever, vectors) -> None:  # type: ignore[no-untyped-def]
    v = vectors[DE_SOLDIERS]
    dense = retriever.search(DE_SOLDIERS, 4, mode="dense", query_vector=v)
    lexical = retriever.search(DE_SOLDIERS, 4, mode="lexical")
    hybrid = retriever.search(DE_SOLDIERS, 4, mode="hybrid", query_vector=v)
    assert len(dense) == len(hybrid) == 4
    assert 0 < len(lexical) <= 4
    assert [h.dense for h in dense] == sorted((h.dense for h in dense), reverse=True)
    assert all(-1.0 <= h.dense <= 1.0 for h in dense)
    assert [h.lexical for h in lexical] == sorted((h.lexical for h in lexical), reverse=True)
    assert all(h.lexical > 0 for h in lexical)
    assert all(0.0 <= h.score <= 1.0 for h in hybrid)
    assert "15'000" in lexical[0].chunk.text
    # a query with no shared term has no lexical hits at all
    assert retriever.search("Quantenchromodynamik Gluonen", 3, mode="lexical") == []


def test_unknown_mode_lists_choices(retriever) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as err:
        retriever.search("Nordkorea", 3, mode="semantic")
    msg = str(err.value)
    assert "semantic" in msg
    for choice in ("hybrid", "dense", "lexical"):
        assert choice in msg


def test_lexical_index_is_persisted_with_fingerprint(retriever) -> None:
    lex = retriever.lexical()
    assert retriever.lexical() is lex, "an unchanged store must not rebuild the index"
    assert lex.fingerprint == f"{retriever.store.name}:{retriever.store.version()}"
    assert retriever.index_dir is not None
    loaded = LexicalIndex.load(retriever.index_dir)
    assert loaded is not None and loaded.fingerprint == lex.fingerprint
    assert [c.id for c in loaded.chunks] == [c.id for c in lex.chunks]


def test_lexical_normalisation() -> None:
    assert normalize("15'000 Soldaten") == "15000 soldaten"
    assert normalize("15’000") == "15000"
    assert normalize("Grösse Straße") == "grösse strasse"
    assert tokenize("Soldaten") == tokenize("Soldat")
    assert tokenize("Wie viele sind es?") == []
    assert "15000" in tokenize("rund 15'000 Soldaten")


def test_unreadable_saved_index_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "chunks.jsonl").write_text("{not json\n", encoding="utf-8")
    assert LexicalIndex.load(tmp_path) is None
    assert LexicalIndex.load(tmp_path / "missing") is None


# ---- the XQuAD runner, on a tiny synthetic file with the fake embedder ------------------------

def _squad(articles: list[tuple[str, list[tuple[str, list[tuple[str, str, str]]]]]]) -> dict:
    data = []
    for title, paragraphs in articles:
        paras = []
        for context, qas in paragraphs:
            paras.append({"context": context, "qas": [
                {"id": qid, "question": q, "answers": [{"text": a,
                                                         "answer_start": context.index(a)}]}
                for qid, q, a in qas]})
        data.append({"title": title, "paragraphs": paras})
    return {"version": "1.1", "data": data}


CTX_A1 = ("Der Rhein ist ein Strom in Mitteleuropa. Er entspringt in den Alpen in der Schweiz "
          "und mündet nach 1230 Kilometern in die Nordsee bei Rotterdam.")
CTX_A2 = ("Basel liegt am Rheinknie. Die Stadt hat rund 180000 Einwohner und eine bekannte "
          "Universität, die älteste der Schweiz.")
CTX_B1 = ("Die Photosynthese wandelt Lichtenergie in chemische Energie um. Pflanzen nutzen dafür "
          "Chlorophyll in den Chloroplasten ihrer Blätter.")


def test_xquad_runner_writes_report(tmp_path: Path, fake_embedder) -> None:
    from app.library import Library
    from evals.xquad import run_xquad
    from store.collection import ChunkStore, connect

    de = _squad([
        ("Rhein", [(CTX_A1, [("q1", "Wie lang ist der Rhein bis zur Nordsee?", "1230 Kilometern"),
                             ("q2", "Wo mündet der Rhein in die Nordsee?", "Rotterdam")]),
                   (CTX_A2, [("q3", "Wie viele Einwohner hat Basel?", "180000")])]),
        ("Photosynthese", [(CTX_B1, [("q4", "Was nutzen Pflanzen für die Photosynthese?",
                                      "Chlorophyll")])]),
    ])
    en = _squad([
        ("Rhine", [(CTX_A1, [("q1", "How long is the Rhine?", "1230 Kilometern"),
                             ("q2", "Where does the Rhine flow into the North Sea?", "Rotterdam")]),
                   (CTX_A2, [("q3", "How many inhabitants does Basel have?", "180000")])]),
        ("Photosynthesis", [(CTX_B1, [("q4", "What do plants use for photosynthesis?",
                                       "Chlorophyll")])]),
    ])
    de_file, en_file = tmp_path / "xquad.de.json", tmp_path / "xquad.en.json"
    de_file.write_text(json.dumps(de, ensure_ascii=False), encoding="utf-8")
    en_file.write_text(json.dumps(en, ensure_ascii=False), encoding="utf-8")
    built: list[Path] = []

    def build(store_dir: Path) -> Library:
        built.append(store_dir)
        store = ChunkStore(connect(path=store_dir), "xquad", fake_embedder.name, fake_embedder.dim)
        return Library(store, fake_embedder)

    out = tmp_path / "out"
    summary = run_xquad(de_file, out, en_file, build=build, progress=False)
    assert built == [out / "store"]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    s = report["summary"]
    assert s == json.loads(json.dumps(summary))
    for lang in ("de", "en"):
        assert {"hit@1", "hit@5", "mrr", "n"} <= set(s[lang])
        assert s[lang]["n"] == 4
        for base in ("bm25", "dense"):
            assert s["baselines"][base][lang]["n"] == 4
            assert 0.0 <= s["baselines"][base][lang]["mrr"] <= 1.0
        assert 0.0 <= s[lang]["hit@1"] <= s[lang]["hit@5"] <= 1.0
    # the German questions share words with their paragraphs: BM25 and hybrid find them all
    assert s["baselines"]["bm25"]["de"]["hit@5"] == 1.0
    assert s["de"]["hit@5"] == 1.0
    assert s["corpus"]["documents"] == 2 and s["corpus"]["embedding"] == "fake-hash"
    rows = report["rows"]
    assert len(rows) == 8
    assert {r["language"] for r in rows} == {"de", "en"}
    assert all({"rank_hybrid", "rank_dense", "rank_lexical"} <= set(r) for r in rows)


def test_squad_loader_offsets(tmp_path: Path) -> None:
    from evals.xquad import load_squad

    data = _squad([("Rhein", [(CTX_A1, [("q1", "?", "Rotterdam")]),
                              (CTX_A2, [("q3", "?", "180000")])])])
    f = tmp_path / "s.json"
    f.write_text(json.dumps(data), encoding="utf-8")
    docs, questions = load_squad(f)
    assert len(docs) == 1
    for q in questions:
        assert docs[0].text[q.start:q.end] == q.answer
    for name, body in (("nojson.json", "{oops"), ("nodata.json", '{"version": "1"}')):
        bad = tmp_path / name
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(ValueError) as err:
            load_squad(bad)
        assert name in str(err.value)


def test_squad_loader_rejects_a_json_list(tmp_path: Path) -> None:
    from evals.xquad import load_squad

    bad = tmp_path / "list.json"
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError):
        load_squad(bad)


@pytest.mark.parametrize("n", [0, 1, 3, 10, 49, 50, 80])
def test_top_indices_equal_a_stable_full_sort(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(50):  # coarse scores: many ties, at the cut too
        scores = rng.integers(0, 6, 50).astype(np.float32)
        assert top_indices(scores, n).tolist() == np.argsort(-scores, kind="stable")[:n].tolist()
