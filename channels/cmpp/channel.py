"""The CMPP channel: `serve`'s long-lived session kept logged in, a tick's short sessions, DELIVERs turned into
the application's messages and receipts, and the sender.

Why a process-local memory: CMPP has no look-up of what was sent. What one process saw (late SUBMIT_RESPs,
status reports no send of ours claimed, DELIVERs acted on, parts of long replies) is kept here, bounded; the
application's own dedupe (by message id) and the outbox stay the durable truth.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from channels.base import Failed, Outgoing, Receipt, Retry, SendResult, Sent, SmsHandlers, Unsure
from channels.cmpp import pdu
from channels.cmpp.link import Account, Link, LinkDown, Timing
from dialogs.addresses import mask_phone, normalize_phone
from dialogs.parse import clean
from dialogs.types import Inbound

log = logging.getLogger("haochaping.cmpp")

SEEN = 20_000  # Msg_Ids of DELIVERs acted on, remembered
OURS = 50_000  # Msg_Ids our SUBMITs were given
ATTEMPTS = 10_000  # sends remembered for find_sent
UNMATCHED = 10_000  # status reports of Msg_Ids no send here was given
ERROR_CODE_MAX = 16  # the outbox's error_code column
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def national(e164: str) -> str | None:
    """The Dest_terminal_Id of a number: a mainland mobile without +86; None for anything else."""
    if e164.startswith("+86") and _CN_MOBILE.fullmatch(e164[3:]):
        return e164[3:]
    return None


def phone_of(terminal_id: str) -> str | None:
    """A gateway's number (13800138000, 8613800138000, +8613800138000) as E.164, or None."""
    s = terminal_id.strip().removeprefix("+")
    if len(s) == 13 and s.startswith("86"):
        s = s[2:]
    return normalize_phone(s) if _CN_MOBILE.fullmatch(s) else None


def receipt_status(stat: str) -> str:
    """A report's Stat in the outbox's words: DELIVRD delivered; REJECTD failed (refused by the network);
    ACCEPTD (read on the person's behalf by customer service, SMPP's "accepted") changes nothing; any other
    (EXPIRED, DELETED, UNDELIV, UNKNOWN, a gateway's own code such as MK:0005) undelivered."""
    if stat == "DELIVRD":
        return "delivered"
    if stat == "REJECTD":
        return "failed"
    if stat == "ACCEPTD":
        return "sent"
    return "undelivered"


def _remember(memory: OrderedDict[str, None], key: str, limit: int) -> None:
    memory[key] = None
    memory.move_to_end(key)
    while len(memory) > limit:
        memory.popitem(last=False)


@dataclass
class Attempt:
    """One send's SUBMITs: their answers may come after the send gave up waiting."""

    dest: str  # national
    parts: int
    started: datetime  # wall clock, when the send began
    futures: list[asyncio.Future[pdu.Resp | None]] = field(default_factory=list)

    def verdict(self) -> tuple[str, str | None]:
        """("sent", the first part's Msg_Id) when every part was accepted; ("resend", None) when a part was refused
        or never written (nothing, or only a fragment, is on its way); ("unknown", None) while an answer is missing."""
        if not all(f.done() for f in self.futures):
            return "unknown", None
        answers = [f.result() for f in self.futures]
        if any(a is None for a in answers):
            return "unknown", None
        if len(answers) == self.parts and all(a is not None and a.result == 0 for a in answers):
            first = answers[0]
            assert first is not None
            return "sent", pdu.msg_id_text(first.msg_id)
        return "resend", None


@dataclass
class Unmatched:
    """A status report for a Msg_Id no send of this process was given (it may be the answer that never came)."""

    phone: str  # national
    submit_time: str  # YYMMDDHHMM, Beijing time
    msg_id: str
    received: datetime  # wall clock
    claimed: bool = False


@dataclass
class Assembly:
    """The parts of one long reply seen so far."""

    started: float
    parts: dict[int, tuple[str, bytes, int]] = field(default_factory=dict)  # number -> (Msg_Id, payload, Msg_Fmt)


