"""The projections ``kith replay rebuild`` can find: those in a service's SPEC and those
run by workers of their own (:data:`WORKER_PROJECTIONS`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from kith.cli.replay.errors import ReplayError
from kith.cli.replay.wrappers import Rebuildable, WithTables
from kith.common.config import Settings
from kith.common.projection import Projection

# The fan-out worker's read model. ``feed_refs`` (uuid → surrogate id, never rewritten) is
# left out on purpose: the copy shares it through the search_path, so ids stay the same.
FEED_FANOUT_TABLES = ("feed_niches", "feed_members", "feed_blocks", "feed_posts", "feed_entries")


def feed_fanout(settings: Settings) -> tuple[Rebuildable, str]:
    """The fan-out worker's projection (run by ``kith feed fanout``, not by a SPEC)."""
    from kith.feed.entrypoint import fanout_runner

    runner = fanout_runner(settings)  # also migrates the feed database
    tables = getattr(runner.projection, "tables", None) or FEED_FANOUT_TABLES
    return WithTables(runner.projection, tables), runner.dsn


# Projections that run in workers of their own rather than in a service's SPEC.
WORKER_PROJECTIONS: dict[tuple[str, str], Callable[[Settings], tuple[Rebuildable, str]]] = {
    ("feed", "feed.fanout"): feed_fanout,
}


def find_projection(settings: Settings, service: str, name: str
                    ) -> tuple[Projection, str, Callable[[], None]]:
    """``(projection, dsn, close)`` of a worker's projection or one in ``kith.<service>``'s
    SPEC."""
    from kith.common.codec import default_codec
    from kith.common.db import make_pool
    from kith.common.eventstore import EventStore
    from kith.common.service import ServiceContext

    if (service, name) in WORKER_PROJECTIONS:
        projection, dsn = WORKER_PROJECTIONS[(service, name)](settings)
        return projection, dsn, lambda: None
    try:
        spec = importlib.import_module(f"kith.{service}.entrypoint").SPEC
    except (ModuleNotFoundError, AttributeError):
        raise ReplayError(f"no service {service!r} with a SPEC") from None
    spec.use_keys(settings)
    dsn = settings.database_url(spec.name)
    pool = make_pool(dsn, max_size=2, name=f"replay-{service}")
    ctx = ServiceContext(spec.name, settings, dsn, pool, default_codec(),
                         EventStore(pool, default_codec()))
    found = {p.name: p for p in spec.projections(ctx)}
    if name not in found:
        pool.close()
        raise ReplayError(f"{service} has no projection {name!r}; it has: "
                          f"{', '.join(sorted(found)) or 'none'}")
    return found[name], dsn, pool.close
