"""Every URL the server answers, on one screen (the routers live in their domains).

/api/v2  generate/async check/{id} status/{id} pop submit rate/{id} jobs/routes.py (image)
         generate/text/async text/status/{id} text/pop text/submit  jobs/routes.py (text)
         interrogate/async status/{id} pop submit                    jobs/routes.py (alchemy)
         workers workers/{id} (GET PUT DELETE) workers/name/{name}   workers/routes.py
         workers/messages workers/messages/{id} (GET DELETE)          messages/routes.py
         find_user users users/{id} (GET PUT DELETE)                 users/routes.py
         kudos/transfer kudos/award                                  kudos/routes.py
         teams teams/{id} (GET PATCH DELETE)                         teams/routes.py
         generate/status/{id}/events text/status/{id}/events interrogate/status/{id}/events (SSE)
                                                                     events/routes.py
         sharedkeys (PUT) sharedkeys/{id} (GET PATCH DELETE)          sharedkeys/routes.py
         stats/img/totals stats/img/models stats/text/totals stats/text/models  stats/routes.py
         styles/image|text styles/{kind}/{id} (GET PATCH DELETE)    styles/routes.py
         styles/{kind}_by_name/{name} styles/image/{id}/example[/{id}] styles/routes.py
         collections collections/{id} collection_by_name/{name}      styles/routes.py
         problem_jobs (this horde's: jobs reported as CSAM, mods)      jobs/routes.py
         filters (GET PUT POST) filters/regex filters/{id} (GET PATCH DELETE)  filters/routes.py
         status/heartbeat models models/{name} performance modes news status/routes.py
         documents/terms privacy sponsors (?format=html|markdown)      documents/routes.py
         status/modes (PUT)                                          status/routes.py
         operations/ipaddr (GET POST DELETE) ipaddr/{ip}               operations/routes.py
         operations/block_worker_ipaddr/{worker_id} (PUT DELETE)     operations/routes.py
         dev/test-user (HORDE_TEST_APIKEYS=1, loopback only)         dev/routes.py
/        .well-known/serviceinfo                                     status/routes.py
         objects/{key} (signed GET/PUT of the local storage)         images/routes.py
         metrics (Prometheus text format, HORDE_METRICS=1)           observe/routes.py
         register (GET form, POST: a pseudonymous user and its key)  users/routes.py
/v1      models completions chat/completions images/generations      openai/routes.py (OpenAI's API)
/api     swagger.json (generated OpenAPI), /api/ (docs)              app.py

The pops, submits, asyncs and status polls are answered by lean handlers in front of FastAPI
(`jobs/routes.py` `LEAN`, `lean.py`, ADR 0020); their FastAPI routes here document them and are the
fallback with `HORDE_LEAN_HOT_PATHS=0`.
"""

from fastapi import APIRouter

import horde.server.messages.routes as messages
from horde.server.dev import routes as dev
from horde.server.documents import routes as documents
from horde.server.events import routes as events
from horde.server.filters import routes as filters
from horde.server.images import routes as images
from horde.server.jobs import routes as jobs
from horde.server.kit.routing import HordeRoute
from horde.server.kudos import routes as kudos
from horde.server.observe import routes as observe
from horde.server.openai import routes as openai
from horde.server.operations import routes as operations
from horde.server.sharedkeys import routes as sharedkeys
from horde.server.stats import routes as stats
from horde.server.status import routes as status
from horde.server.styles import routes as styles
from horde.server.teams import routes as teams
from horde.server.users import routes as users
from horde.server.workers import routes as workers

# the v2 routers, each mounted under /api/v2 by the app (one level of routers keeps matching cheap)
# messages before workers: /workers/messages must not be taken for /workers/{worker_id}
API_ROUTERS = tuple(
    module.router
    for module in (
        jobs,
        events,
        messages,
        workers,
        users,
        kudos,
        teams,
        sharedkeys,
        stats,
        styles,
        filters,
        status,
        operations,
        documents,
        dev,
    )
)

root_router = APIRouter(route_class=HordeRoute)
root_router.include_router(status.root_router)
root_router.include_router(images.router)
root_router.include_router(observe.router)
root_router.include_router(users.root_router)
root_router.include_router(openai.router)