class LookupPending(Exception):
    """CMPP cannot be asked; the report window of an unsure send is still open (find_sent)."""


class CmppSender:
    name = "cmpp"

    def __init__(self, channel: CmppChannel, timeout: float) -> None:
        self.channel = channel
        self.timeout = timeout

    async def send(self, message: Outgoing) -> SendResult:
        """UCS2 free text, split into parts behind a UDH when long; each part asks for a status report. The first
        part's Msg_Id (16 hex digits) is the provider id; the parts go one after another on one session."""
        channel, account = self.channel, self.channel.account
        dest = national(message.to)
        if dest is None:
            return Failed("CMPP reaches mainland China mobile numbers only")
        try:
            contents = pdu.encode_ucs2(message.body, channel.next_ref())
        except pdu.PduError as exc:
            return Failed(f"cmpp: {exc}")
        attempt = Attempt(dest, len(contents), datetime.now(UTC))
        channel.remember_attempt(message.outbox_id, attempt)
        first: int | None = None
        link: Link | None = None
        try:
            async with asyncio.timeout(self.timeout):
                link = await channel.link_for_send()
                for number, content in enumerate(contents, 1):
                    submit = pdu.Submit(dest=dest, content=content, service_id=account.service_id,
                                        src_id=account.src_id, msg_src=account.sp_id,
                                        tp_udhi=1 if len(contents) > 1 else 0, pk_total=len(contents),
                                        pk_number=number)
                    async with link.window:
                        future = link.submit(submit)
                        attempt.futures.append(future)
                        resp = await asyncio.shield(future)
                    if resp is None:
                        return Unsure(f"cmpp: the session ended before SUBMIT_RESP ({link.why})")
                    if resp.result != 0:
                        return _refused(resp.result, number, len(contents))
                    channel.note_ours(resp.msg_id, first)
                    if first is None:
                        first = resp.msg_id
        except LinkDown as exc:  # this part was not written; any before it were answered
            if attempt.futures:
                return Retry(f"cmpp: the session ended after part {len(attempt.futures)} of {len(contents)}; the "
                             f"whole text goes again ({exc})")
            return Retry(f"cmpp: not logged in to the gateway ({exc})")
        except TimeoutError:
            if any(not f.done() or f.result() is None for f in attempt.futures):
                return Unsure(f"cmpp: no SUBMIT_RESP within {self.timeout:g} s")
            if attempt.futures:
                return Retry(f"cmpp: part {len(attempt.futures) + 1} of {len(contents)} waited {self.timeout:g} s "
                             f"for the send window; the whole text goes again")
            if link is None:
                return Retry(f"cmpp: not logged in to the gateway ({channel.why_down()})")
            return Retry(f"cmpp: the send window stayed full for {self.timeout:g} s")
        assert first is not None
        return Sent(pdu.msg_id_text(first))

    async def find_sent(self, message: Outgoing, since: datetime) -> str | None:
        """CMPP has no look-up, so an unsure send is settled by what this process saw of it, or by waiting:
        1. a SUBMIT_RESP that came after the send gave up: its Msg_Id (every part accepted) or None (a part was
           refused or never written: sending again is what gets the whole text there);
        2. a status report that came after the send began, to that number, submitted since, for a Msg_Id no send
           here was given (the answer the cut session lost): its Msg_Id (the outbox then applies the report it
           kept);
        3. otherwise, until `report_window` has passed since the attempt, LookupPending (the sender keeps the
           message unsure and asks again at its next backoff); after it, None: sent again."""
        channel = self.channel
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        attempt = channel.attempts.get(message.outbox_id)
        if attempt is not None:
            verdict, provider_id = attempt.verdict()
            if verdict == "sent":
                return provider_id
            if verdict == "resend":
                return None
            found = channel.claim_report(attempt, since)
            if found is not None:
                return found
        waited = datetime.now(UTC) - since
        if waited < timedelta(seconds=channel.timing.report_window):
            raise LookupPending(f"no answer and no status report yet; sent again after "
                                f"{channel.timing.report_window:g} s")
        return None

    async def close(self) -> None:
        return None  # the channel owns the sessions


