"""Handling types (办件类型) and who a rating of each rates (Shantou art. 9, 22, 27–30, 32).

The business system says how a case was handled in `kind`; the kind decides who a rating is about,
because Shantou rates the clerk (窗口人员) only where the applicant met one, and the agency (政务服务机构)
everywhere but a hall consultation:

| kind | handling | rated (art.) |
| --- | --- | --- |
| `instant` | 即办件, served on the spot | the clerk and the agency (27) |
| `promised` | 承诺件, served later | the clerk and the agency (28); the clerk at each window visit (22) |
| `joint` | 联办件, several agencies approve together | the clerk and every agency involved (29); as `promised` |
| `online` | 全程网办, online from end to end | the agency only (9, 30) |
| `consult` | 查询咨询, a query or consultation | online: nobody; in a hall: the clerk (32) |

No kind at all is read as `instant`, the contract's behaviour before kinds mattered. A good rating
counts for every target (art. 27–30: “好评”结果同时作为窗口人员和政务服务机构的评价结果); a bad one is
the lead agency's work order, naming the clerk when the reasons concern the clerk (or always, for a hall
consultation, where only the clerk is rated) and listing the other agencies involved in a joint case
(art. 29: 列出涉及“差评”关联的政务服务机构).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

Kind = Literal["instant", "promised", "joint", "online", "consult"]
KINDS: tuple[str, ...] = ("instant", "promised", "joint", "online", "consult")


def online_consultation(kind: str | None, hall_code: str | None, staff_id: str | None) -> bool:
    """A consultation answered online (查询咨询类业务在线上办结, Shantou art. 32): no hall and no clerk.

    It needs no rating: it is never reminded nor defaulted, and it is not among the cases that should be
    rated (the participation rate's base) unless the person rated it anyway.
    """
    return kind == "consult" and not hall_code and not staff_id


def rates_clerk(kind: str | None, staff_id: str | None) -> bool:
    """Whether a rating of the case is also the clerk's: never for 全程网办 (art. 9, 30), which has none."""
    return bool(staff_id) and kind != "online"


VISIT_KINDS = ("promised", "joint")


def takes_visits(kind: str | None) -> bool:
    """Whether the clerk may be rated at each window visit before the result (Shantou art. 22: 承诺件 评价人
    每次到窗口办理后均可对服务人员进行1次评价; art. 28 承诺件 and art. 29 联办件: 接受申请材料时评价窗口人员).
    An `instant` case is served in one visit and an `online` one at none: their one rating covers the clerk."""
    return kind in VISIT_KINDS


def rates_agency(kind: str | None) -> bool:
    """Whether a rating of the case is the agency's: not for a consultation, where only the clerk is
    rated in a hall (art. 32) and nobody online."""
    return kind != "consult"


def names_clerk(kind: str | None, staff_id: str | None, reasons: Iterable[str], clerk_reasons: Iterable[str]) -> bool:
    """Whether a bad review's work order names the clerk: when the case has one that is rated, and the
    reasons concern the clerk, or always in a hall consultation (only the clerk's service is rated there)."""
    if not rates_clerk(kind, staff_id):
        return False
    if kind == "consult":
        return True
    wanted = set(clerk_reasons)
    return any(r in wanted for r in reasons)


def involved(agency_code: str, agency_name: str, joint_agencies: list[dict[str, Any]] | None
             ) -> list[dict[str, str]]:
    """Every agency a joint case's rating is about: the lead (the case's own agency) first, then the others."""
    out = [{"code": agency_code, "name": agency_name}]
    out += [{"code": str(a["code"]), "name": str(a["name"])} for a in joint_agencies or []]
    return out


def targets(kind: str | None, staff_id: str | None, hall_code: str | None, agency_code: str, agency_name: str,
            joint_agencies: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Who a rating of the case rates, as the case's JSON shows it (`rated`: whether it takes one at all)."""
    if online_consultation(kind, hall_code, staff_id):
        return {"rated": False, "clerk": False, "agencies": []}
    agencies = involved(agency_code, agency_name, joint_agencies) if rates_agency(kind) else []
    return {"rated": True, "clerk": rates_clerk(kind, staff_id), "agencies": agencies}
