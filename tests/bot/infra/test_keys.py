"""The state's keys (bot/infra/keys.py): each builder in its own namespace, so that two features never share
a key (aiogram's one key builder is the model: fsm/storage/base.py)."""

from __future__ import annotations

import inspect

from bot.infra import keys

SAMPLES = {
    keys.inbound_seen: ("sms", "SM1"), keys.console_session: ("s1",),
    keys.idempotency: ("api", "k1"), keys.rating_form: (7, "tok"), keys.simulation: ("x1",),
    keys.wechat_signed: ("sig",), keys.login_pair: ("p",), keys.login_known: ("p",), keys.login_budget: ("1.2.3.4", 9),
}


def test_every_builder_is_sampled_and_every_namespace_used() -> None:
    builders = {f for _name, f in inspect.getmembers(keys, inspect.isfunction) if f.__module__ == keys.__name__}
    assert builders == set(SAMPLES)
    assert {f(*args).split(":")[0] for f, args in SAMPLES.items()} == set(keys.NAMESPACES)


def test_no_two_builders_make_the_same_key() -> None:
    made = [f(*args) for f, args in SAMPLES.items()]
    prefixes = [":".join(k.split(":")[:2]) if k.startswith(("login:", "console:", "wechat:")) else k.split(":")[0]
                for k in made]
    assert len(set(made)) == len(made) and len(set(prefixes)) == len(prefixes), made
