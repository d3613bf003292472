"""The contenders of `bench.async_export`, each run in a fresh process:
`python -m bench.async_export.contenders NAME ARGS_JSON` prints one JSON line of results.

- anchorflow: a project with the `async_export` source (MaestroQA preset, stream
  `individual_answers` as a ZIP) and a typed `staging.answers` model; one `run`.
- pandas: the reference article's way: request, poll and download with httpx, then
  `read_csv` of the ZIP's member and `to_sql` into DuckDB (SQLAlchemy + duckdb-engine), on the
  first `limit` rows (row-by-row inserts make the whole file take many minutes).
- duckdb_read_csv: the floor: the same download, then one `read_csv` into a DuckDB table (no raw
  text, no journal, no dedupe).
"""

from __future__ import annotations

import json
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

COLUMNS = {
    "gradable_id": "VARCHAR", "agent_id": "VARCHAR", "grader": "VARCHAR",
    "section_name": "VARCHAR", "question_id": "VARCHAR", "answer": "INTEGER",
    "max_answer": "INTEGER", "date_graded": "TIMESTAMP",
}  # fmt: skip
NOW = datetime(2024, 3, 2, 6)


def anchorflow(args: dict[str, Any]) -> dict[str, Any]:
    from anchorflow.config import load_project
    from anchorflow.run import Pipeline
    from anchorflow.warehouse import connect

    root = Path(args["project"])
    project = load_project(root, env={"MAESTROQA_API_TOKEN": args["token"]})
    started = time.perf_counter()
    with Pipeline(project, now=NOW) as pipeline:
        pipeline.run()
    seconds = time.perf_counter() - started
    with connect(project, read_only=True) as reader:
        raw = reader.query("SELECT count(*) FROM raw.qa_individual_answers")[0][0]
        staged = reader.query("SELECT count(*), sum(answer) FROM staging.answers")[0]
        loads = reader.query("SELECT count(*), sum(quarantined) FROM meta.loads")[0]
    return {"rows": raw, "staged": staged[0], "answer_sum": staged[1], "loads": loads[0],
            "quarantined": loads[1], "seconds": seconds}  # fmt: skip


def download(args: dict[str, Any], dest: Path) -> None:
    """Request the export, poll it every 10 ms, stream its file to `dest`."""
    headers = {"apitoken": args["token"]}
    with httpx.Client(base_url=args["base_url"], headers=headers, timeout=60) as api:
        body = {"startDate": "2024-03-01T00:00:00Z", "endDate": "2024-03-02T00:00:00Z",
                "singleFileExport": "individual_answers"}  # fmt: skip
        export_id = api.post("/request-raw-export", json=body).json()["exportId"]
        while (status := api.get("/get-export-data", params={"exportId": export_id}).json())[
            "status"
        ] != "complete":
            time.sleep(0.01)
        with httpx.stream("GET", status["dataUrl"], timeout=60) as response, dest.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)


def pandas(args: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"duckdb:///{args['db']}")
    started = time.perf_counter()
    dest = Path(args["work"]) / "export.zip"
    download(args, dest)
    with zipfile.ZipFile(dest) as archive, archive.open("individual_answers.csv") as member:
        frame = pd.read_csv(member, nrows=args.get("limit"))
    frame.to_sql("answers", engine, if_exists="append", index=False)
    seconds = time.perf_counter() - started
    return {"rows": len(frame), "seconds": seconds, "answer_sum": int(frame["answer"].sum())}


def duckdb_read_csv(args: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    started = time.perf_counter()
    dest = Path(args["work"]) / "export.zip"
    download(args, dest)
    with zipfile.ZipFile(dest) as archive:
        csv = Path(archive.extract("individual_answers.csv", args["work"]))
    con = duckdb.connect(args["db"])
    con.execute("CREATE TABLE answers AS SELECT * FROM read_csv(?)", [str(csv)])
    rows, total = con.execute("SELECT count(*), sum(answer) FROM answers").fetchone() or (0, 0)
    con.close()
    return {"rows": rows, "answer_sum": total, "seconds": time.perf_counter() - started}


CONTENDERS = {"anchorflow": anchorflow, "pandas": pandas, "duckdb_read_csv": duckdb_read_csv}

if __name__ == "__main__":
    name, raw_args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(CONTENDERS[name](raw_args)))
