"""FreeSWITCH as the 12345 centre's switch: the after-call keypad rating through mod_httapi (httapi.py).

A dialplan hands the caller to `httapi` once the agent hangs up; mod_httapi then asks the service what to do, step
by step, and the service answers with xml/freeswitch-httapi documents that speak (or play a centre's recording)
and collect keys. The dialog behind them is the JSON keypad dialog's (bot/inbound/ivr.py), keyed by the channel's
uuid, so FreeSWITCH needs nothing of ours but the URL and a secret (FREESWITCH_HTTAPI_TOKEN).
"""
