"""LrefConfig settings that change behaviour."""


def test_device_cpu_forces_cpu_training():
    from siftkit.relevance.config import LrefConfig
    from siftkit.relevance.train import _cpu_only

    assert _cpu_only(LrefConfig(device="cpu")) is True
