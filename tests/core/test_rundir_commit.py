"""``git_commit`` in a copy of the tree without ``.git`` (a lent GPU machine) takes the sender's commit."""

from siftkit.core.rundir import git_commit


def test_git_commit_outside_a_checkout_takes_the_senders_commit(tmp_path, monkeypatch):
    monkeypatch.delenv("SIFTKIT_GIT_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above tmp_path either
    assert git_commit(tmp_path) is None
    monkeypatch.setenv("SIFTKIT_GIT_COMMIT", "abc123")
    assert git_commit(tmp_path) == "abc123"
