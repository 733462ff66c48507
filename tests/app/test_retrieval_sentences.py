"""The Retrieval page's sentences about how neighbours were found and who ties with the query."""

from __future__ import annotations


def test_the_page_says_how_many_crystals_share_the_query_vector() -> None:
    from ui.retrieval import identical_sentence, search_sentence

    assert identical_sentence(0, "magpie", 10) == "" and identical_sentence(None, "magpie", 10) == ""
    assert identical_sentence(1, "magpie", 10).startswith("1 other crystal has exactly this magpie vector")
    assert identical_sentence(3, "magpie", 10).endswith("they come first, at distance 0, in dataset order.")
    assert "all 10 neighbours listed are among them" in identical_sentence(437, "magpie", 10)
    info = {"search": "exact", "rows": 200_000, "distinct_vectors": 33_701}
    assert search_sentence(info) == ("Exact search over all 200,000 crystals. They hold 33,701 distinct vectors: "
                                     "crystals with the same vector tie and are listed in dataset order.")
    assert search_sentence({**info, "distinct_vectors": 200_000}) == "Exact search over all 200,000 crystals."
