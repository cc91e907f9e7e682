"""The RQ worker `mlpipe worker` runs: RQ's forking Worker, plus one hook RQ lacks.

When a work horse dies (SIGKILL, out of memory) while its worker survives, RQ records the failure and
retries the job if it can, but runs no failure callback. Our stage jobs rely on that callback to end the
cycle `failed` with the reason once their retries are spent, so the worker runs it here in that case (RQ
already runs it for a job that raised, and for one abandoned because its whole worker died).
"""

from __future__ import annotations

from typing import Any

from rq import Worker
from rq.exceptions import AbandonedJobError


class MlpipeWorker(Worker):
    def handle_work_horse_killed(self, job: Any, retpid: int, ret_val: int, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if job.failure_callback is None or (job.retries_left or 0) > 0:
            return  # RQ retries it; the callback of the last try decides
        error = AbandonedJobError(f"its work horse died (waitpid status {ret_val})")
        try:
            job.failure_callback(job, self.connection, AbandonedJobError, error, None)
        except Exception:  # noqa: BLE001 - a failing callback must not take the worker down
            self.log.exception("failure callback of job %s raised", job.id)
