"""The Ray session: a wrong address is one sentence within seconds, never a minutes-long retry loop."""

from __future__ import annotations

import socket
import time

import pytest

from crystalrep.cluster import ClusterError, ray_session


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nobody listens there


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:notaport", ":6379", "ray://"])
def test_malformed_address_is_refused_before_ray_starts(address: str) -> None:
    with pytest.raises(ClusterError, match="is not HOST:PORT"), ray_session(address):
        pass


def test_address_nobody_listens_at_fails_fast_with_one_sentence() -> None:
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(ClusterError) as info, ray_session(f"127.0.0.1:{port}"):
        pass
    assert time.monotonic() - start < 10  # ray.init itself retried for 821 s on such an address
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "ray start --head" in message and "\n" not in message
    import ray

    assert not ray.is_initialized()
