"""A stand-in for Asterisk calling a FastAGI server: it sends the AGI environment and answers each command as
Asterisk answers it, with a scripted caller's keys.

The protocol, as Asterisk documents it (AGI, "Asterisk Gateway Interface"; res_agi's command documentation):
Asterisk connects to `agi://host:port/<script>`, sends `agi_<name>: <value>` lines (agi_network_script is the
path, agi_uniqueid the channel's id, agi_callerid the caller's number, agi_arg_1… the dialplan's arguments) and a
blank line; then the script writes one command a line, and Asterisk answers each with one line: `200 result=0`
(STREAM FILE adds ` endpos=<sample>`, EXEC the application's return), GET DATA `200 result=<digits>` with the keys
pressed up to its maximum or `#` (which it leaves out), or `200 result= (timeout)` when none came in time, or
`200 result=-1` when the caller hung up; `HANGUP` is `200 result=1`. An unknown command is `510 Invalid or unknown
command`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class FakeAsterisk:
    port: int
    uniqueid: str
    callerid: str
    args: list[str] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)  # per GET DATA: the keys ("13#"), None: a time-out
    hang_up_at_get_data: int | None = None  # the caller hangs up at this GET DATA (0 = the first)
    commands: list[str] = field(default_factory=list)

    async def call(self, script: str = "hcp_survey") -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        env = {"agi_network": "yes", "agi_network_script": script,
               "agi_request": f"agi://127.0.0.1:{self.port}/{script}", "agi_channel": "PJSIP/caller-00000001",
               "agi_language": "zh", "agi_type": "PJSIP", "agi_uniqueid": self.uniqueid, "agi_version": "20.5.0",
               "agi_callerid": self.callerid, "agi_calleridname": "unknown", "agi_context": "from-12345",
               "agi_extension": "12345", "agi_priority": "3", "agi_enhanced": "0.0", "agi_accountcode": "",
               **{f"agi_arg_{i}": value for i, value in enumerate(self.args, start=1)}}
        writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        await writer.drain()
        get_data = 0
        try:
            while line := (await reader.readline()).decode().rstrip("\n"):
                self.commands.append(line)
                verb = line.split(" ", 2)
                if line == "HANGUP":
                    answer = "200 result=1"
                elif verb[:2] == ["GET", "DATA"]:
                    if self.hang_up_at_get_data == get_data:
                        answer = "200 result=-1"
                    else:
                        pressed = self.keys[get_data] if get_data < len(self.keys) else None
                        answer = "200 result= (timeout)" if not pressed else f"200 result={pressed.split('#')[0]}"
                    get_data += 1
                elif verb[:2] == ["STREAM", "FILE"]:
                    answer = "200 result=0 endpos=8000"
                elif verb[0] == "EXEC":
                    answer = "200 result=0"
                else:
                    answer = "510 Invalid or unknown command"
                writer.write(answer.encode() + b"\n")
                await writer.drain()
                if line == "HANGUP" or answer == "200 result=-1":
                    break
        finally:
            writer.close()
