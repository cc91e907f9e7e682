"""A cycle job that released the lock (it finished the cycle) never takes it back on a later heartbeat.

Found by the multi-host test (tests/s3/test_multihost.py): with a 1 s heartbeat, the finish job's beat
re-took the lock it had just released, and the next forced cycle was refused for the lock's whole TTL.
"""

from __future__ import annotations

import time

from app.services.cycle import lock as cycle_lock


def test_a_beat_after_the_release_does_not_take_the_lock_back() -> None:
    with cycle_lock.hold("c0ffee", None, every=0.01):
        assert cycle_lock.holder() == "c0ffee"
        assert cycle_lock.release("c0ffee")  # what finish_cycle does, inside the job's lease
        time.sleep(0.3)  # thirty beats
        assert cycle_lock.holder() is None, "a heartbeat re-took the released lock"
    assert cycle_lock.acquire("next") is None  # the next cycle may start at once
    cycle_lock.release("next")


def test_a_lock_lost_from_redis_mid_job_is_still_taken_back() -> None:
    from app.core.redis import get_redis

    with cycle_lock.hold("c0ffee", None, every=0.01):
        get_redis().delete(cycle_lock.lock_key())  # Redis lost it (restart, failover), the job is alive
        time.sleep(0.3)
        assert cycle_lock.holder() == "c0ffee"
    cycle_lock.release("c0ffee")
