"""`haochaping secret`: where the key that seals personal data lives, and rotating it.

`secret rotate` re-seals every phone number, openid and applicant's name under a new key, read from
HAOCHAPING_NEW_SECRET_KEY (at least 32 characters), and with the algorithms of HAOCHAPING_NEW_CRYPTO ("aes" or
"sm"; the current ones by default), in one transaction; records the new key's fingerprint
(so that a service started with any other key refuses); and deletes the key the service generated and kept
in the database, if it used one, so that a copy of the database no longer opens itself. Stop every
`serve` and `tick` first; then start them with HAOCHAPING_SECRET_KEY set to the new key (and, so that the
rating links already sent keep working, HAOCHAPING_PREVIOUS_SECRET_KEY to the old one). Console and
mini-program sessions end: people log in again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from bot.infra.config import ConfigError, Settings
from store import migrate, resealing
from store import settings as stored
from store.engine import Database
from store.sealing import ALGORITHMS, Sealer, fingerprint

NEW_KEY = "HAOCHAPING_NEW_SECRET_KEY"
NEW_CRYPTO = "HAOCHAPING_NEW_CRYPTO"  # the algorithms to re-seal with (store/sealing.py); the current ones by default
LEAST = 32


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = sub.add_parser("secret", help="the key that seals personal data: where it lives; rotating it")
    ssub = s.add_subparsers(dest="secret_command", required=True)
    ssub.add_parser("status", help="whether the key is configured or kept in the database it protects")
    ssub.add_parser("rotate", help=f"re-seal all personal data under the key in {NEW_KEY}")


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_status(settings) if args.secret_command == "status" else _rotate(settings))
    except ConfigError as exc:
        print(f"haochaping secret: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


async def _status(settings: Settings) -> dict[str, object]:
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        kept = await stored.get(db, stored.SECRET_KEY)
        return {"configured": settings.secret_key is not None, "kept_in_database": kept is not None,
                "production": settings.production}
    finally:
        await db.close()


async def _rotate(settings: Settings) -> dict[str, object]:
    new_key = os.environ.get(NEW_KEY) or ""
    new_crypto = os.environ.get(NEW_CRYPTO) or settings.crypto
    if new_crypto not in ALGORITHMS:
        raise ConfigError(f"{NEW_CRYPTO}: expected one of {', '.join(ALGORITHMS)}, got {new_crypto!r}")
    if len(new_key) < LEAST:
        raise ConfigError(f"{NEW_KEY}: the new key must be at least {LEAST} characters")
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        kept = await stored.get(db, stored.SECRET_KEY)
        old_key = settings.secret_key or kept
        if old_key is None:
            raise ConfigError("no key to rotate from: HAOCHAPING_SECRET_KEY is unset and none is kept in the database")
        if new_key == old_key:
            raise ConfigError(f"{NEW_KEY} is the key in use")
        if await stored.get(db, stored.ROTATING_TO) is not None:
            raise ConfigError("an online rotation is under way: finish it with `haochaping keys rotate`")
        recorded = await stored.get(db, stored.SEALED_WITH)
        if recorded is not None and recorded != fingerprint(old_key, settings.crypto):
            raise ConfigError("HAOCHAPING_SECRET_KEY (with HAOCHAPING_CRYPTO) is not the key the data is sealed "
                              "with: nothing was changed")
        async with db.write() as session:
            done = await resealing.reseal(session, Sealer(old_key, settings.crypto), Sealer(new_key, new_crypto))
            await stored.put(session, stored.SEALED_WITH, fingerprint(new_key, new_crypto))
            removed = await stored.delete(session, stored.SECRET_KEY)
        changed = new_crypto != settings.crypto
        return {"contacts": done.contacts, "names": done.names,
                "intermediary_ratings": done.per_table.get("intermediary_ratings", 0),
                "stored_key_removed": removed, "crypto": new_crypto,
                "next": "start serve and tick with HAOCHAPING_SECRET_KEY set to the new key"
                        + (f" and HAOCHAPING_CRYPTO={new_crypto}" if changed else "")
                        + ", and HAOCHAPING_PREVIOUS_SECRET_KEY to the old one"
                        + (f" (HAOCHAPING_PREVIOUS_CRYPTO={settings.crypto})" if changed else "")
                        + " so that links already sent keep working"}
    finally:
        await db.close()


def refuse_in_production(settings: Settings) -> None:
    """`serve` and `tick` reached from elsewhere do not seal personal data with a key kept beside it."""
    if settings.production and not settings.secret_key:
        raise ConfigError(
            f"HAOCHAPING_PUBLIC_URL ({settings.public_url}) is not this machine, and HAOCHAPING_SECRET_KEY is unset: "
            "the key would be kept in the database it protects, and a copy of the database would open itself. Set "
            f"HAOCHAPING_SECRET_KEY (at least {LEAST} characters); if data was already sealed with the key the "
            f"service generated, run `{NEW_KEY}=<new key> haochaping secret rotate` first")
