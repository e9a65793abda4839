"""The styles domain's periodic task: fold use events into the styles' and collections' counts."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kit.orm import table
from horde.server.state import Horde
from horde.server.styles import lookup
from horde.server.styles.models import StyleUse

uses = table(StyleUse)
styles, collections = lookup.styles, lookup.collections


async def fold(conn: AsyncConnection, *, limit: int = 5000) -> int:
    """Take up to `limit` use events (oldest first), add them to the counts and delete them."""
    oldest = select(uses.c.id).order_by(uses.c.id).limit(limit).with_for_update(skip_locked=True)
    taken = (
        await conn.execute(
            delete(uses)
            .where(uses.c.id.in_(oldest.scalar_subquery()))
            .returning(uses.c.style_id, uses.c.collection_id)
        )
    ).all()
    by_style = Counter(row.style_id for row in taken)
    by_collection = Counter(row.collection_id for row in taken if row.collection_id is not None)
    # a style or collection deleted meanwhile matches no row: its uses fold into nothing
    for style_id, count in sorted(by_style.items()):
        await conn.execute(
            update(styles).where(styles.c.id == style_id).values(use_count=styles.c.use_count + count)
        )
    for collection_id, count in sorted(by_collection.items()):
        await conn.execute(
            update(collections)
            .where(collections.c.id == collection_id)
            .values(use_count=collections.c.use_count + count)
        )
    return len(taken)


async def fold_style_uses(horde: Horde) -> int:
    """Fold until nothing is left (bounded batches, one transaction each)."""
    total = 0
    for _ in range(20):
        async with horde.db.transaction() as conn:
            folded = await fold(conn)
        total += folded
        if not folded:
            break
    return total
