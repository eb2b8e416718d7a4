"""`haochaping keys`: rotating the key that seals personal data while the service runs.

A rotation moves the data from the key it is sealed with to the one in HAOCHAPING_SECRET_KEY (and from one family
of algorithms to the other: HAOCHAPING_PREVIOUS_CRYPTO names the old, HAOCHAPING_CRYPTO the new). Every `serve`
and `tick` is restarted first with the new key and HAOCHAPING_PREVIOUS_SECRET_KEY set to the old: from then on
they seal and hash with the new key only, and open and find with both (store/sealing.py). `keys rotate` then
re-seals table by table in short transactions (store/resealing.py), recording after each batch how far it got,
so that it can be stopped (`--batches`, Ctrl-C, a crash) and run again to go on; the last step records the new
key as the data's, and removes the key the service generated and kept in the database if the data was sealed
with that one. `secret rotate` does the same in one transaction with the service stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bot.infra.config import ConfigError, Settings
from bot.infra.runtime import previous_keys
from store import migrate, resealing
from store import settings as stored
from store.engine import Database
from store.sealing import Sealer, fingerprint


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    k = sub.add_parser("keys", help="rotating the key that seals personal data while the service runs")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    ksub.add_parser("status", help="which key the data is sealed with, and how far a rotation got")
    r = ksub.add_parser("rotate", help="re-seal everything under HAOCHAPING_SECRET_KEY in resumable batches "
                                       "(the old key in HAOCHAPING_PREVIOUS_SECRET_KEY)")
    r.add_argument("--batch", type=int, default=resealing.BATCH, help="rows a transaction (default %(default)s)")
    r.add_argument("--pause", type=float, default=0.0, metavar="SECONDS",
                   help="rest between batches, to leave the database to the service (default 0)")
    r.add_argument("--batches", type=int, default=None, metavar="N",
                   help="stop after N batches; the next run goes on from there")


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.keys_command == "status":
            result = asyncio.run(status(settings))
        else:
            if args.batch < 1 or args.pause < 0 or (args.batches is not None and args.batches < 1):
                raise ConfigError("--batch and --batches must be at least 1, --pause at least 0")
            result = asyncio.run(rotate(settings, batch=args.batch, pause=args.pause, batches=args.batches))
    except ConfigError as exc:
        print(f"haochaping keys: {exc}", file=sys.stderr)
        return 2
    except resealing.Unopenable as exc:
        print(f"haochaping keys: {exc}; nothing of that batch was written", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


async def _progress(db: Database) -> dict[str, dict[str, int]]:
    """Per table, the last id re-sealed and the last id there is."""
    marks = {what.name: await stored.get(db, stored.ROTATED_UP_TO + what.name) for what in resealing.TABLES}
    async with db.read() as session:
        last = await resealing.last_ids(session)
    return {name: {"up_to": int(marks[name] or 0), "last_id": last[name]} for name in marks}


async def status(settings: Settings) -> dict[str, Any]:
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        recorded = await stored.get(db, stored.SEALED_WITH)
        target = await stored.get(db, stored.ROTATING_TO)
        kept = await stored.get(db, stored.SECRET_KEY)
        secret = settings.secret_key or kept
        mine = fingerprint(secret, settings.crypto) if secret else None
        olds = [fingerprint(k, family) for k, family, _ in previous_keys(settings, kept)]
        sealed_with = ("this key" if recorded == mine else "the previous key" if recorded in olds
                       else "nothing yet" if recorded is None else "another key")
        return {"crypto": settings.crypto, "sealed_with": sealed_with, "rotating": target is not None,
                "rotating_to": None if target is None else "this key" if target == mine else "another key",
                "progress": await _progress(db) if target is not None else None}
    finally:
        await db.close()


async def rotate(settings: Settings, *, batch: int = resealing.BATCH, pause: float = 0.0,
                 batches: int | None = None) -> dict[str, Any]:
    """Re-seal what is left, batch by batch; finish the rotation when nothing is."""
    if not settings.secret_key:
        raise ConfigError("HAOCHAPING_SECRET_KEY: the key to rotate to is unset (the old one goes in "
                          "HAOCHAPING_PREVIOUS_SECRET_KEY)")
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        mine = fingerprint(settings.secret_key, settings.crypto)
        recorded = await stored.get(db, stored.SEALED_WITH)
        if recorded == mine:
            return {"done": True, "resealed": {}, "note": "the data is sealed with this key already"}
        kept = await stored.get(db, stored.SECRET_KEY)
        found = [(k, family) for k, family, _ in previous_keys(settings, kept) if fingerprint(k, family) == recorded]
        if recorded is None or not found:
            raise ConfigError("neither HAOCHAPING_PREVIOUS_SECRET_KEY (with HAOCHAPING_PREVIOUS_CRYPTO) nor a key "
                              "kept in the database is the key the data is sealed with: nothing was changed")
        old_key, old_family = found[0]
        target = await stored.get_or_create(db, stored.ROTATING_TO, mine)
        if target != mine:
            raise ConfigError("a rotation to another key is under way: finish it with that key first")
        sealer = Sealer(settings.secret_key, settings.crypto).rotating_from(Sealer(old_key, old_family))
        resealed = {what.name: 0 for what in resealing.TABLES}
        left = batches
        for what in resealing.TABLES:
            mark_key = stored.ROTATED_UP_TO + what.name
            await stored.get_or_create(db, mark_key, "0")  # so that two runs at once advance it one at a time
            while left is None or left > 0:
                async with db.write() as session:
                    after = int(await stored.locked(session, mark_key) or 0)
                    step = await resealing.reseal_batch(session, what, sealer, after, batch)
                    if step.last is None:
                        break
                    await stored.put(session, mark_key, str(step.last))
                resealed[what.name] += step.resealed
                left = None if left is None else left - 1
                if pause:
                    await asyncio.sleep(pause)
            else:  # the batches allowed are spent before the table is: stop here, the marks say where
                return {"done": False, "resealed": resealed, "progress": await _progress(db),
                        "next": "run `haochaping keys rotate` again to go on"}
        async with db.write() as session:
            await stored.put(session, stored.SEALED_WITH, mine)
            for what in resealing.TABLES:
                await stored.delete(session, stored.ROTATED_UP_TO + what.name)
            await stored.delete(session, stored.ROTATING_TO)
            removed = old_key == kept and await stored.delete(session, stored.SECRET_KEY)
        return {"done": True, "resealed": resealed, "stored_key_removed": removed, "crypto": settings.crypto,
                "next": "keep HAOCHAPING_PREVIOUS_SECRET_KEY (and HAOCHAPING_PREVIOUS_CRYPTO) while rating links "
                        "signed with the old key may still be opened; restart without them after that"}
    finally:
        await db.close()
