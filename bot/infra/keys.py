"""Every key the shared state holds (bot/infra/state.py: Redis, or memory on the embedded defaults), built here
and nowhere else, each builder in a namespace of its own: a change of shape, a prefix or a collision between
two features is found in this one file. The state adds the deployment's prefix (HAOCHAPING_REDIS_PREFIX) and
its own kind (`lock:`, `val:`, `hits:`) in front.

The outbox's and the reports' dedupe keys are database keys (unique columns), not state: they stay with the rows
they guard."""

from __future__ import annotations

NAMESPACES = ("in", "console", "idem", "form", "sim", "wechat", "login")


def inbound_seen(channel: str, message_id: str) -> str:
    """A provider's message id answered already, for a message that found no conversation (a stranger's): the
    others' ids are kept in their conversation row (bot/inbound/conversation.py)."""
    return f"in:{channel}:{message_id}"


def console_session(sid: str) -> str:
    return f"console:session:{sid}"


def idempotency(scope: str, given: str) -> str:
    """The stored answer to a request with an Idempotency-Key, per credential."""
    return f"idem:{scope}:{given}"


def rating_form(case_id: int, token: str) -> str:
    """A rating page's form posted once with its link's token (a copy sent at the same moment waits, then finds
    it used)."""
    return f"form:{case_id}:{token}"


def simulation(sim_id: str) -> str:
    return f"sim:{sim_id}"


def wechat_signed(signature: str) -> str:
    """A signed WeChat query seen already (a replayed signature)."""
    return f"wechat:signed:{signature}"


def login_pair(pair: str) -> str:
    """The failures of one user name from one address: the gate that slows them."""
    return f"login:pair:{pair}"


def login_known(pair: str) -> str:
    """A user name and address that logged in before: not charged to the address's budget."""
    return f"login:known:{pair}"


def login_budget(where: str, window: int) -> str:
    """An address's failures in one window, whatever the names tried."""
    return f"login:addr:{where}:{window}"
