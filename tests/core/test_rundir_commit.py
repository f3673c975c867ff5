"""``git_commit``: the sender's commit when named (a tree sent to a GPU machine), else git's, else None."""

from siftkit.core.rundir import git_commit


def test_git_commit_takes_the_senders_commit_when_named(tmp_path, monkeypatch):
    monkeypatch.delenv("SIFTKIT_GIT_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above tmp_path either
    assert git_commit(tmp_path) is None
    monkeypatch.setenv("SIFTKIT_GIT_COMMIT", "abc123")
    assert git_commit(tmp_path) == "abc123"
    assert git_commit() == "abc123"  # also where a (possibly stale) .git travelled with the tree
