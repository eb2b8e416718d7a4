"""Configuration: environment variables, or the same keys in ./haochaping.toml (the environment wins).

With nothing configured the service runs on the embedded defaults: SQLite next to it, in-process
state, the local message provider.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from channels.registry import SMS_PROVIDERS, provider_keys
from store.sealing import ALGORITHMS

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///haochaping.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"
LOOPBACK = ("127.0.0.0/8", "::1/128")
MIN_SECRET = 16  # store/sealing.Sealer's rule

KEYS = (
    "HAOCHAPING_DATABASE_URL", "HAOCHAPING_REDIS_URL", "HAOCHAPING_REDIS_PREFIX", "HAOCHAPING_PUBLIC_URL",
    "HAOCHAPING_API_TOKEN", "HAOCHAPING_SECRET_KEY", "HAOCHAPING_POLICY", "HAOCHAPING_SCHEDULER",
    "HAOCHAPING_LOG_LEVEL", "HAOCHAPING_SIMULATOR", "HAOCHAPING_TICK_INTERVAL", "HAOCHAPING_SEND_LEASE",
    "HAOCHAPING_SEND_TIMEOUT", "HAOCHAPING_DB_POOL_SIZE", "HAOCHAPING_DB_MAX_OVERFLOW", "HAOCHAPING_DB_POOL_TIMEOUT",
    "HAOCHAPING_REDIS_MAX_CONNECTIONS", "HAOCHAPING_REDIS_POOL_TIMEOUT", "HAOCHAPING_HEADER_TIMEOUT",
    "HAOCHAPING_BODY_TIMEOUT", "HAOCHAPING_PREVIOUS_SECRET_KEY", "HAOCHAPING_METRICS_ALLOW", "HAOCHAPING_METRICS_TOKEN",
    "HAOCHAPING_CRYPTO", "HAOCHAPING_PREVIOUS_CRYPTO", "HAOCHAPING_TRUSTED_PROXIES",
    "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SMS_FROM", "TWILIO_API_BASE_URL",
    "WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY", "WECHAT_APP_ID", "WECHAT_APP_SECRET",
    "WECHAT_MP_APP_ID", "WECHAT_MP_APP_SECRET", "WECHAT_MP_TEMPLATE_ID", "WECHAT_MP_PAGE",
    "WECHAT_API_BASE_URL", "HAOCHAPING_SMS_PROVIDER", "HAOCHAPING_SMS_RATE", "FREESWITCH_HTTAPI_TOKEN",
    *(key for key in provider_keys() if not key.startswith("TWILIO_")),  # each SMS provider's own variables
)
NAMED_PROVIDER_KEYS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SMS_FROM", "TWILIO_API_BASE_URL")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_prefix: str = "haochaping:"
    public_url: str = DEFAULT_PUBLIC_URL
    # HAOCHAPING_PUBLIC_URL was set (the environment or haochaping.toml). When it was not, `serve` writes its
    # own address into links instead of the default (serving_settings); `tick` keeps the default.
    public_url_given: bool = False
    api_token: str | None = None
    secret_key: str | None = None
    previous_secret_key: str | None = None  # after a rotation: rating links signed with it still open
    # The algorithms that seal personal data and sign links: "aes" (AES-GCM, HMAC-SHA-256) or "sm" (SM4-GCM,
    # HMAC-SM3; store/sealing.py); the previous key's, when a rotation changed them.
    crypto: str = "aes"
    previous_crypto: str | None = None
    # Who may read GET /metrics: these addresses and networks ("*": anyone), or a bearer token.
    metrics_allow: tuple[str, ...] = LOOPBACK
    # The reverse proxies (nginx) whose X-Forwarded-For names the client: from anyone else it is ignored.
    trusted_proxies: tuple[str, ...] = ()
    metrics_token: str | None = None
    policy_path: str | None = None
    scheduler: bool = True
    log_level: str = "INFO"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_sms_from: str | None = None
    twilio_api_base_url: str | None = None
    wechat_token: str | None = None
    wechat_encoding_aes_key: str | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_mp_app_id: str | None = None
    wechat_mp_app_secret: str | None = None
    wechat_mp_template_id: str | None = None
    wechat_mp_page: str | None = None
    wechat_api_base_url: str | None = None
    # The secret a FreeSWITCH's mod_httapi profile presents (basic auth password, or ?token= in its URL); unset:
    # POST /webhooks/freeswitch/httapi is 404 (channels/freeswitch).
    freeswitch_httapi_token: str | None = None
    simulator: bool = True  # HAOCHAPING_SIMULATOR=off hides /simulator/ even on the local provider
    # Seconds. How often `serve` runs a scheduler pass; how long a claimed outbox message stays a
    # worker's before another may take it over (a killed worker's messages wait this long); how long
    # one request to a provider may take before its outcome counts as unknown.
    tick_interval: float = 5.0
    send_lease: float = 120.0
    send_timeout: float = 15.0
    # Seconds a request's headers may take to arrive (from the connection or the previous answer), and its
    # body (for the bulk endpoint: the longest silence while its body streams in). Slow senders are dropped.
    header_timeout: float = 60.0
    # SMS sends per second this process makes through the provider (its account's rate limit); 0: no limit.
    sms_rate: float = 0.0
    body_timeout: float = 60.0
    # Connection pools, per process (docs/configuration.md). The database's: pool_size kept open,
    # max_overflow more under load, and a request waits at most db_pool_timeout seconds for one (then
    # 503 with Retry-After). Redis's: at most redis_max_connections, waited for at most
    # redis_pool_timeout seconds (then StateUnavailable, 503). Bursts wait instead of failing at once;
    # the waits end before Twilio's 15 s, so the answer still reaches it.
    db_pool_size: int = 10
    db_max_overflow: int = 5
    db_pool_timeout: float = 10.0
    redis_max_connections: int = 50
    redis_pool_timeout: float = 5.0

    # HAOCHAPING_SMS_PROVIDER, and the variables of the SMS providers beyond Twilio's (which have fields above).
    sms_provider: str | None = None
    provider_values: Mapping[str, str] = field(default_factory=dict)

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def sms_provider_name(self) -> str:
        """The SMS provider: HAOCHAPING_SMS_PROVIDER, else Twilio when TWILIO_ACCOUNT_SID is set, else local."""
        return self.sms_provider or ("twilio" if self.twilio_account_sid else "local")

    def sms_provider_values(self) -> dict[str, str]:
        """Every SMS provider variable that is set, Twilio's from their fields."""
        named = dict(zip(NAMED_PROVIDER_KEYS, (self.twilio_account_sid, self.twilio_auth_token, self.twilio_sms_from,
                                               self.twilio_api_base_url), strict=True))
        return {**self.provider_values, **{k: v for k, v in named.items() if v}}

    @property
    def production(self) -> bool:
        """Reached from elsewhere than this machine (HAOCHAPING_PUBLIC_URL names another host)."""
        host = (urlsplit(self.public_url).hostname or "").lower()
        return not (host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost"))

    @property
    def simulator_enabled(self) -> bool:
        """Only where no provider of any kind is configured (SMS, WeChat, the mini-program, voice): the
        simulator moves a clock and ticks, and nothing it does may reach a real person."""
        providers = (self.twilio_enabled, self.twilio_account_sid, self.wechat_token, self.wechat_app_id,
                     self.wechat_mp_app_id, self.sms_provider not in (None, "local"))
        return self.simulator and not any(providers)


def listen_url(host: str, port: int) -> str:
    """The address `serve` listens on, as a browser on this machine reaches it: every address (0.0.0.0, ::)
    as 127.0.0.1, an IPv6 address in brackets."""
    host = host.strip().strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serving_settings(settings: Settings, host: str, port: int) -> Settings:
    """The settings `serve` runs with: without HAOCHAPING_PUBLIC_URL, links name the address it listens on
    (`serve --port 18080` writes http://127.0.0.1:18080/r/…), not the default's port 8080."""
    if settings.public_url_given or settings.public_url != DEFAULT_PUBLIC_URL:
        return settings
    return replace(settings, public_url=listen_url(host, port))


def _file_values(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as f:
            doc: dict[str, Any] = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    out: dict[str, str] = {}
    for key, value in doc.items():
        name = key.upper()
        if name not in KEYS and f"HAOCHAPING_{name}" in KEYS:
            name = f"HAOCHAPING_{name}"
        if name not in KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}")
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _rate(raw: str | None) -> float:
    if raw is None:
        return 0.0
    try:
        rate = float(raw)
    except ValueError:
        raise ConfigError(f"HAOCHAPING_SMS_RATE: expected messages per second, got {raw!r}") from None
    if not 0 <= rate <= 100_000:
        raise ConfigError(f"HAOCHAPING_SMS_RATE: expected 0 (no limit) to 100000 per second, got {raw!r}")
    return rate


def _sms_provider(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = raw.strip().lower()
    if name not in SMS_PROVIDERS:
        raise ConfigError(f"HAOCHAPING_SMS_PROVIDER: expected one of {', '.join(SMS_PROVIDERS)}, got {raw!r}")
    return name


def _networks(raw: str | None, name: str = "HAOCHAPING_METRICS_ALLOW",
              default: tuple[str, ...] = LOOPBACK, star: bool = True) -> tuple[str, ...]:
    if raw is None:
        return default
    found = tuple(part.strip() for part in raw.split(",") if part.strip())
    for net in found:
        if net == "*" and star:
            continue
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {net!r} is not an address or a network") from None
    return found


def load_settings(env: dict[str, str] | None = None, cwd: Path | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    values = _file_values((cwd or Path.cwd()) / "haochaping.toml")
    values.update({k: v for k, v in env.items() if k in KEYS and v != ""})

    def get(name: str) -> str | None:
        return values.get(name)

    switches = {}
    for name in ("HAOCHAPING_SCHEDULER", "HAOCHAPING_SIMULATOR"):
        value = (get(name) or "on").strip().lower()
        if value not in ("on", "off", "true", "false", "1", "0"):
            raise ConfigError(f"{name}: expected on or off, got {value!r}")
        switches[name] = value in ("on", "true", "1")
    seconds = {}
    for name, default in (("HAOCHAPING_TICK_INTERVAL", 5.0), ("HAOCHAPING_SEND_LEASE", 120.0),
                          ("HAOCHAPING_SEND_TIMEOUT", 15.0), ("HAOCHAPING_DB_POOL_TIMEOUT", 10.0),
                          ("HAOCHAPING_HEADER_TIMEOUT", 60.0), ("HAOCHAPING_BODY_TIMEOUT", 60.0),
                          ("HAOCHAPING_REDIS_POOL_TIMEOUT", 5.0)):
        raw = get(name)
        try:
            value = float(raw) if raw is not None else default
        except ValueError:
            raise ConfigError(f"{name}: expected a number of seconds, got {raw!r}") from None
        if not 0 < value <= 86_400:
            raise ConfigError(f"{name}: expected more than 0 and at most 86400 seconds, got {raw!r}")
        seconds[name] = value
    counts = {}
    for name, default, least_count in (("HAOCHAPING_DB_POOL_SIZE", 10, 1), ("HAOCHAPING_DB_MAX_OVERFLOW", 5, 0),
                                       ("HAOCHAPING_REDIS_MAX_CONNECTIONS", 50, 1)):
        raw = get(name)
        try:
            count = int(raw) if raw is not None else default
        except ValueError:
            raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
        if not least_count <= count <= 10_000:
            raise ConfigError(f"{name}: expected a whole number from {least_count} to 10000, got {raw!r}")
        counts[name] = count
    least = 2 * seconds["HAOCHAPING_SEND_TIMEOUT"] + 1  # one attempt: asking the provider, then sending
    if seconds["HAOCHAPING_SEND_LEASE"] < least:
        raise ConfigError(f"HAOCHAPING_SEND_LEASE: {seconds['HAOCHAPING_SEND_LEASE']:g} s is shorter than one attempt "
                          f"can take (2 × HAOCHAPING_SEND_TIMEOUT + 1 = {least:g} s): another worker would take a "
                          "message over while it is being sent")
    for name in ("HAOCHAPING_SECRET_KEY", "HAOCHAPING_PREVIOUS_SECRET_KEY"):
        key = get(name)
        if key is not None and len(key) < MIN_SECRET:
            raise ConfigError(f"{name}: at least {MIN_SECRET} characters (32 or more random ones are better)")
    crypto = {}
    for name in ("HAOCHAPING_CRYPTO", "HAOCHAPING_PREVIOUS_CRYPTO"):
        value = get(name)
        if value is not None and value not in ALGORITHMS:
            raise ConfigError(f"{name}: expected one of {', '.join(ALGORITHMS)} (aes: AES-GCM and HMAC-SHA-256; sm: "
                              f"SM4-GCM and HMAC-SM3), got {value!r}")
        crypto[name] = value
    httapi_token = get("FREESWITCH_HTTAPI_TOKEN")
    if httapi_token is not None and (len(httapi_token) < MIN_SECRET or not all(
            ch.isascii() and (ch.isalnum() or ch in "-_.~") for ch in httapi_token)):
        raise ConfigError(f"FREESWITCH_HTTAPI_TOKEN: at least {MIN_SECRET} letters, digits and - _ . ~ (it may be "
                          "written into the httapi profile's URL)")
    public = (get("HAOCHAPING_PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")
    return Settings(
        database_url=get("HAOCHAPING_DATABASE_URL") or DEFAULT_DATABASE_URL,
        redis_url=get("HAOCHAPING_REDIS_URL"),
        redis_prefix=get("HAOCHAPING_REDIS_PREFIX") or "haochaping:",
        public_url=public,
        public_url_given=bool(get("HAOCHAPING_PUBLIC_URL")),
        api_token=get("HAOCHAPING_API_TOKEN"),
        secret_key=get("HAOCHAPING_SECRET_KEY"),
        previous_secret_key=get("HAOCHAPING_PREVIOUS_SECRET_KEY"),
        crypto=crypto["HAOCHAPING_CRYPTO"] or "aes",
        previous_crypto=crypto["HAOCHAPING_PREVIOUS_CRYPTO"],
        metrics_allow=_networks(get("HAOCHAPING_METRICS_ALLOW")),
        trusted_proxies=_networks(get("HAOCHAPING_TRUSTED_PROXIES"), "HAOCHAPING_TRUSTED_PROXIES", (), star=False),
        metrics_token=get("HAOCHAPING_METRICS_TOKEN"),
        policy_path=get("HAOCHAPING_POLICY"),
        scheduler=switches["HAOCHAPING_SCHEDULER"],
        log_level=(get("HAOCHAPING_LOG_LEVEL") or "INFO").upper(),
        twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
        twilio_sms_from=get("TWILIO_SMS_FROM"),
        twilio_api_base_url=get("TWILIO_API_BASE_URL"),
        wechat_token=get("WECHAT_TOKEN"),
        wechat_encoding_aes_key=get("WECHAT_ENCODING_AES_KEY"),
        wechat_app_id=get("WECHAT_APP_ID"),
        wechat_app_secret=get("WECHAT_APP_SECRET"),
        wechat_mp_app_id=get("WECHAT_MP_APP_ID"),
        wechat_mp_app_secret=get("WECHAT_MP_APP_SECRET"),
        wechat_mp_template_id=get("WECHAT_MP_TEMPLATE_ID"),
        wechat_mp_page=get("WECHAT_MP_PAGE"),
        wechat_api_base_url=get("WECHAT_API_BASE_URL"),
        freeswitch_httapi_token=httapi_token,
        sms_provider=_sms_provider(get("HAOCHAPING_SMS_PROVIDER")),
        provider_values={k: v for k in provider_keys() if k not in NAMED_PROVIDER_KEYS and (v := get(k))},
        simulator=switches["HAOCHAPING_SIMULATOR"],
        tick_interval=seconds["HAOCHAPING_TICK_INTERVAL"],
        send_lease=seconds["HAOCHAPING_SEND_LEASE"],
        send_timeout=seconds["HAOCHAPING_SEND_TIMEOUT"],
        header_timeout=seconds["HAOCHAPING_HEADER_TIMEOUT"],
        sms_rate=_rate(get("HAOCHAPING_SMS_RATE")),
        body_timeout=seconds["HAOCHAPING_BODY_TIMEOUT"],
        db_pool_size=counts["HAOCHAPING_DB_POOL_SIZE"],
        db_max_overflow=counts["HAOCHAPING_DB_MAX_OVERFLOW"],
        db_pool_timeout=seconds["HAOCHAPING_DB_POOL_TIMEOUT"],
        redis_max_connections=counts["HAOCHAPING_REDIS_MAX_CONNECTIONS"],
        redis_pool_timeout=seconds["HAOCHAPING_REDIS_POOL_TIMEOUT"],
    )
