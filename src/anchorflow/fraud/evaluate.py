"""How well the fraud step's flags match the labelled truth of the synthetic traffic: precision,
recall and F1 per rule and overall, at user and at event level; the recall of every rule on every
pattern and variant; the false-positive rate on the hard negatives.

`users` and `events` are the contents of `fraud.fraud_user` and `fraud.fraud_event` (fetched from
any engine); `truth` is the directory `anchorflow.dev.synth.marketing` wrote users.parquet and
events.parquet into. Everything is computed by an in-memory DuckDB over Arrow.

Per rule, precision counts every fraud user it flags as a true positive (a user of another
pattern is still fraud) and recall is measured against the pattern of the same name; overall, only
rows with shadow = false count. A flagged id missing from the truth counts as a false positive.
Divisions by zero give None.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

ANY = "(any)"  # the overall row: any rule not in shadow mode
LEVELS = {"user": ("users", "u", ["user_id"]), "event": ("events", "e", ["event_id", "event_kind"])}


@dataclass(frozen=True)
class Scores:
    flagged: int
    true_positives: int  # flagged and fraud (any pattern)
    false_positives: int  # flagged and genuine
    false_negatives: int | None  # of the pattern (per rule) or of all fraud (overall) not flagged
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class RuleScores:
    rule: str
    shadow: bool  # every row of the rule is in shadow mode
    user: Scores
    event: Scores


@dataclass(frozen=True)
class RecallCell:
    """The share of a pattern variant's users (events for click-only patterns) a rule flagged."""

    rule: str
    pattern: str
    variant: str
    level: str  # user | event
    total: int
    flagged: int
    recall: float | None


@dataclass(frozen=True)
class NegativeRate:
    """Genuine users of a group (a hard negative, or `genuine`: all of them) a rule flagged."""

    rule: str
    group: str
    users: int
    flagged: int
    rate: float | None


@dataclass(frozen=True)
class Evaluation:
    overall: RuleScores  # rule ANY
    rules: list[RuleScores]
    recall_matrix: list[RecallCell]
    negatives: list[NegativeRate]
    fraud_users: int
    genuine_users: int
    fraud_events: int
    genuine_events: int


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None or precision + recall == 0:
        return None
    return 2 * precision * recall / (precision + recall)


