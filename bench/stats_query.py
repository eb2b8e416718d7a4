"""Statistics: how long `GET /api/v1/stats?by=agency` takes over N cases and their evaluations.

For each size N, a fresh database (`common.config`) is seeded with N cases completed over one year
(case ids in completion order) and their ratings, written straight into the tables with COPY
(PostgreSQL) or executemany in large transactions (SQLite):
- 50 agencies of uneven size, 10 items each (500 items), ~2,000 window clerks (70 % of cases name one),
  one phone contact per case from a pool of N/5 people (at most 200,000; sealed as intake seals them);
- about 85 % of cases rated once actively, 10 % by the default grade only, 3 % a default then an
  active follow-up, 2 % an active rating and a follow-up; in the last week, 40 % not rated yet;
- active grades 70/18/7/3/2 % from very_satisfied to very_dissatisfied, on sms 45 %, wechat 25 %,
  web 15 %, phone (the 12345 keypad) 15 %; every bad active rating has a work order (60 % closed,
  the rest spread over the open steps; 7 % of closed ones excluded on appeal, which marks the rating
  excluded; a satisfied/basically satisfied callback is stored as the case's latest rating, as the
  service does). Work-order history events are not seeded (the statistics do not read them).

The seeder writes without the tables' triggers and then marks every day with cases dirty, once
(what the triggers, or migration 0006 over existing data, leave behind: one mark per change instead).
VACUUM ANALYZE (PostgreSQL) / ANALYZE (SQLite) follow. Then `haochaping serve --no-scheduler` answers:
- "stats-live": `GET /api/v1/stats?by=agency` while every day is dirty, so all of it is computed from
  the records (as right after an import or the migration, until the ticks catch up): `seconds` = the
  first (cold) answer, `p50_ms` = the second;
- then `store.stats.refresh` rebuilds the daily figures until no day is dirty, 7 days a pass as each
  tick does (its time is in the note), and
- "stats": the same request 5 times in a row: `seconds` = the first (cold: its first read of
  the daily figures), `p50_ms` = the median of the 4 others; `peak_rss_mb` = the server's VmHWM.
The notes give the seeding time and rows, one `by=item` request, and whether each answer's totals
(cases, rated, bad reviews, work orders, rectified) equal those the seeder counted ("totals ok").

    .venv/bin/python bench/stats_query.py                                  # both configurations, 1M and 10M
    .venv/bin/python bench/stats_query.py --config pg+redis --sizes 20000 --explain   # + the query's plan
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ALL_CONFIGS, CONFIGS, BulkWriter, Config, Row, config, rss_kib, serve, table

CHUNK = 100_000  # cases per write (with their evaluations and work orders)
FIRST_DAY = date(2025, 11, 21)
AGENCIES = ["公安局", "人力资源和社会保障局", "市场监督管理局", "自然资源和规划局", "住房和城乡建设局",
            "交通运输局", "卫生健康委员会", "民政局", "税务局", "医疗保障局"]
DISTRICTS = ["市本级", "东城区", "西城区", "南湖区", "北山县"]
ITEMS = ["居民身份证换领", "社会保障卡补办", "个体工商户设立登记", "不动产登记", "建筑工程施工许可",
         "道路运输证年审", "医师执业注册", "婚姻登记", "个人所得税汇算", "医保关系转移"]
GRADES = [("very_satisfied", 10, 0.70), ("satisfied", 8, 0.88), ("basically_satisfied", 6, 0.95),
          ("dissatisfied", 3, 0.98), ("very_dissatisfied", 0, 1.0)]
SCORES = {g: s for g, s, _ in GRADES}
CHANNELS = [("sms", 0.45), ("wechat", 0.70), ("web", 0.85), ("phone", 1.0)]
REASONS = ["attitude", "efficiency", "process", "guide", "trips", "platform", "fees", "other"]
OPEN_STEPS = ["created", "dispatched", "rectified", "reviewed"]
OUTCOMES = [("satisfied", 0.50), ("basically_satisfied", 0.75), ("unresolved", 0.85), ("unreachable", 0.93),
            ("excluded", 1.0)]


@dataclass
class Seeded:
    """What the seeder wrote, and the totals the statistics must find."""

    cases: int = 0
    evaluations: int = 0
    work_orders: int = 0
    contacts: int = 0
    rated: int = 0
    bad: int = 0
    counted_orders: int = 0
    rectified: int = 0
    seconds: float = 0.0
    by_table: dict[str, float] = field(default_factory=dict)


def _pick(table_: list[tuple[str, float]], r: float) -> str:
    for value, upto in table_:
        if r < upto:
            return value
    return table_[-1][0]


def _grade(rng: random.Random) -> str:
    r = rng.random()
    for grade, _score, upto in GRADES:
        if r < upto:
            return grade
    return GRADES[-1][0]


class Generator:
    """Cases, evaluations and work orders for case numbers [start, end) of n, with explicit ids."""

    def __init__(self, n: int, timing: Any, tz: Any, seeded: Seeded) -> None:
        self.n, self.timing, self.tz, self.seeded = n, timing, tz, seeded
        self.rng = random.Random(20261121)
        self.contacts = max(1, min(n // 5, 200_000))
        self.eval_id = 1
        self.order_id = 1
        self._defaults: dict[date, datetime] = {}

    def default_at(self, completed: datetime) -> datetime:
        day = completed.astimezone(self.tz).date()
        if day not in self._defaults:  # the deadline depends on the local day only
            self._defaults[day] = self.timing.default_at(completed)
        return self._defaults[day]

    def chunk(self, start: int, end: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        rng, s = self.rng, self.seeded
        cases: list[dict[str, Any]] = []
        evaluations: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        for i in range(start, end):
            day = i * 365 // self.n
            local = datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), self.tz)
            completed = local + timedelta(seconds=8 * 3600 + 1800 + rng.randrange(8 * 3600))
            a = int(50 * rng.random() ** 1.5)  # a few agencies carry most of the cases
            item = a * 10 + rng.randrange(10)
            staff = rng.randrange(40) if rng.random() < 0.7 else None
            hall = rng.randrange(4) if rng.random() < 0.9 else None
            case_id = i + 1
            row: dict[str, Any] = {
                "id": case_id, "case_no": f"ST{i:010d}", "item_code": f"I{item:03d}",
                "item_name": ITEMS[item % 10] + f"（{item:03d}）", "agency_code": f"AG{a:02d}",
                "agency_name": DISTRICTS[a % 5] + AGENCIES[a // 5], "completed_at": completed,
                "staff_id": None if staff is None else f"S{a:02d}{staff:02d}",
                "staff_name": None if staff is None else f"窗口{a:02d}-{staff:02d}",
                # 4 halls in each of the 5 districts; 10 % of cases served online, in no hall
                "hall_code": None if hall is None else f"H{a % 5}{hall}",
                "hall_name": None if hall is None else f"{DISTRICTS[a % 5]}第{hall + 1}政务服务大厅",
                "district_code": f"D{a % 5}", "district_name": DISTRICTS[a % 5],
                "kind": "instant" if rng.random() < 0.6 else "promised", "source": "api", "locale": "zh_Hans",
                "phone_contact_id": 1 + rng.randrange(self.contacts), "created_at": completed + timedelta(minutes=2),
                "remind_at": None, "default_at": None, "rated_at": None,
            }
            cases.append(row)
            r = rng.random()
            if day >= 358 and rng.random() < 0.4:  # the last week: not all rated yet
                row["default_at"] = self.default_at(completed)
                continue
            ratings: list[tuple[str, bool, bool, datetime]] = []  # grade, is_default, is_followup, at
            first_at = completed + timedelta(hours=24, minutes=rng.randrange(600))
            default_at = self.default_at(completed)
            if r < 0.13:
                ratings.append(("basically_satisfied", True, False, default_at))
                if r >= 0.10:
                    ratings.append((_grade(rng), False, True, default_at + timedelta(days=1, hours=3)))
            else:
                ratings.append((_grade(rng), False, False, first_at))
                if r < 0.15:
                    ratings.append((_grade(rng), False, True, first_at + timedelta(days=2)))
            row["rated_at"] = ratings[0][3]
            rated = False
            for grade, is_default, is_followup, at in ratings:
                channel = "default" if is_default else _pick(CHANNELS, rng.random())
                bad = grade in ("dissatisfied", "very_dissatisfied")
                reasons = sorted(set(rng.sample(REASONS, 1 + int(rng.random() < 0.3)))) if bad else []
                evaluation: dict[str, Any] = {
                    "id": self.eval_id, "case_id": case_id, "grade": grade, "score": SCORES[grade],
                    "reasons": reasons, "text": "等了很久，没人解释" if bad and rng.random() < 0.5 else None,
                    "channel": channel, "is_default": is_default, "is_followup": is_followup, "status": "valid",
                    "created_at": at,
                }
                evaluations.append(evaluation)
                self.eval_id += 1
                if not bad or is_default:
                    rated = rated or not is_default
                    continue
                callback = self._order(rng, row, evaluation, orders)
                if evaluation["status"] == "valid":
                    rated = True
                    s.bad += 1
                if callback is not None:  # the callback's satisfaction: the case's latest rating
                    evaluations.append({
                        "id": self.eval_id, "case_id": case_id, "grade": callback[0], "score": SCORES[callback[0]],
                        "reasons": [], "text": None, "channel": "callback", "is_default": False,
                        "is_followup": False, "status": "valid", "via": "callback", "created_at": callback[1]})
                    self.eval_id += 1
                    rated = True
            s.rated += int(rated)
        s.cases += len(cases)
        s.evaluations += len(evaluations)
        s.work_orders += len(orders)
        return cases, evaluations, orders

    def _order(self, rng: random.Random, case: dict[str, Any], evaluation: dict[str, Any],
               orders: list[dict[str, Any]]) -> tuple[str, datetime] | None:
        """A bad review's work order; the callback's (grade, instant) when it closed with one."""
        at: datetime = evaluation["created_at"]
        closed = rng.random() < 0.6
        status = "closed" if closed else OPEN_STEPS[rng.randrange(4)]
        outcome = _pick(OUTCOMES, rng.random()) if closed else None
        reopened = int(rng.random() < 0.1) if status in ("closed", "dispatched") else 0
        clerk = "attitude" in evaluation["reasons"]
        end = at + timedelta(days=12 + rng.randrange(10))
        order: dict[str, Any] = {
            "id": self.order_id, "case_id": case["id"], "evaluation_id": evaluation["id"],
            "agency_code": case["agency_code"], "agency_name": case["agency_name"],
            "staff_id": case["staff_id"] if clerk else None, "staff_name": case["staff_name"] if clerk else None,
            "grade": evaluation["grade"], "reasons": evaluation["reasons"], "status": status, "outcome": outcome,
            "reopened": reopened, "due_at": None if closed else at + timedelta(days=3 + rng.randrange(12)),
            "overdue": (not closed) and rng.random() < 0.2, "overdue_steps": int(rng.random() < 0.25),
            "created_at": at, "updated_at": end if closed else at + timedelta(days=2),
            "closed_at": end if closed else None,
        }
        if outcome == "excluded":
            order.update(appeal_status="upheld", appeal_reason="评价人与办件无关", appeal_by="l2",
                         appeal_at=at + timedelta(days=1), appeal_decided_at=at + timedelta(days=3))
            evaluation["status"] = "excluded"
        orders.append(order)
        self.order_id += 1
        if outcome != "excluded":
            self.seeded.counted_orders += 1
            self.seeded.rectified += int(status in ("rectified", "reviewed", "closed") or reopened > 0)
        if outcome in ("satisfied", "basically_satisfied"):
            return outcome, end
        return None


async def seed(cfg: Config, n: int) -> Seeded:
    from bot.infra.config import load_settings
    from bot.infra.runtime import open_runtime
    from dialogs.addresses import mask_phone
    from store import models
    from store.models import Case, Contact, Evaluation, WorkOrder

    seeded = Seeded()
    started = time.perf_counter()
    rt = await open_runtime(load_settings(cfg.env(), cfg.workdir))
    try:
        gen = Generator(n, rt.timing, rt.policy.tz, seeded)
        async with BulkWriter(cfg, triggers=False) as writer:
            if await writer.next_id(Case) != 1:
                raise RuntimeError("the seeder expects an empty database")
            at = datetime.combine(FIRST_DAY, datetime.min.time(), rt.policy.tz)
            people = []
            for j in range(gen.contacts):
                phone = f"+8615{j:09d}"
                people.append({"id": j + 1, "channel": "phone", "address_hash": rt.sealer.lookup_hash("phone", phone),
                               "address_sealed": rt.sealer.seal(phone), "masked": mask_phone(phone), "created_at": at})
            seeded.contacts = await writer.insert(Contact, people)
            del people
            timings = dict.fromkeys(("generate", "cases", "evaluations", "work_orders"), 0.0)
            for start in range(0, n, CHUNK):
                t0 = time.perf_counter()
                cases, evaluations, orders = gen.chunk(start, min(n, start + CHUNK))
                t1 = time.perf_counter()
                await writer.insert(Case, cases)
                t2 = time.perf_counter()
                await writer.insert(Evaluation, evaluations)
                t3 = time.perf_counter()
                await writer.insert(WorkOrder, orders)
                t4 = time.perf_counter()
                for name, spent in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    timings[name] += spent
                if (start // CHUNK) % 10 == 9:
                    print(f"  seeded {start + len(cases):,} cases in {time.perf_counter() - started:.0f} s",
                          file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            if hasattr(models, "StatsDirty"):  # what the triggers would have marked: every day with cases
                day = "date(completed_at)" if writer.dialect_name == "sqlite" else "CAST(completed_at AS date)"
                # MySQL's triggers stayed on during the seeding (no session switch for them) and marked these already
                ignore = " IGNORE" if writer.dialect_name == "mysql" else ""
                await writer.execute(f"INSERT{ignore} INTO stats_dirty (day) SELECT DISTINCT {day} FROM cases")
            await writer.finish()
            timings["analyze"] = time.perf_counter() - t0
            seeded.by_table = timings
    finally:
        await rt.close()
    seeded.seconds = time.perf_counter() - started
    return seeded


def get(url: str, token: str) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=3600) as response:
        doc = json.loads(response.read())
    return time.perf_counter() - started, doc


def post(url: str, token: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=3600) as response:
        doc = json.loads(response.read())
    return time.perf_counter() - started, doc


def check(doc: dict[str, Any], s: Seeded) -> str:
    """The answer's totals against the seeder's; `rectified` is read back from rounded rates, so approximately."""
    groups = doc["groups"]
    orders = [g.get("work_orders") or 0 for g in groups]
    found = {"cases": sum(g["cases"] for g in groups), "rated": sum(g["rated"] for g in groups),
             "bad": sum(g["bad_reviews"] for g in groups), "orders": sum(orders),
             "rectified": sum((g["rectification_rate"] or 0) * o for g, o in zip(groups, orders, strict=True))}
    wanted = {"cases": s.cases, "rated": s.rated, "bad": s.bad, "orders": s.counted_orders, "rectified": s.rectified}
    slack = {"rectified": sum(o * 0.00005 + 0.5 for o in orders)}
    wrong = [f"{k} {found[k]:.0f} != {wanted[k]}" for k in wanted if abs(found[k] - wanted[k]) > slack.get(k, 0)]
    return "totals ok" if not wrong else "TOTALS WRONG: " + ", ".join(wrong)


async def explain(cfg: Config, by: str = "agency") -> str:
    """The plan of the statement `store.stats.figures` runs (EXPLAIN ANALYZE on PostgreSQL)."""
    from store import stats

    class Captured(Exception):
        pass

    class Capture:
        statement: Any = None

        async def exec(self, statement: Any) -> Any:
            self.statement = statement
            raise Captured

    capture = Capture()
    try:
        await stats.figures(capture, by, None, None)  # type: ignore[arg-type]
    except Captured:
        pass
    async with BulkWriter(cfg) as writer:
        sql = str(capture.statement.compile(dialect=writer._dialect, compile_kwargs={"literal_binds": True}))
        if writer.dialect_name == "sqlite":
            rows = writer._sqlite.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            return "\n".join(f"{r[0]:>4} {r[1]:>4} {r[3]}" for r in rows)
        rows = await writer._pg.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(r[0] for r in rows)


async def rollup(cfg: Config) -> tuple[float, int, float]:
    """`store.stats.refresh` until no day is dirty, as the ticks would (7 days a pass): seconds, passes, worst pass."""
    from store import stats
    from store.engine import Database

    if not hasattr(stats, "refresh"):
        return 0.0, 0, 0.0
    db = Database(cfg.database_url)
    passes, worst, started = 0, 0.0, time.perf_counter()
    try:
        while True:
            t0 = time.perf_counter()
            if not await stats.refresh(db):
                break
            passes += 1
            worst = max(worst, time.perf_counter() - t0)
    finally:
        await db.close()
    async with BulkWriter(cfg) as writer:
        await writer.execute("ANALYZE TABLE stats_days" if writer.dialect_name == "mysql" else "ANALYZE stats_days")
    return time.perf_counter() - started, passes, worst


def measure(config_name: str, sizes: list[int] = [1_000_000, 10_000_000],  # noqa: B006 (the brief's signature)
            show_plan: bool = False, live_requests: int = 2) -> list[Row]:
    """Per size: a "stats-live" row (every day dirty, as right after an import: computed from the records;
    `live_requests` requests) and a "stats" row (after the daily figures are rebuilt: the steady state)."""
    rows = []
    for n in sizes:
        with config(config_name) as cfg:
            seeded = asyncio.run(seed(cfg, n))
            parts = ", ".join(f"{k} {v:.0f}" for k, v in seeded.by_table.items())
            print(f"{config_name} n={n:,}: seeded {seeded.cases:,} cases, {seeded.evaluations:,} evaluations, "
                  f"{seeded.work_orders:,} work orders, {seeded.contacts:,} contacts in {seeded.seconds:.0f} s "
                  f"({parts})", flush=True)
            seed_note = (f"seeded {seeded.evaluations:,} evaluations + {seeded.work_orders:,} work orders "
                         f"in {seeded.seconds:.0f} s")
            with serve(cfg) as server:
                url = server.url + "/api/v1/stats?by="
                live = [get(url + "agency", cfg.api_token) for _ in range(live_requests)]
                print(f"  live: {', '.join(f'{t:.2f}' for t, _doc in live)} s", flush=True)
                refreshed, passes, worst = asyncio.run(rollup(cfg))
                print(f"  daily figures rebuilt in {refreshed:.1f} s ({passes} passes, worst {worst:.1f} s)",
                      flush=True)
                times = []
                for _ in range(5):
                    spent, doc = get(url + "agency", cfg.api_token)
                    times.append(spent)
                item_seconds, item_doc = get(url + "item", cfg.api_token)
                hall_seconds, hall_doc = get(url + "hall", cfg.api_token)
                rank_seconds, _ranks = get(server.url + "/api/v1/rankings?of=hall", cfg.api_token)
                publish_seconds, _snap = post(server.url + "/api/v1/stats/snapshots", cfg.api_token,
                                              {"label": "bench", "from": "2025-11-21", "to": "2026-11-20"})
                peak = rss_kib(server.pid, "VmHWM")
            live_verdict = check(live[0][1], seeded)
            rows.append(Row("stats-live", config_name, n, seconds=round(live[0][0], 3),
                            p50_ms=statistics.median(t for t, _d in live[1:]) * 1000 if live[1:] else None,
                            note=f"every day dirty (computed from the records): "
                                 f"{', '.join(f'{t:.2f}' for t, _d in live)} s; {live_verdict}; {seed_note}"))
            verdict = check(doc, seeded)
            if check(item_doc, seeded) != verdict:
                verdict += "; by=item: " + check(item_doc, seeded)
            warm = statistics.median(times[1:])
            rows.append(Row("stats", config_name, n, seconds=round(times[0], 3), p50_ms=warm * 1000,
                            peak_rss_mb=peak / 1024,
                            note=f"cold {times[0]:.2f} s, warm {', '.join(f'{t:.2f}' for t in times[1:])} s; "
                                 f"by=item {item_seconds:.2f} s ({len(item_doc['groups'])} groups); "
                                 f"by=hall {hall_seconds:.2f} s ({len(hall_doc['groups'])} groups); rankings of "
                                 f"halls {rank_seconds:.2f} s; publishing a year (every grouping and ranking) "
                                 f"{publish_seconds:.2f} s; "
                                 f"{len(doc['groups'])} agencies; {verdict}; daily figures rebuilt in "
                                 f"{refreshed:.0f} s ({passes} refresh passes, worst {worst:.1f} s)"))
            if show_plan:
                print(f"--- plan of the live by=agency statement ({config_name}, n={n:,}) ---")
                print(asyncio.run(explain(cfg)), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="both")
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated numbers of cases")
    parser.add_argument("--explain", action="store_true",
                        help="print the statement's plan (EXPLAIN ANALYZE on PostgreSQL, QUERY PLAN on SQLite)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    names = list(CONFIGS) if args.config == "both" else [args.config]
    rows = []
    for name in names:
        rows += measure(name, sizes, show_plan=args.explain)
        print(table(rows), flush=True)
        print(flush=True)


if __name__ == "__main__":
    main()
