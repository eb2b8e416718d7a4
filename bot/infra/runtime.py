"""Everything a request or a tick needs, opened once per process and closed at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bot.infra.config import ConfigError, Settings
from bot.infra.i18n import Catalogs
from bot.infra.links import Links
from bot.infra.metrics import Metrics
from bot.infra.rate import TokenBucket
from bot.infra.state import SessionState, open_state, tokens_for
from bot.infra.wakeups import Wakeups
from bot.policy.rules import Policy, load_policy, sms_templates
from bot.policy.timing import Timing
from bot.policy.workdays import WorkCalendar, YearDays
from channels.base import ConfigProblem, ProviderConfig, SmsChannel, TextSender
from channels.registry import SMS_PROVIDERS
from channels.twilio.voice import TwilioCaller
from channels.wechat.api import WeChatApi
from channels.wechat.official import OfficialAccount
from dialogs.rating import Rules
from dialogs.types import Reply
from store import calendar_years, migrate
from store import settings as stored_settings
from store.engine import Database
from store.sealing import ALGORITHMS, Sealer, fingerprint


@dataclass
class Runtime:
    settings: Settings
    policy: Policy
    db: Database
    sealer: Sealer
    state: SessionState
    catalogs: Catalogs
    timing: Timing
    links: Links
    sms_channel: SmsChannel  # the configured SMS provider (its webhooks, its health)
    sms: TextSender  # its sender
    sms_rate: TokenBucket  # HAOCHAPING_SMS_RATE: sends a second through it, from this process
    rules: Rules
    wechat: OfficialAccount | None = None  # the official account's callbacks (WECHAT_TOKEN)
    wechat_api: WeChatApi | None = None  # its server API (customer-service messages)
    mp_api: WeChatApi | None = None  # the mini-program's (subscribe messages, login)
    caller: TwilioCaller | None = None  # outbound calls (automated callbacks)
    http: aiohttp.ClientSession | None = None  # our own HTTP requests (reports upward): see http_client()
    # The simulator of this service (bot.web.simulator.Simulator), with its world of its own; every app built on this
    # runtime shares it, and closing the runtime closes it.
    simulator: Any = None
    # the calendar warning last logged, and its day (bot/duties/official_calendar.py)
    calendar_logged: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    # Hints to the hall's window devices that a case arrived (bot/infra/wakeups.py); across processes with Redis.
    wakeups: Wakeups = field(default_factory=Wakeups)
    # The one clock of request handling; tests replace it to make a webhook happen at a chosen instant.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def rules_for(self, channel: str) -> Rules:
        """The dialog's rules on a channel: WeChat (the official account's chat and a mini-program's
        customer-service chat) rates a lone unrated case at once (CONTRACT)."""
        return replace(self.rules, rate_single_directly=True) if channel in ("wechat", "miniprogram") else self.rules

    def render(self, reply: Reply, locale: str) -> str:
        return self.catalogs.render(reply, locale, tz=self.policy.tz, reasons=self.policy.reasons)

    def sms_payload(self, reply: Reply, locale: str) -> dict[str, Any]:
        """What a template provider needs of this message (bot/policy/sms_templates.py): its key and values."""
        return sms_templates.payload(reply.key, self.catalogs.values(reply, locale, tz=self.policy.tz,
                                                                    reasons=self.policy.reasons))

    def http_client(self) -> aiohttp.ClientSession:
        """One pooled client for the process, opened on first use (inside the running loop, and only by
        a process that has something to push)."""
        if self.http is None or self.http.closed:
            self.http = aiohttp.ClientSession()
        return self.http

    async def close(self) -> None:
        if self.simulator is not None:
            await self.simulator.close()
        if self.http is not None:
            await self.http.close()
        await self.sms_channel.close()
        if self.caller is not None:
            await self.caller.close()
        await self.state.close()
        await self.db.close()


def open_sms(settings: Settings, policy: Policy) -> SmsChannel:
    """The configured SMS provider (channels/registry.py): its sender and its webhooks. A template provider
    refuses to start while a message key the contract lists has no template of its own, naming the keys."""
    provider = SMS_PROVIDERS[settings.sms_provider_name]
    templates: dict[str, tuple[str, tuple[str, ...]]] = {}
    if provider.needs_templates:
        templates = {key: (t.codes[provider.name], t.params) for key, t in policy.sms_templates.items()
                     if provider.name in t.codes}
        missing = sms_templates.missing(templates)
        if missing:
            raise ConfigError(f"HAOCHAPING_SMS_PROVIDER={provider.name}: the policy's [sms.templates] gives no "
                              f"{provider.name} template for {', '.join(missing)}")
    try:
        return provider.open(ProviderConfig(settings.sms_provider_values(), settings.public_url, settings.send_timeout,
                                            templates))
    except ConfigProblem as exc:
        raise ConfigError(str(exc)) from None


async def check_sealed_with(db: Database, settings: Settings, secret: str) -> Sealer | None:
    """The key and algorithms must be those the stored personal data was sealed with (recorded at the first start
    and when a rotation ends): a wrong or lost key would seal new data that the old cannot join. The one other
    case is an online rotation (`haochaping keys rotate`): the key is the new one and the data's is the previous
    (HAOCHAPING_PREVIOUS_SECRET_KEY, or the key the service generated and kept): that one is returned, to open
    and find what is not re-sealed yet, and the new key is recorded as the rotation's, so that no process seals
    with a third."""
    algorithm = settings.crypto
    mine = fingerprint(secret, algorithm)
    recorded = await stored_settings.get_or_create(db, stored_settings.SEALED_WITH, mine)
    if recorded == mine:
        return None
    begun = await stored_settings.get(db, stored_settings.ROTATING_TO)
    for candidate, family, explicit in previous_keys(settings, await stored_settings.get(db,
                                                                                      stored_settings.SECRET_KEY)):
        if candidate != secret and fingerprint(candidate, family) == recorded and (explicit or begun == mine):
            target = await stored_settings.get_or_create(db, stored_settings.ROTATING_TO, mine)
            if target != mine:
                raise ConfigError("a rotation to another key is under way (`haochaping keys status`): start with "
                                  "the key it began with, or finish it first")
            return Sealer(candidate, family)
    other = next((a for a in ALGORITHMS if a != algorithm and fingerprint(secret, a) == recorded), None)
    if other is not None:
        raise ConfigError(f"HAOCHAPING_CRYPTO: this database's personal data is sealed with the {other!r} "
                          f"algorithms, not {algorithm!r}; set HAOCHAPING_CRYPTO={other}, or change them with "
                          "`haochaping keys rotate` (HAOCHAPING_PREVIOUS_CRYPTO)")
    raise ConfigError("HAOCHAPING_SECRET_KEY is not the key this database's personal data is sealed with; "
                      "set the key it was sealed with (after a rotation, the new one; during one, the new one "
                      "with HAOCHAPING_PREVIOUS_SECRET_KEY set to the old)")


def previous_keys(settings: Settings, kept: str | None) -> list[tuple[str, str, bool]]:
    """The keys a rotation may start from, with their algorithms and whether they were configured as such: the
    previous key (a start with it begins the rotation), and the key the service generated and kept in the
    database, moving to a configured key (only once `keys rotate` has begun it: a key set by mistake on a
    database with a generated one is refused, not taken for a rotation)."""
    family = settings.previous_crypto or settings.crypto
    keys = [(settings.previous_secret_key, True), (kept if settings.secret_key else None, False)]
    return [(k, family, explicit) for k, explicit in keys if k and len(k) >= 16]


async def stored_years(db: Database) -> dict[int, YearDays]:
    """The official calendar years imported into the database (bot/duties/official_calendar.py)."""
    async with db.read() as session:
        rows = await calendar_years.all_years(session)
    return {row.year: YearDays.from_iso(row.holidays, row.workdays) for row in rows}


def links_of(settings: Settings, sealer: Sealer) -> Links:
    """The rating links, signed with the key's algorithms; after a rotation, also those signed with the previous
    key (and its algorithms, HAOCHAPING_PREVIOUS_CRYPTO, when the rotation changed them)."""
    previous = (Sealer(settings.previous_secret_key, settings.previous_crypto or settings.crypto)
                if settings.previous_secret_key else None)
    return Links(settings.public_url, sealer.subkey("links"), previous=previous.subkey("links") if previous else None,
                 mac=sealer.mac, previous_mac=previous.mac if previous else None)


async def open_runtime(settings: Settings) -> Runtime:
    """Open the store (schema brought to the current revision), the state and the providers."""
    policy = load_policy(settings.policy_path)
    sms_channel = open_sms(settings, policy)  # a provider that cannot work refuses before anything opens
    db = Database(settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
                  pool_timeout=settings.db_pool_timeout)
    try:
        await migrate.upgrade(db)
        secret = settings.secret_key or await stored_settings.get_or_create(db, stored_settings.SECRET_KEY)
        try:
            Sealer(secret, settings.crypto)  # a key it refuses is never recorded as the data's
        except ValueError as exc:
            raise ConfigError(f"HAOCHAPING_SECRET_KEY: {exc}") from None
        sealer = Sealer(secret, settings.crypto, previous=await check_sealed_with(db, settings, secret))
        years = await stored_years(db)
    except Exception:
        await db.close()
        await sms_channel.close()
        raise
    calendar = WorkCalendar(holidays=policy.holidays, workdays=policy.workdays, years=years)
    state = open_state(settings.redis_url, settings.redis_prefix, max_connections=settings.redis_max_connections,
                       pool_timeout=settings.redis_pool_timeout)
    tokens = tokens_for(state)
    wakeups = Wakeups(getattr(state, "redis", None), settings.redis_prefix)
    s = settings
    return Runtime(
        settings=settings,
        policy=policy,
        db=db,
        sealer=sealer,
        state=state,
        catalogs=Catalogs(),
        timing=Timing(policy, calendar),
        links=links_of(settings, sealer),
        sms_channel=sms_channel,
        sms=sms_channel.sender,
        sms_rate=TokenBucket(settings.sms_rate),
        wakeups=wakeups,
        rules=Rules(
            reasons=tuple(policy.reasons),
            labels=tuple(policy.reasons.values()),
            ttl=timedelta(hours=policy.conversation_hours),
            more_text_ttl=timedelta(minutes=policy.more_text_minutes),
        ),
        wechat=(OfficialAccount(s.wechat_token, s.wechat_encoding_aes_key, s.wechat_app_id, s.wechat_mp_app_id)
                if s.wechat_token else None),
        wechat_api=(WeChatApi(s.wechat_app_id, s.wechat_app_secret, tokens, s.wechat_api_base_url)
                    if s.wechat_app_id and s.wechat_app_secret else None),
        caller=(TwilioCaller(s.twilio_account_sid, s.twilio_auth_token, s.twilio_sms_from,
                             base_url=s.twilio_api_base_url, timeout=s.send_timeout)
                if s.twilio_enabled and s.twilio_account_sid and s.twilio_auth_token else None),
        mp_api=(WeChatApi(s.wechat_mp_app_id, s.wechat_mp_app_secret, tokens, s.wechat_api_base_url)
                if s.wechat_mp_app_id and s.wechat_mp_app_secret else None),
    )


def instant(rt: Runtime, value: datetime | None) -> str | None:
    """An instant as every answer gives it: ISO-8601 in the policy's timezone, with its offset."""
    return None if value is None else value.astimezone(rt.policy.tz).isoformat()
