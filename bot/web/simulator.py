"""The simulator: a citizen's phone (SMS), WeChat and a 12345 keypad inside the browser, talking to
the very same road as the providers' webhooks (bot.inbound.conversation, bot.inbound.ivr) and the `local`
provider, with a clock of its own.

Each browser gets a simulated person (a number in the 170 virtual-operator range, an openid) and a
clock offset from the service's clock. Moving the clock runs one `tick` at the simulated instant,
exactly as `haochaping tick --now` would. That tick, the simulated cases and everything they lead to
live in a world of their own: a runtime on a temporary SQLite database and in-process state, opened
at the first use and deleted when the service stops. So a simulated clock never applies a default,
sends a reminder or marks a work order overdue in the real store, and simulated cases never reach
the statistics, exports or reports upward. The simulator exists only where no provider of any kind
is configured (Settings.simulator_enabled). What the person typed and what was answered at once is
kept in the simulator's session (in the service's state, 24 hours); reminders and other messages come
from the world's outbox, as the local provider recorded them. Rating links in the world point at
/simulator/r/…, the rating page served on the world's store.

Every SMS the service sends keeps its message key and values (the outbox payload, bot/policy/sms_templates.py); the
simulator shows under it what each template provider the policy names (Aliyun, Tencent) would be sent instead
of the text, and checks the policy's template set as `serve` on such a provider would (issue 20).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.duties import scheduler
from bot.inbound import conversation, ivr
from bot.infra import keys
from bot.infra.i18n import SOURCE
from bot.infra.runtime import Runtime, open_runtime
from bot.policy.rules import TEMPLATE_PROVIDERS, Policy, sms_templates
from bot.rating import intake
from bot.web import views
from channels.base import shorten
from dialogs.addresses import mask_openid, mask_phone
from dialogs.types import Inbound
from store import cases as case_store
from store import contacts, outbox

TTL = 24 * 3600
LOG_MAX = 300
MAX_JUMP = timedelta(days=400)
SAMPLES = (("sim.sample.item_1", "sim.sample.agency_1"), ("sim.sample.item_2", "sim.sample.agency_2"),
           ("sim.sample.item_3", "sim.sample.agency_3"))
CHANNELS = ("sms", "wechat", "phone")


class SimError(ValueError):
    """A request the simulator cannot do (a 422 with this message)."""


def template_providers(policy: Policy) -> list[str]:
    """The template providers the policy gives at least one template for, in TEMPLATE_PROVIDERS' order."""
    return [p for p in TEMPLATE_PROVIDERS if any(p in t.codes for t in policy.sms_templates.values())]


def template_preview(policy: Policy, payload: Any) -> dict[str, Any] | None:
    """What an SMS (its outbox payload {"key", "values"}) would be sent as at each template provider the policy
    gives templates for: the template's code and its values as the provider's API takes them (Aliyun's
    TemplateParam by name, each value cut to the length Aliyun takes as channels/aliyun cuts it; Tencent's
    TemplateParamSet in order), the values the provider may refuse as too long (bot/sms_templates.too_long) and
    those the message has none for. `request` is None where the policy has no template for the key there. None
    for a message without a key."""
    if not isinstance(payload, dict) or not isinstance(payload.get("key"), str):
        return None
    key = payload["key"]
    given = payload.get("values")
    values = {str(k): str(v) for k, v in given.items()} if isinstance(given, dict) else {}
    template = policy.sms_templates.get(key)
    providers: list[dict[str, Any]] = []
    for provider in template_providers(policy):
        code = template.codes.get(provider) if template is not None else None
        if template is None or code is None:
            providers.append({"provider": provider, "request": None})
            continue
        filled = {name: values.get(name, "") for name in template.params}
        request: dict[str, Any]
        if provider == "aliyun":
            request = {"TemplateCode": code}
            if filled:  # a fixed template is sent without TemplateParam
                request["TemplateParam"] = {name: shorten(value, sms_templates.ALIYUN_VALUE_MAX)
                                            for name, value in filled.items()}
        else:
            request = {"TemplateId": code, "TemplateParamSet": list(filled.values())}
        providers.append({"provider": provider, "request": request, "names": list(filled),
                          "too_long": sms_templates.too_long(provider, filled),
                          "max": sms_templates.VALUE_MAX[provider],
                          "missing": [name for name, value in filled.items() if not value]})
    return {"key": key, "providers": providers}


