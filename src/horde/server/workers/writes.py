"""What the job lifecycle does to a worker's record: the workers domain's part of other domains'
statements (the completion in `jobs/statements/` composes it; the fault runs it).

`COMPLETED` and `completed_sql` are the same write, as a Core statement (run after the job's
compare-and-set won, inside its transaction) and as a PostgreSQL CTE body (inside the one-statement
completion). Their parameters: `wid`, `paid` (hundredths), `things`, `sample` (things per second of
this job, folded into the worker's speed).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Update, bindparam, update

from horde.server.kit.orm import table
from horde.server.kit.sql import Params
from horde.server.workers.models import Worker

workers = table(Worker)

COMPLETED = (
    update(workers)
    .where(workers.c.id == bindparam("wid"))
    .values(
        fulfilments=workers.c.fulfilments + 1,
        kudos_generated=workers.c.kudos_generated + bindparam("paid", type_=BigInteger),
        things=workers.c.things + bindparam("things", type_=Float),
        speed=workers.c.speed * 0.9 + bindparam("sample", type_=Float) * 0.1,
    )
)


def completed_sql(p: Params, *, after: str) -> str:
    """PostgreSQL: `COMPLETED` as a CTE body, applied only when the CTE `after` returned a row."""
    return f"""UPDATE workers SET fulfilments = fulfilments + 1,
        kudos_generated = kudos_generated + {p("paid")}, things = things + {p("things")},
        speed = speed * 0.9 + {p("sample")} * 0.1
    WHERE id = {p("wid")} AND EXISTS (SELECT 1 FROM {after})
    RETURNING 1"""  # noqa: S608 (names and placeholders only: values are bound)


def unpause_owned(user_id: int) -> Update:
    """Unpause an owner's workers (the owner was promoted to trusted, SEMANTICS.md 4.5)."""
    return (
        update(workers).where(workers.c.user_id == user_id, workers.c.paused.is_(True)).values(paused=False)
    )


def faulted(worker_id: object, *, expired: bool) -> Update:
    """A job the worker held was faulted (it reported the fault, or its lease ran out)."""
    return (
        update(workers)
        .where(workers.c.id == worker_id)
        .values(
            uncompleted_jobs=workers.c.uncompleted_jobs + 1,
            aborted_jobs=workers.c.aborted_jobs + (1 if expired else 0),
        )
    )
