"""The worker program: pops text, image and alchemy jobs from a horde, runs them, submits the results.

    config = load_config(Path("worker.yaml"), env=os.environ)
    exit_code = asyncio.run(run_worker(config))

`Worker` is the loop (explicit start/stop lifecycle, see `horde.worker.loop`); handlers per kind live in
`horde.worker.jobs`; model backends in `horde.worker.backends`. `horde worker` is the command line.
"""

from horde.worker.app import BRIDGE_AGENT, build_client, build_handlers, run_worker
from horde.worker.backoff import Backoff
from horde.worker.config import ConfigError, WorkerConfig, load_config
from horde.worker.jobs import AlchemyJobs, Handler, ImageJobs, Job, Popped, TextJobs
from horde.worker.loop import Worker, WorkerError, WorkerOptions

__all__ = [
    "BRIDGE_AGENT",
    "AlchemyJobs",
    "Backoff",
    "ConfigError",
    "Handler",
    "ImageJobs",
    "Job",
    "Popped",
    "TextJobs",
    "Worker",
    "WorkerConfig",
    "WorkerError",
    "WorkerOptions",
    "build_client",
    "build_handlers",
    "load_config",
    "run_worker",
]
