"""LLM usefulness labelling of clicked documents from search-session context (Dewan, Liu, Shah, SIGIR 2025).

Example:
    >>> from siftkit.usefulness.config import UsefulnessConfig
    >>> from siftkit.usefulness.data import load_sessions_jsonl
    >>> from siftkit.usefulness.run import label_clicks, make_model
    >>> clicks = load_sessions_jsonl("sessions.jsonl")  # doctest: +SKIP
    >>> res = label_clicks(make_model("smollm2"), clicks, UsefulnessConfig(mode="session"))  # doctest: +SKIP
    >>> res.scores, res.summary()["missing"]  # doctest: +SKIP

See docs/usefulness.md.
"""
