"""Invented clicks for the usefulness tests (no row of any data set)."""

import pytest

from siftkit.usefulness.data import Click


def make_click(i: int, **kw) -> Click:
    base = dict(id=f"c{i}", user="u1", task_id="t1", task="Find a recipe for lentil soup.", query="lentil soup",
                url=f"https://example.org/{i}", title=f"Title {i}", summary=f"Summary {i}.", query_position=1,
                rank=i, task_sat=4.0, task_dwell_s=120.5, query_sat=3.0, query_dwell_s=60.0, task_relevance=3.0,
                query_relevance=2.0, url_dwell_s=30.25, avg_url_dwell_user_task_s=20.0, avg_url_dwell_user_s=25.0,
                ctr=0.5, total_queries=2, max_clicks_user_query=3, usefulness=2)
    base.update(kw)
    return Click(**base)


@pytest.fixture
def clicks():
    """One session of two queries: c1, c2 under query 1 and c3 under query 2."""
    return [make_click(1), make_click(2, usefulness=0, query_relevance=1.0),
            make_click(3, query="lentil soup vegan", query_position=2, query_sat=5.0, usefulness=3)]
