"""A ten-passage invented corpus in Search-R1's JSONL format, and models loaded once per session."""

from __future__ import annotations

import json

import pytest

from siftkit.retrieval import Corpus

# Invented facts; one topic per passage so that each query has one right answer.
DOCS = [
    ("d0", "Velmora", "Velmora is the capital of the Republic of Quillan. Its old town is famous for glass bridges "
                      "that cross the river Senn."),
    ("d1", "Tarn Otter Sanctuary", "The Tarn Otter Sanctuary shelters river otters rescued from polluted streams "
                                   "and releases them upstream each spring."),
    ("d2", "Pemberton Clockworks", "Pemberton Clockworks was founded in 1821 and built tower clocks and pocket "
                                   "watches with brass gears."),
    ("d3", "Saffron rice pudding", "Saffron rice pudding is a sweet dessert: rice simmered in milk with sugar, "
                                   "cardamom and saffron threads."),
    ("d4", "Mount Kesh", "Mount Kesh is an active volcano. Its last eruption covered three villages in ash and "
                         "lava."),
    ("d5", "Ortolan Quartet", "The Ortolan Quartet is a string quartet of two violins, a viola and a cello that "
                              "plays chamber music."),
    ("d6", "Brisk probe", "Brisk was a small spacecraft launched to fly past a comet and photograph its icy "
                          "nucleus."),
    ("d7", "Halvard Line", "The Halvard Line is a mountain railway; its trains climb through a spiral tunnel "
                           "under the pass."),
    ("d8", "Juniper apiary", "At the Juniper apiary, beekeepers tend forty hives and harvest honey every "
                             "August."),
    ("d9", "Lantern Festival of Oru", "Each winter the people of Oru float thousands of paper lanterns on the "
                                      "harbour during a festival of light."),
]


def write_corpus(path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for docid, title, text in DOCS:
            f.write(json.dumps({"id": docid, "contents": f'"{title}"\n{text}'}) + "\n")


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_corpus(p)
    return p


@pytest.fixture(scope="session")
def corpus(corpus_path):
    return Corpus.from_jsonl(corpus_path)


@pytest.fixture(scope="session")
def bm25(corpus):
    from siftkit.retrieval import BM25Retriever

    return BM25Retriever(corpus)


@pytest.fixture(scope="session")
def minilm():
    from siftkit.embed import load_embedder

    return load_embedder("minilm")


@pytest.fixture(scope="session")
def e5():
    from siftkit.embed import load_embedder

    return load_embedder("e5")


@pytest.fixture(scope="session")
def dense(minilm, corpus):
    from siftkit.retrieval import DenseRetriever

    return DenseRetriever(minilm, corpus)