def template_check(policy: Policy) -> dict[str, Any]:
    """The policy's template set at each template provider, as `serve` there would check it: the contract's keys
    without a template (it refuses to start, bot/runtime.open_sms) and the other keys without one (such a message
    is not sent). A template naming a value its key does not offer never gets this far: the policy that holds it
    is refused when read (bot/policy/rules.py), by the simulator's service too."""
    providers = []
    for provider in TEMPLATE_PROVIDERS:
        given = {key for key, t in policy.sms_templates.items() if provider in t.codes}
        providers.append({
            "provider": provider,
            "missing": sms_templates.missing(given),
            "unsent": [key for key in sms_templates.VALUES if key not in sms_templates.CONTRACT_KEYS
                       and key not in given],
        })
    return {"configured": bool(policy.sms_templates), "providers": providers}


@dataclass
class Sim:
    id: str
    phone: str  # E.164
    openid: str
    offset: float = 0.0  # seconds ahead of the service's clock
    log: list[dict[str, Any]] = field(default_factory=list)
    call: dict[str, Any] | None = None  # the keypad call in progress: ticket, the JSON dialog's call id and step
    cases: list[str] = field(default_factory=list)
    seq: int = 0

    @classmethod
    def new(cls) -> Sim:
        return cls(id=secrets.token_urlsafe(18), phone="+861700" + "".join(secrets.choice("0123456789")
                                                                           for _ in range(7)),
                   openid="sim_" + secrets.token_hex(12))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Sim | None:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None


