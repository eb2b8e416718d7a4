"""The 12345 after-call rating on Asterisk: a FastAGI server that drives the service's JSON keypad dialog.

Asterisk hands the caller to this server once the agent has hung up (the dialplan below); the server starts the
call's rating (`POST /api/v1/hotline/calls`), speaks each answer's prompts (or plays the centre's recordings),
collects the keys with `GET DATA` and posts them back until the dialog is done. Nothing is stored here: the service
keeps the call, answers a retried step the same way and stores the rating once.

    pip install panoramisk==1.4 aiohttp
    HAOCHAPING_URL=https://haochaping.example.gov.cn HAOCHAPING_API_TOKEN=… python asterisk_fastagi.py 0.0.0.0 4573

extensions.conf (the agent's queue, then the survey; `g` continues the caller's leg after the agent hangs up):

    [from-12345]
    exten => 12345,1,Set(HCP_TICKET=${PJSIP_HEADER(read,X-Ticket)})
     same => n,Dial(PJSIP/agents,,g)
     same => n,AGI(agi://127.0.0.1:4573/hcp_survey,${HCP_TICKET})
     same => n,Hangup()

Text-to-speech goes through UniMRCP's `MRCPSynth` (the usual way to a Chinese voice on Asterisk); a prompt the
policy names a recording of ([hotline.recordings]) is played from Asterisk's sounds instead, without its extension.
Set SYNTH_APP to another application taking the text as its argument if the centre uses one.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import aiohttp
from panoramisk.fast_agi import Application, Request

ROUTE = "hcp_survey"
SYNTH_APP = os.environ.get("SYNTH_APP", "MRCPSynth")


class HungUp(Exception):
    """The caller hung up: the rating is left unfinished, and the service stores nothing of it."""


async def command(request: Request, line: str) -> dict[str, Any]:
    result = await request.send_command(line)
    if result.get("error") in ("AGIResultHangup", "AGIAppError"):
        raise HungUp(line)
    return result


async def say(request: Request, prompt: dict[str, Any]) -> None:
    if prompt.get("audio"):
        await command(request, f'STREAM FILE {os.path.splitext(prompt["audio"])[0]} ""')
    else:
        text = prompt["text"].replace('"', "'")
        await command(request, f'EXEC {SYNTH_APP} "{text}"')


async def collect(request: Request, ask: dict[str, Any]) -> str:
    """The keys, or "" for a time-out. GET DATA ends at # by itself and leaves it out."""
    result = await command(request, f"GET DATA silence/1 {int(ask['timeout_s']) * 1000} {int(ask['max_digits'])}")
    value = result.get("result", ("", ""))[0]
    return "".join(ch for ch in value if ch in "0123456789*")


async def survey(request: Request, base_url: str, token: str) -> None:
    headers = request.headers
    call = {"call_id": headers.get("agi_uniqueid", "").replace(" ", ""), "caller": headers.get("agi_callerid", "")}
    if headers.get("agi_arg_1"):
        call["ticket"] = headers["agi_arg_1"]
    async with aiohttp.ClientSession(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.post("/api/v1/hotline/calls", json=call) as resp:
            resp.raise_for_status()
            answer = await resp.json()
        try:
            while True:
                for prompt in answer["prompts"]:
                    await say(request, prompt)
                if answer["done"]:
                    break
                digits = await collect(request, answer["ask"])
                async with http.post(f"/api/v1/hotline/calls/{call['call_id']}/keys",
                                     json={"digits": digits, "step": answer["step"]}) as resp:
                    resp.raise_for_status()
                    answer = await resp.json()
        except HungUp:
            return
    await request.send_command("HANGUP")


def application(base_url: str, token: str) -> Application:
    """The FastAGI application (inside a running event loop: panoramisk takes the loop it runs on)."""
    app = Application(loop=asyncio.get_running_loop())

    async def route(request: Request) -> None:
        await survey(request, base_url, token)

    app.add_route(ROUTE, route)
    return app


async def main(host: str, port: int) -> None:
    app = application(os.environ["HAOCHAPING_URL"].rstrip("/"), os.environ["HAOCHAPING_API_TOKEN"])
    server = await asyncio.start_server(app.handler, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1",
                     int(sys.argv[2]) if len(sys.argv) > 2 else 4573))