def _connect(users: pa.Table, events: pa.Table, truth: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("fraud_user", users)
    con.register("fraud_event", events)
    for name in ("users", "events"):
        path = str(truth / f"{name}.parquet").replace("'", "''")
        con.execute(f"CREATE TABLE truth_{name} AS SELECT * FROM read_parquet('{path}')")
    # flags: one row per (rule, key), the ANY rule from the rows not in shadow mode
    for level, (_, alias, keys) in LEVELS.items():
        cols = ", ".join(keys)
        source = "fraud_user" if level == "user" else "fraud_event"
        con.execute(f"""
            CREATE TABLE flags_{alias} AS
            SELECT rule, {cols}, bool_and(shadow) AS shadow FROM {source}
            WHERE {" AND ".join(f"{k} IS NOT NULL" for k in keys)} GROUP BY rule, {cols}
            UNION ALL
            SELECT DISTINCT '{ANY}', {cols}, false FROM {source}
            WHERE NOT shadow AND {" AND ".join(f"{k} IS NOT NULL" for k in keys)}""")
    return con


def _level_scores(con: duckdb.DuckDBPyConnection, level: str) -> dict[str, Scores]:
    name, alias, keys = LEVELS[level]
    rows = con.execute(f"""
        WITH sizes AS (SELECT pattern, count(*) AS n FROM truth_{name} WHERE fraud
                       GROUP BY pattern),
        counts AS (
          SELECT f.rule, count(*) AS flagged, count(*) FILTER (WHERE t.fraud) AS tp,
                 count(*) FILTER (WHERE t.fraud IS NOT true) AS fp,
                 count(*) FILTER (WHERE t.pattern = f.rule) AS own
          FROM flags_{alias} AS f LEFT JOIN truth_{name} AS t USING ({", ".join(keys)})
          GROUP BY f.rule)
        SELECT c.rule, c.flagged, c.tp, c.fp,
               CASE WHEN c.rule = '{ANY}' THEN c.tp ELSE c.own END AS hits,
               CASE WHEN c.rule = '{ANY}' THEN (SELECT count(*) FROM truth_{name} WHERE fraud)
                    ELSE coalesce(s.n, 0) END AS relevant
        FROM counts AS c LEFT JOIN sizes AS s ON s.pattern = c.rule ORDER BY c.rule""").fetchall()
    out = {}
    for rule, flagged, tp, fp, hits, relevant in rows:
        precision, recall = _ratio(tp, flagged), _ratio(hits, relevant)
        out[rule] = Scores(flagged, tp, fp, relevant - hits if relevant else None, precision,
                           recall, _f1(precision, recall))  # fmt: skip
    return out


def _empty(con: duckdb.DuckDBPyConnection, level: str, rule: str) -> Scores:
    """The scores of a rule that flagged nothing at this level."""
    name = LEVELS[level][0]
    row = con.execute(
        f"SELECT count(*) FROM truth_{name} WHERE fraud AND (? OR pattern = ?)", [rule == ANY, rule]
    ).fetchall()
    relevant = int(row[0][0])
    recall = _ratio(0, relevant)
    return Scores(0, 0, 0, relevant if relevant else None, None, recall, None)


def _recall_matrix(con: duckdb.DuckDBPyConnection) -> list[RecallCell]:
    """Users for patterns that have users; events for the click-only ones."""
    rows = con.execute("""
        WITH user_groups AS (SELECT pattern, variant, count(*) AS total FROM truth_users
                             WHERE fraud GROUP BY ALL),
        event_groups AS (SELECT pattern, variant, count(*) AS total FROM truth_events
                         WHERE fraud AND pattern NOT IN (SELECT pattern FROM user_groups)
                         GROUP BY ALL),
        hits AS (
          SELECT f.rule, t.pattern, t.variant, 'user' AS level, count(*) AS flagged
          FROM flags_u AS f JOIN truth_users AS t USING (user_id) WHERE t.fraud GROUP BY ALL
          UNION ALL
          SELECT f.rule, t.pattern, t.variant, 'event', count(*)
          FROM flags_e AS f JOIN truth_events AS t USING (event_id, event_kind)
          WHERE t.fraud GROUP BY ALL),
        grid AS (SELECT r.rule, g.pattern, g.variant, 'user' AS level, g.total
                 FROM rule_names AS r CROSS JOIN user_groups AS g
                 UNION ALL
                 SELECT r.rule, g.pattern, g.variant, 'event', g.total
                 FROM rule_names AS r CROSS JOIN event_groups AS g)
        SELECT g.rule, g.pattern, g.variant, g.level, g.total, coalesce(h.flagged, 0)
        FROM grid AS g LEFT JOIN hits AS h USING (rule, pattern, variant, level)
        ORDER BY g.pattern, g.variant DESC, g.rule""").fetchall()
    return [RecallCell(r, p, v, lvl, total, n, _ratio(n, total)) for r, p, v, lvl, total, n in rows]


def _negatives(con: duckdb.DuckDBPyConnection) -> list[NegativeRate]:
    rows = con.execute(f"""
        WITH genuine AS (SELECT user_id, negative FROM truth_users WHERE NOT fraud),
        groups AS (SELECT negative AS grp, count(*) AS n FROM genuine
                   WHERE negative IS NOT NULL GROUP BY grp
                   UNION ALL SELECT 'genuine', count(*) FROM genuine),
        flagged AS (SELECT f.rule, g.negative AS grp, count(*) AS n FROM flags_u AS f
                    JOIN genuine AS g USING (user_id) WHERE g.negative IS NOT NULL GROUP BY ALL
                    UNION ALL
                    SELECT f.rule, 'genuine', count(*) FROM flags_u AS f
                    JOIN genuine AS g USING (user_id) GROUP BY ALL),
        grid AS (SELECT r.rule, g.grp, g.n FROM rule_names AS r CROSS JOIN groups AS g)
        SELECT g.rule, g.grp, g.n, coalesce(f.n, 0) FROM grid AS g
        LEFT JOIN flagged AS f USING (rule, grp)
        ORDER BY g.rule = '{ANY}' DESC, g.rule, g.grp = 'genuine', g.grp""").fetchall()
    return [NegativeRate(r, grp, int(n), int(f), _ratio(int(f), int(n))) for r, grp, n, f in rows]


def evaluate(users: pa.Table, events: pa.Table, truth: Path) -> Evaluation:
    """Score the flags in `users` (fraud.fraud_user) and `events` (fraud.fraud_event)."""
    con = _connect(users, events, truth)
    try:
        scores = {level: _level_scores(con, level) for level in LEVELS}
        shadow = dict(
            con.execute("""
            SELECT rule, bool_and(shadow) FROM (SELECT rule, shadow FROM fraud_user
            UNION ALL SELECT rule, shadow FROM fraud_event) GROUP BY rule""").fetchall()
        )
        names = sorted((set(shadow) | set(scores["user"]) | set(scores["event"])) - {ANY})
        rules = [
            RuleScores(rule, bool(shadow.get(rule, False)),
                       *(scores[lvl].get(rule) or _empty(con, lvl, rule) for lvl in LEVELS))
            for rule in [ANY, *names]
        ]  # fmt: skip
        totals = con.execute("""
            SELECT (SELECT count(*) FILTER (WHERE fraud) FROM truth_users),
                   (SELECT count(*) FILTER (WHERE NOT fraud) FROM truth_users),
                   (SELECT count(*) FILTER (WHERE fraud) FROM truth_events),
                   (SELECT count(*) FILTER (WHERE NOT fraud) FROM truth_events)""").fetchall()[0]
        con.register("rule_names", pa.table({"rule": [ANY, *names]}))
        matrix = _recall_matrix(con)
        return Evaluation(rules[0], rules[1:], matrix, _negatives(con), *map(int, totals))
    finally:
        con.close()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_evaluation(e: Evaluation) -> list[str]:
    """Plain-text tables: scores per rule, the recall matrix by pattern, the hard negatives."""
    lines = [
        f"truth: {e.fraud_users} fraud users of {e.fraud_users + e.genuine_users}, "
        f"{e.fraud_events} fraud clicks/events of {e.fraud_events + e.genuine_events}"
    ]
    head = f"{'level':<6} {'rule':<24} {'flagged':>8} {'tp':>7} {'fp':>7} {'fn':>7} "
    lines.append(head + f"{'precision':>9} {'recall':>7} {'f1':>6}")
    for r in [e.overall, *e.rules]:
        for level in LEVELS:
            s: Scores = getattr(r, level)
            name = r.rule + (" (shadow)" if r.shadow else "")
            fn = "-" if s.false_negatives is None else str(s.false_negatives)
            lines.append(f"{level:<6} {name:<24} {s.flagged:>8} {s.true_positives:>7} "
                         f"{s.false_positives:>7} {fn:>7} {_fmt(s.precision):>9} "
                         f"{_fmt(s.recall):>7} {_fmt(s.f1):>6}")  # fmt: skip
    lines += [
        "",
        "recall by pattern (users; click-only patterns: events)",
        f"{'pattern':<24} {'variant':<8} {'total':>7} {ANY:>7} {'own rule':>8}  others",
    ]
    cells: dict[tuple[str, str], dict[str, RecallCell]] = {}
    for c in e.recall_matrix:
        cells.setdefault((c.pattern, c.variant), {})[c.rule] = c
    for (pattern, variant), by_rule in cells.items():
        total = next(iter(by_rule.values())).total
        own = by_rule.get(pattern)
        others = ", ".join(f"{r} {_fmt(c.recall)}" for r, c in by_rule.items()
                           if r not in (ANY, pattern) and c.flagged)  # fmt: skip
        lines.append(f"{pattern:<24} {variant:<8} {total:>7} "
                     f"{_fmt(by_rule[ANY].recall if ANY in by_rule else None):>7} "
                     f"{_fmt(own.recall if own else None):>8}  {others}")  # fmt: skip
    lines += ["", "false positives on genuine users (any rule not in shadow)"]
    for n in e.negatives:
        if n.rule == ANY:
            lines.append(f"{n.group:<10} {n.flagged:>6} of {n.users:>7}  rate {_fmt(n.rate)}")
    return lines