class Simulator:
    def __init__(self, service: Runtime) -> None:
        self.service = service  # the real service: its clock, and where the simulator's sessions are kept
        self._world: Runtime | None = None
        self._opening = asyncio.Lock()
        self._dir: str | None = None

    @property
    def rt(self) -> Runtime:
        """The simulated world (open it first with `world()`)."""
        if self._world is None:
            raise RuntimeError("the simulated world is not open yet")
        return self._world

    async def world(self) -> Runtime:
        """The simulated world's runtime, opened on first use: a temporary SQLite file of its own."""
        async with self._opening:
            if self._world is None:
                self._dir = tempfile.mkdtemp(prefix="haochaping-simulator-")
                s = self.service.settings
                settings = dataclasses.replace(
                    s, database_url=f"sqlite+aiosqlite:///{Path(self._dir) / 'world.db'}", redis_url=None,
                    public_url=s.public_url.rstrip("/") + "/simulator", scheduler=False)
                world = await open_runtime(settings)
                world.clock = lambda: self.service.clock()
                self._world = world
        return self._world

    async def close(self) -> None:
        if self._world is not None:
            await self._world.close()
            self._world = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def load(self, sim_id: str | None) -> Sim | None:
        if not sim_id or len(sim_id) > 64:
            return None
        found = await self.service.state.get(keys.simulation(sim_id))
        return Sim.from_json(found) if found else None

    async def save(self, sim: Sim) -> None:
        sim.log = sim.log[-LOG_MAX:]
        await self.service.state.put(keys.simulation(sim.id), sim.to_json(), TTL)

    def now(self, sim: Sim) -> datetime:
        """The simulated instant, to the second (as people read clocks)."""
        return (self.service.clock() + timedelta(seconds=sim.offset)).replace(microsecond=0)

    def _note(self, sim: Sim, channel: str, direction: str, text: str, **more: Any) -> None:
        """One line of the transcript; a system line keeps its catalog key, shown in the reader's language."""
        sim.log.append({"channel": channel, "dir": direction, "text": text, "at": self.now(sim).isoformat(), **more})

    # --- the business system's part ------------------------------------------------------------

    async def post_case(self, sim: Sim, channel: str) -> str:
        """A sample case just completed for the simulated person, reachable on `channel`."""
        if channel not in ("sms", "wechat"):
            raise SimError("channel: expected sms or wechat")
        sim.seq += 1
        item, agency = SAMPLES[(sim.seq - 1) % len(SAMPLES)]
        text = self.rt.catalogs.text
        case_no = f"SIM-{sim.id[:8].upper()}-{sim.seq}"
        applicant = {"phone": sim.phone} if channel == "sms" else {"wechat_openid": sim.openid}
        parsed = intake.CaseIn.model_validate({
            "case_no": case_no, "item_code": f"SIM-{(sim.seq - 1) % len(SAMPLES) + 1}",
            "item_name": text(SOURCE, item), "agency_code": "SIM", "agency_name": text(SOURCE, agency),
            "completed_at": self.now(sim).isoformat(), "applicant": applicant, "staff_id": "SIM-001",
            "staff_name": text(SOURCE, "sim.sample.staff"),
        })
        await intake.ingest(self.rt, parsed, self.now(sim), source="simulator")
        sim.cases.append(case_no)
        self._note(sim, channel, "system", "", key="sim.log.case_posted", case_no=case_no)
        return case_no

    async def move_clock(self, sim: Sim, *, hours: float | None = None, to: datetime | None = None
                         ) -> dict[str, int]:
        """Forward only, then one tick at the new instant: what is due then happens."""
        current = self.now(sim)
        target = to if to is not None else current + timedelta(hours=hours or 0)
        if target.tzinfo is None:
            raise SimError("to: an instant with an offset is required")
        if target < current or target - current > MAX_JUMP:
            raise SimError("the clock moves forward only, at most 400 days at a time")
        sim.offset += (target - current).total_seconds()
        counts = await scheduler.tick(self.rt, target)
        self._note(sim, "clock", "system", "", counts=counts)
        return counts

    # --- the citizen's part ----------------------------------------------------------------------

    async def text(self, sim: Sim, channel: str, body: str) -> list[str]:
        """A message typed on the simulated phone (SMS) or in WeChat; the answers given at once."""
        body = body.strip()[:1000]
        if not body:
            raise SimError("text: say something")
        if channel == "sms":
            inbound = Inbound(channel="sms", address=sim.phone, text=body, message_id=f"SIM{secrets.token_hex(16)}",
                              received_at=self.now(sim))
            answer = await conversation.handle(self.rt, inbound, "phone")
        elif channel == "wechat":
            inbound = Inbound(channel="wechat", address=sim.openid, text=body,
                              message_id=f"sim-{secrets.token_hex(12)}", received_at=self.now(sim))
            answer = await conversation.handle(self.rt, inbound, "wechat")
        else:
            raise SimError("channel: expected sms or wechat")
        self._note(sim, channel, "in", body)
        # An SMS answer keeps what a template provider would take of it, as the outbox keeps it (SmsRoad).
        replies = answer.replies if len(answer.replies) == len(answer.texts) else [None] * len(answer.texts)
        for reply, text in zip(replies, answer.texts, strict=True):
            more = {"payload": self.rt.sms_payload(reply, answer.locale)} if channel == "sms" and reply else {}
            self._note(sim, channel, "out", text, **more)
        return answer.texts

    async def call(self, sim: Sim) -> None:
        """A call to 12345 that ends and is handed over for the keypad rating (a hotline ticket), run as a
        centre's switch runs it: the JSON keypad dialog (bot/inbound/ivr.py), so a centre tries its prompts and
        recordings ([hotline.recordings]) here before going live."""
        sim.seq += 1
        ticket = f"SIM-{sim.id[:8].upper()}-T{sim.seq}"
        call_id = f"sim-{secrets.token_hex(12)}"
        started = await ivr.start(self.rt, call_id, sim.phone, ticket, self.now(sim))
        sim.cases.append(ticket)
        self._note(sim, "phone", "system", "", key="sim.log.call", case_no=ticket)
        self._speak(sim, started.answer, ticket)

    async def keys(self, sim: Sim, digits: str | None) -> None:
        """Keys pressed (or None: silence) at the keypad's current question."""
        if sim.call is None:
            raise SimError("no call in progress")
        if digits is not None and (len(digits) > 9 or not all(c in "0123456789*#" for c in digits)):
            raise SimError("digits: 0-9, * and # only")
        if "call_id" not in sim.call:  # a call begun before the keypad ran on the JSON dialog
            sim.call = None
            raise SimError("the call's state is unreadable; call again")
        pressed = digits.rstrip("#") if digits else None
        self._note(sim, "phone", "in", digits or "", silence=not pressed)
        answer = await ivr.keys(self.rt, sim.call["call_id"], pressed or "", sim.call["step"], self.now(sim))
        self._speak(sim, answer, sim.call["ticket"])

    def hang_up(self, sim: Sim) -> None:
        if sim.call is not None:
            sim.call = None
            self._note(sim, "phone", "system", "", key="sim.log.hung_up")

    def _speak(self, sim: Sim, answer: dict[str, Any], ticket: str) -> None:
        for prompt in answer["prompts"]:
            more = {"audio": prompt["audio"]} if prompt.get("audio") else {}
            self._note(sim, "phone", "out", prompt["text"], **more)
        ask = answer["ask"]
        sim.call = None if ask is None else {"ticket": ticket, "call_id": answer["call_id"], "step": answer["step"],
                                             "multi": bool(ask.get("finish_on_key"))}
        if ask is None:
            self._note(sim, "phone", "system", "", key="sim.log.call_ended")

    # --- what the page shows ---------------------------------------------------------------------

    async def view(self, sim: Sim, locale: str = SOURCE) -> dict[str, Any]:
        rt = self.rt
        log = [{**e, "text": rt.catalogs.text(locale, e["key"])} if e.get("key") else e for e in sim.log]
        now = self.now(sim)
        phone_hash = rt.sealer.lookup_hashes("phone", sim.phone)
        async with rt.db.read() as session:
            contact = await contacts.find(session, "phone", phone_hash)
            sent = await outbox.for_contact(session, contact.id) if contact and contact.id is not None else []
            cases = []
            for case_no in sim.cases[-20:]:
                case = await case_store.by_no(session, case_no)
                if case is not None:
                    cases.append(await views.case_json(session, rt, case, now))
        sms = [_previewed(rt.policy, entry) for entry in log if entry["channel"] in ("sms", "clock")]
        sms += [{"channel": "sms", "dir": "out", "text": m.body, "at": m.created_at.isoformat(), "kind": m.kind,
                 "status": m.status, "template": template_preview(rt.policy, m.payload)}
                for m in sent if m.channel == "sms" and m.body]
        # In the same second, a message from the outbox (a reminder a tick sent) comes before what the
        # person typed then: they answer what they received.
        sms.sort(key=lambda e: (datetime.fromisoformat(e["at"]), "kind" not in e))
        return {
            "now": now.astimezone(rt.policy.tz).isoformat(),
            "phone": mask_phone(sim.phone), "openid": mask_openid(sim.openid),
            "sms": sms,
            "wechat": [e for e in log if e["channel"] in ("wechat", "clock")],
            "phone_log": [e for e in log if e["channel"] == "phone"],
            "call": None if sim.call is None else {"multi": sim.call.get("multi", False)},
            "cases": cases,
            "next_due": min((c["remind_at"] for c in cases if c["remind_at"]), default=None,
                            key=lambda v: datetime.fromisoformat(v)),
        }


def _previewed(policy: Policy, entry: dict[str, Any]) -> dict[str, Any]:
    """A transcript line as the page shows it: an answer's stored payload as its template preview."""
    if "payload" not in entry:
        return entry
    shown = {k: v for k, v in entry.items() if k != "payload"}
    shown["template"] = template_preview(policy, entry["payload"])
    return shown