def _refused(result: int, number: int, total: int) -> SendResult:
    label = pdu.SUBMIT_RESULT.get(result, pdu.OTHER_ERROR)
    retry = result == pdu.FLOW_CONTROL
    where = f" (part {number} of {total}{'; the whole text goes again' if retry else ''})" if total > 1 else ""
    text = f"cmpp SUBMIT_RESP Result {result} ({label}){where}"
    return Retry(text) if retry else Failed(text)


class CmppChannel:
    """A carrier's gateway over CMPP. `start()` (serve) keeps one session logged in, reconnecting with backoff;
    without it (tick) a send opens a short session of its own, closed by close()."""

    name = "cmpp"
    answers_inline = False  # a DELIVER is answered with DELIVER_RESP: replies go out as SUBMITs from the outbox

    def __init__(self, account: Account, send_timeout: float, timing: Timing | None = None) -> None:
        self.account = account
        self.timing = timing or Timing()
        self.sender = CmppSender(self, send_timeout)
        self.handlers: SmsHandlers | None = None
        self.short_limit = max(1, account.max_connections - 1)  # one stays for serve's session
        self.attempts: OrderedDict[int, Attempt] = OrderedDict()
        self._started = False
        self._closing = False
        self._failing = False  # serve's last login attempt failed: sends do not wait for the next one
        self._keeper: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._link: Link | None = None  # serve's session, while logged in
        self._short: list[Link] = []
        self._short_lock = asyncio.Lock()
        self._state = "down: not logged in yet"
        self._logged: str | None = None
        self._inbox: asyncio.Queue[tuple[Link, int, pdu.Deliver]] = asyncio.Queue()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._ours: OrderedDict[str, None] = OrderedDict()
        self._later_parts: OrderedDict[str, None] = OrderedDict()  # a long text's status follows its first part
        self._short_failure: tuple[float, str] | None = None  # when a short session's login last failed, and why
        self._unmatched: deque[Unmatched] = deque(maxlen=UNMATCHED)
        self._assemblies: dict[tuple[str, int, int], Assembly] = {}
        self._ref = random.randrange(256)
        self._told_unanswerable = False

    # --- the seam -------------------------------------------------------------------------------------------
    def routes(self, router: web.UrlDispatcher, handlers: SmsHandlers) -> None:
        """No webhooks: replies and reports come as DELIVERs on the sessions; they are handed to `handlers`."""
        self.handlers = handlers

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._keeper = asyncio.create_task(self._keep(), name="cmpp-keeper")

    def why_down(self) -> str:
        return self._state.removeprefix("down: ")

    def health(self) -> str | None:
        if not self._started:
            return None
        link = self._link
        return "ok" if link is not None and link.alive else self._state

    async def close(self) -> None:
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        links = [link for link in (self._link, *self._short) if link is not None]
        self._link, self._short = None, []
        self._state = "down: closed"
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self.sender.close()

    # --- sessions -------------------------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        """Logged once per change, never per retry."""
        self._state = state
        if state == self._logged:
            return
        self._logged = state
        a = self.account
        if state == "ok":
            log.info("CMPP: logged in to %s:%d as SP %s (CMPP %s)", a.host, a.port, a.sp_id,
                     "3.0" if a.version == pdu.V3 else "2.0")
        else:
            log.warning("CMPP: %s; retrying with backoff", state.removeprefix("down: "))

    async def _login(self, kind: str) -> Link:
        return await Link.open(self.account, self.timing, self._on_deliver, kind)

    async def _keep(self) -> None:
        """serve's session: logged in again whenever it ends, at most one attempt a `backoff_min`, doubling the
        pause after each failure up to `backoff_max`."""
        loop = asyncio.get_running_loop()
        delay = self.timing.backoff_min
        while not self._closing:
            tried = loop.time()
            try:
                link = await self._login("long")
            except LinkDown as exc:
                self._failing = True
                self._set_state(f"down: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.timing.backoff_max)
                continue
            delay = self.timing.backoff_min
            self._failing = False
            self._link = link
            self._set_state("ok")
            await link.closed.wait()
            self._link = None
            self._set_state(f"down: {link.why}")
            await asyncio.sleep(max(self.timing.backoff_min - (loop.time() - tried), 0.0))

    async def link_for_send(self) -> Link:
        """serve's session (waiting up to `ready_wait` while it logs in, unless its last attempt failed), else a
        short session of this process (at most `short_limit` of them). LinkDown when there is none."""
        if self._started:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timing.ready_wait
            while True:
                link = self._link
                if link is not None and link.alive:
                    return link
                left = deadline - loop.time()
                if left <= 0 or self._closing or self._failing:
                    raise LinkDown(self.why_down())
                await asyncio.sleep(min(left, 0.05))
        async with self._short_lock:
            if self._closing:
                raise LinkDown("the channel is closed")
            self._short = [link for link in self._short if link.alive]
            free = [link for link in self._short if not link.window.locked()]
            if free:
                return min(free, key=lambda link: link.inflight)
            if len(self._short) < self.short_limit:
                now = asyncio.get_running_loop().time()
                if self._short_failure and now - self._short_failure[0] < self.timing.backoff_min:
                    raise LinkDown(self._short_failure[1])  # at most one attempt a `backoff_min`
                try:
                    link = await self._login("short")
                except LinkDown as exc:
                    self._short_failure = (asyncio.get_running_loop().time(), str(exc))
                    self._set_state(f"down: {exc}")
                    raise
                self._short_failure = None
                self._set_state("ok")
                self._short.append(link)
                return link
            return min(self._short, key=lambda link: link.inflight)

    def next_ref(self) -> int:
        self._ref = (self._ref + 1) % 256
        return self._ref

    def remember_attempt(self, outbox_id: int, attempt: Attempt) -> None:
        self.attempts[outbox_id] = attempt
        self.attempts.move_to_end(outbox_id)
        while len(self.attempts) > ATTEMPTS:
            self.attempts.popitem(last=False)

    def note_ours(self, msg_id: int, first: int | None) -> None:
        """A Msg_Id a SUBMIT of ours was given; `first`: the first part's, when this is a later part."""
        text = pdu.msg_id_text(msg_id)
        _remember(self._ours, text, OURS)
        if first is not None:
            _remember(self._later_parts, text, OURS)

    def claim_report(self, attempt: Attempt, since: datetime) -> str | None:
        """The first unclaimed report of an unknown Msg_Id to the attempt's number, received after it began and
        submitted (Submit_time, to the minute) at or after `since`."""
        floor = min(since, attempt.started).astimezone(pdu.BEIJING).strftime("%y%m%d%H%M")
        for report in self._unmatched:
            if (not report.claimed and report.phone == attempt.dest and report.received >= attempt.started
                    and report.submit_time >= floor):
                report.claimed = True
                return report.msg_id
        return None

    # --- what the gateway delivers ------------------------------------------------------------------------------
    def _on_deliver(self, link: Link, seq: int, deliver: pdu.Deliver) -> None:
        """Taken one at a time, in arrival order, by one worker: the reader goes on answering heartbeats and
        SUBMIT_RESPs meanwhile."""
        self._inbox.put_nowait((link, seq, deliver))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="cmpp-deliver")

    async def _work(self) -> None:
        while True:
            link, seq, deliver = await self._inbox.get()
            try:
                await self._take(link, seq, deliver)
            except Exception:
                log.exception("CMPP: a DELIVER could not be acted on; left unanswered, the gateway sends it again")

    async def _take(self, link: Link, seq: int, deliver: pdu.Deliver) -> None:
        handlers = self.handlers
        if handlers is None:  # a tick's session: this process does not act on replies; serve's will get it again
            if not self._told_unanswerable:
                self._told_unanswerable = True
                log.info("CMPP: a DELIVER came to a process that does not take replies (a tick); left unanswered "
                         "for the gateway to deliver again")
            return
        mid = pdu.msg_id_text(deliver.msg_id)
        if mid in self._seen:  # the gateway's repeat: answered again, acted on once
            link.answer_deliver(seq, deliver.msg_id)
            return
        if deliver.registered_delivery == 1:
            await self._take_report(link, seq, deliver, handlers, mid)
        else:
            await self._take_reply(link, seq, deliver, handlers, mid)

    async def _take_report(self, link: Link, seq: int, deliver: pdu.Deliver, handlers: SmsHandlers,
                           mid: str) -> None:
        try:
            report = pdu.Report.decode(deliver.content)
        except pdu.PduError as exc:
            log.warning("CMPP: a status report that cannot be read (%s) answered with Result 1", exc)
            link.answer_deliver(seq, deliver.msg_id, pdu.DELIVER_BAD_STRUCTURE)
            return
        stat = clean(report.stat).strip()
        provider_id = pdu.msg_id_text(report.msg_id)
        if provider_id in self._later_parts:  # a long text's status is its first part's
            _remember(self._seen, mid, SEEN)
            link.answer_deliver(seq, deliver.msg_id)
            return
        await handlers.receipt(Receipt(provider_id, receipt_status(stat),
                                       None if stat == "DELIVRD" else stat[:ERROR_CODE_MAX] or None, False,
                                       handlers.now()))
        if provider_id not in self._ours:
            phone = phone_of(report.dest_terminal_id)
            self._unmatched.append(Unmatched(national(phone) if phone else report.dest_terminal_id,
                                             report.submit_time, provider_id, datetime.now(UTC)))
        _remember(self._seen, mid, SEEN)
        link.answer_deliver(seq, deliver.msg_id)

    async def _take_reply(self, link: Link, seq: int, deliver: pdu.Deliver, handlers: SmsHandlers,
                          mid: str) -> None:
        sender = phone_of(deliver.src_terminal_id)
        if sender is None:
            log.info("CMPP: a reply from %s, not a mobile number we can text: not acted on",
                     mask_phone("+" + deliver.src_terminal_id.strip().removeprefix("+")))
            _remember(self._seen, mid, SEEN)
            link.answer_deliver(seq, deliver.msg_id)
            return
        payload, fmt, ids = deliver.content, deliver.msg_fmt, [mid]
        if deliver.tp_udhi:
            try:
                concat, payload = pdu.split_udh(deliver.content)
            except pdu.PduError as exc:
                log.warning("CMPP: a reply whose UDH cannot be read (%s) answered with Result 1", exc)
                link.answer_deliver(seq, deliver.msg_id, pdu.DELIVER_BAD_STRUCTURE)
                return
            key = (sender, concat.ref, concat.total) if concat and concat.total > 1 else None
            if key is not None and concat is not None:
                assembly = self._assembly(key)
                assembly.parts.setdefault(concat.number, (mid, payload, deliver.msg_fmt))
                if len(assembly.parts) < concat.total:
                    link.answer_deliver(seq, deliver.msg_id)  # kept until the rest arrives
                    return
                ordered = [assembly.parts[n] for n in range(1, concat.total + 1)]
                ids = [part[0] for part in ordered]
                payload, fmt = b"".join(part[1] for part in ordered), ordered[0][2]
        else:
            key = None
        text = pdu.decode_text(fmt, payload)
        await handlers.message(Inbound(channel="sms", address=sender, text=text or "", message_id=ids[0],
                                       received_at=handlers.now(), kind="text" if text is not None else "media"))
        if key is not None:
            self._assemblies.pop(key, None)
        for part_id in ids:
            _remember(self._seen, part_id, SEEN)
        link.answer_deliver(seq, deliver.msg_id)

    def _assembly(self, key: tuple[str, int, int]) -> Assembly:
        now = asyncio.get_running_loop().time()
        for stale in [k for k, a in self._assemblies.items() if now - a.started > self.timing.reassembly]:
            dropped = self._assemblies.pop(stale)
            log.warning("CMPP: a long reply from %s lost: %d of %d parts came within %g s", mask_phone(stale[0]),
                        len(dropped.parts), stale[2], self.timing.reassembly)
        return self._assemblies.setdefault(key, Assembly(now))
