"""mod_httapi's side of the after-call rating: what its requests carry, and the documents it takes.

As FreeSWITCH's own source has it (src/mod/applications/mod_httapi/mod_httapi.c and docs/mod_httapi_doc.txt, in
signalwire/freeswitch): each request carries the session's params in its query string (httapi_sync appends them
to the URL; only a request with a file attached is a multipart form), its method the profile's `method` (GET by
default; POST with no body when the profile or the app data says `method=POST`). The params are `session_id` (the
channel's uuid, or HTTAPI_SESSION_ID), `hostname`, `url`, the `{…}` params of the dialplan's `httapi` data (ours:
`ticket`, `tts_engine`, `tts_voice`), the caller profile as `Caller-*` fields (`Caller-Caller-ID-Number`), the
`<params>` of our last document (ours: `hcp_step`, mirrored back), and once: the digits a binding matched under
the tag's `name` with `input_type=dtmf` (none when the caller stayed silent), and `exiting=true` on the request
made after the call has ended. The answer must be 200 `text/xml`, a `<document type="xml/freeswitch-httapi">`
whose `<work>` holds the tags to run: `speak` (text-to-speech: `engine` required, `voice`, the text), `playback`
(a `file`), each taking `<bind>` children whose text is a dmachine pattern (`~` and a regular expression), `name`,
`input-timeout` and `digit-timeout` in milliseconds, and `hangup`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DOCUMENT_TYPE = "xml/freeswitch-httapi"
DIGITS_NAME = "hcp_digits"  # the param the collected keys come back as
STEP_PARAM = "hcp_step"  # the step of our last answer, set by <params> and mirrored back by mod_httapi
DEFAULT_TTS_ENGINE = "unimrcp"  # a Chinese voice is usually an MRCP server's (mod_unimrcp); the dialplan may say
ONE_KEY = "~[0-9*#]"
KEYS_THEN_HASH = "~[0-9*]+#"
INTER_DIGIT_MS = 5000  # between the reasons' keys (mod_httapi's default, 1500 ms, is short for several choices)
CALLER = "Caller-Caller-ID-Number"


@dataclass(frozen=True, slots=True)
class Request:
    session_id: str
    caller: str
    ticket: str | None
    digits: str | None  # None: no keys came (silence, or the first request)
    step: int | None  # None: the first request of the call
    exiting: bool
    tts_engine: str
    tts_voice: str


class BadRequest(ValueError):
    """A request mod_httapi would not make: 400, nothing acted on."""


def parse(form: Mapping[str, str]) -> Request:
    session_id = (form.get("session_id") or "").strip()
    if not session_id:
        raise BadRequest("session_id is required (mod_httapi sends the channel's uuid)")
    raw_step = form.get(STEP_PARAM)
    step: int | None = None
    if raw_step:
        if not raw_step.isdigit() or not 1 <= int(raw_step) <= 1000:
            raise BadRequest(f"{STEP_PARAM}: expected the step number this service wrote, got {raw_step[:20]!r}")
        step = int(raw_step)
    digits = form.get(DIGITS_NAME)
    if form.get("input_type", "dtmf") != "dtmf":  # "invalid" or "detected_speech": no keys to read
        digits = None
    ticket = (form.get("ticket") or "").strip() or None
    return Request(session_id=session_id, caller=(form.get(CALLER) or "").strip(), ticket=ticket, digits=digits,
                   step=step, exiting=(form.get("exiting") or "").lower() == "true",
                   tts_engine=(form.get("tts_engine") or "").strip() or DEFAULT_TTS_ENGINE,
                   tts_voice=(form.get("tts_voice") or "").strip())


def document(answer: Mapping[str, Any], *, tts_engine: str, tts_voice: str) -> str:
    """One step of the JSON keypad dialog (bot/inbound/ivr.py `answer`) as mod_httapi's work: every prompt spoken
    (or its recording played), the last one collecting what the step asks for; or, when the dialog is done, the
    prompts and a hang-up."""
    root = ET.Element("document", type=DOCUMENT_TYPE)
    params = ET.SubElement(root, "params")
    ET.SubElement(params, STEP_PARAM).text = str(answer["step"])
    work = ET.SubElement(root, "work")
    prompts = list(answer["prompts"])
    ask = answer.get("ask")
    for i, prompt in enumerate(prompts):
        tag = _prompt(work, prompt, tts_engine, tts_voice)
        if ask is not None and i == len(prompts) - 1:
            _collect(tag, ask)
    if ask is None:
        ET.SubElement(work, "hangup")
    return ET.tostring(root, encoding="unicode", xml_declaration=False)


def ended() -> str:
    """The answer to the request made after the call ended (`exiting=true`): nothing more to run."""
    root = ET.Element("document", type=DOCUMENT_TYPE)
    ET.SubElement(ET.SubElement(root, "work"), "break")
    return ET.tostring(root, encoding="unicode")


def _prompt(work: ET.Element, prompt: Mapping[str, Any], tts_engine: str, tts_voice: str) -> ET.Element:
    if prompt.get("audio"):
        return ET.SubElement(work, "playback", file=str(prompt["audio"]))
    tag = ET.SubElement(work, "speak", engine=tts_engine, text=str(prompt["text"]))
    if tts_voice:
        tag.set("voice", tts_voice)
    return tag


def _collect(tag: ET.Element, ask: Mapping[str, Any]) -> None:
    """Keys after the prompt: one for a grade or a callback answer; for reasons, several ended by #, which the
    binding strips. Silence past the timeout falls through, and the next request carries no digits."""
    tag.set("name", DIGITS_NAME)
    tag.set("input-timeout", str(int(ask["timeout_s"]) * 1000))
    if ask.get("finish_on_key"):
        tag.set("digit-timeout", str(INTER_DIGIT_MS))
        ET.SubElement(tag, "bind", strip=str(ask["finish_on_key"])).text = KEYS_THEN_HASH
    else:
        ET.SubElement(tag, "bind").text = ONE_KEY
