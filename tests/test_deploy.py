"""deploy/ as an operator installs it (issue 26): the systemd unit starts `serve` with options the CLI takes, nginx's
limits are the service's own and its bulk path is the service's, and every metric the alert rules watch is one the
service exports (a renamed metric would silence an alert without a word)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from bot.cli.main import build_parser
from bot.infra.metrics import Metrics
from bot.web.common import BODY_LIMIT, BULK_LIMIT, MIB
from bot.web.middleware import BULK_PATHS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_the_unit_starts_serve_with_options_the_cli_takes() -> None:
    unit = (DEPLOY / "haochaping.service").read_text(encoding="utf-8")
    [start] = re.findall(r"^ExecStart=(.+)$", unit, re.M)
    argv = shlex.split(start)
    assert argv[0].endswith("/bin/haochaping") and argv[1] == "serve"
    args = build_parser().parse_args(argv[1:])
    assert (args.host, args.port, int(args.workers)) == ("127.0.0.1", 8080, 2)
    assert "RestartPreventExitStatus=2" in unit  # a configuration error is not restarted for ever
    assert "tick" not in start  # serve runs the scheduler itself


def test_nginx_keeps_the_services_limits_and_forwards_the_client_as_the_service_reads_it() -> None:
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    server = conf.split("listen 443", 1)[1]
    limits = dict(re.findall(r"location = (\S+) \{[^}]*?client_max_body_size (\d+)m;", server, re.S))
    assert limits == {path: str(BULK_LIMIT // MIB) for path in BULK_PATHS}
    assert re.search(r"^    client_max_body_size (\d+)m;", server, re.M).group(1) == str(BODY_LIMIT // MIB)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in server  # replaced, never appended to


def test_every_metric_the_alerts_watch_is_exported() -> None:
    rules = (DEPLOY / "alerts.yml").read_text(encoding="utf-8")
    def base(name: str) -> str:
        return re.sub(r"_(total|count|sum|bucket)$", "", name)

    watched = {base(m) for m in re.findall(r"\bhaochaping_[a-z_]+", rules)}
    exported = {base(m) for m in re.findall(r"^# TYPE (haochaping_[a-z_]+) ", Metrics().render().decode(), re.M)}
    assert len(watched) >= 7 and watched <= exported, watched - exported
