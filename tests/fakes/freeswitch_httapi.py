"""A stand-in for FreeSWITCH's mod_httapi running one call: it makes the requests mod_httapi makes and runs the
documents it is answered with as mod_httapi runs them, refusing what mod_httapi would refuse.

Learnt from FreeSWITCH's source (signalwire/freeswitch, src/mod/applications/mod_httapi/mod_httapi.c: httapi_sync,
parse_xml, parse_playback, my_on_reporting; docs/mod_httapi_doc.txt):
- a request carries the session's params: `session_id` first, `hostname`, `url`, the `{…}` params of the
  dialplan's data, the caller profile as `Caller-*`, the `<params>` of earlier documents (kept for the whole call),
  and once: the digits a binding matched under the tag's `name` (default `dialed_digits`) with `input_type=dtmf`;
  after the call has ended (a `<hangup>`, or the caller hanging up) one more request carries `exiting=true`.
  httapi_sync puts them in the URL's query string (switch_event_build_param_string, appended after `?` or `&`)
  unless a file is attached (then a multipart form), and sends the profile's `method` as the request's method
  (CURLOPT_CUSTOMREQUEST, here POST) with no body;
- the answer must be 200 with a content type holding `text/xml`, else the application stops; its `<params>`
  children are set into the params, and the tags of `<work>` run in order until one fails: an unknown tag, a
  `speak` without `engine`, a `playback` without `file`, a `<hangup>` (which ends the call), or a `<break>`;
  a document with no instruction at all stops it too;
- a tag with `<bind>` children collects keys after its prompt: a bind whose text starts with `~` is a regular
  expression over the keys, otherwise the exact keys; the matched keys lose the bind's `strip` characters; a caller
  who presses nothing until `input-timeout` gives nothing, and the work goes on with the next tag (then the next
  request, without digits).

The caller is scripted: `keys` gives, one per collecting tag, the keys pressed ("" or None: silence). What was said
and played is kept per request, in order, for the test to read.
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

KNOWN_TAGS = {"playback", "speak", "say", "pause", "vmname", "record", "execute", "sms", "dial", "recordCall",
              "conference", "hangup", "break", "log", "continue", "getVar", "voicemail"}


class Refused(AssertionError):
    """What mod_httapi would not run (it logs an error and leaves the application)."""


@dataclass
class Step:
    status: int
    document: ET.Element | None
    said: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    collected: str | None = None  # the keys submitted after this document, if any


@dataclass
class HttapiCall:
    client: Any  # an aiohttp client (the test client of the app)
    path: str
    caller: str = "13800138000"
    data_params: dict[str, str] = field(default_factory=dict)  # the dialplan's {…} params
    user: str = "freeswitch"
    password: str | None = None  # gateway-credentials' password (basic auth); None: no credentials
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    steps: list[Step] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    hung_up: bool = False

    def __post_init__(self) -> None:
        self.params: dict[str, str] = {"hostname": "fs-12345-01", "url": self.path, **self.data_params,
                                       "Caller-Caller-ID-Number": self.caller, "Caller-Destination-Number": "12345",
                                       "Caller-Unique-ID": self.session_id, "Caller-Direction": "inbound"}

    async def run(self, keys: list[str | None], max_requests: int = 20) -> list[Step]:
        """The call from the first request to the exiting one (or until the service answers other than 200)."""
        pending = list(keys)
        once: dict[str, str] = {}
        for _ in range(max_requests):
            step = await self._request(once)
            once = {}
            if step.status != 200 or step.document is None:
                return self.steps
            ended = self._work(step, pending, once)
            if ended:
                self.hung_up = True
                await self._request({"exiting": "true"})
                return self.steps
        raise AssertionError(f"the call did not end within {max_requests} requests")

    async def _request(self, once: dict[str, str]) -> Step:
        form = {"session_id": self.session_id, **self.params, **once}
        self.requests.append(form)
        headers = {}
        if self.password is not None:
            creds = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {creds}"
        resp = await self.client.post(self.path, params=form, headers=headers)  # the params in the query string
        text = await resp.text()
        step = Step(resp.status, None)
        if resp.status == 200:
            if "text/xml" not in resp.headers.get("Content-Type", ""):
                raise Refused(f"content type {resp.headers.get('Content-Type')!r}: mod_httapi needs text/xml")
            root = ET.fromstring(text)
            if root.tag != "document" or root.get("type") != "xml/freeswitch-httapi":
                raise Refused(f"not an xml/freeswitch-httapi document: {text[:200]}")
            step.document = root
        self.steps.append(step)
        return step

    def _work(self, step: Step, pending: list[str | None], once: dict[str, str]) -> bool:
        """Run one document; True when the call ended (a hangup)."""
        assert step.document is not None
        for param in step.document.findall("params/*"):
            self.params[param.tag] = param.text or ""
        work = step.document.find("work")
        if work is None or not list(work):
            raise Refused("no instructions found in the result")
        for tag in work:
            if tag.tag not in KNOWN_TAGS:
                raise Refused(f"unsupported tag <{tag.tag}>")
            if tag.tag == "hangup":
                return True
            if tag.tag == "break":
                raise Refused("<break> leaves the application before the rating is done")
            if tag.tag in ("speak", "playback"):
                self._prompt(step, tag, pending, once)
        return False

    def _prompt(self, step: Step, tag: ET.Element, pending: list[str | None], once: dict[str, str]) -> None:
        binds = tag.findall("bind")
        for name in ("input-timeout", "digit-timeout"):
            value = tag.get(name)
            if value is not None and (not value.isdigit() or int(value) <= 0):
                raise Refused(f"invalid {name} {value!r}")
        if tag.tag == "speak":
            if not tag.get("engine"):
                raise Refused("speak: missing engine attribute")
            text = tag.get("text") or tag.get("file") or (tag.text or "").strip()
            if not text:
                raise Refused("speak: no text")
            step.said.append(text)
        else:
            file = tag.get("file") or ("" if binds else (tag.text or "").strip())
            if not file:
                raise Refused("missing file attribute")
            step.played.append(file)
        if not binds:
            return
        if any(not (b.text or "").strip() for b in binds):
            raise Refused("a <bind> without digits")
        if not pending:
            raise AssertionError(f"the service asks for keys again ({step.said or step.played}); the script has none")
        pressed = pending.pop(0)
        if not pressed:
            return  # silence until input-timeout: nothing submitted, the work goes on
        for bind in binds:
            pattern = (bind.text or "").strip()
            matched = re.fullmatch(pattern[1:], pressed) if pattern.startswith("~") else pressed == pattern
            if matched:
                digits = pressed
                for ch in bind.get("strip") or "":
                    digits = digits.split(ch, 1)[0]
                once[tag.get("name") or "dialed_digits"] = digits
                once["input_type"] = "dtmf"
                step.collected = digits
                return
        # no binding matched: mod_httapi's no-match, which without an error-file submits nothing
