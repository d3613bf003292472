"""`anchorflow serve` holds the warehouse: its runner writes through it, its read API reads
the last commit; `Run now`; SIGTERM during a run leaves what a clean run leaves. On each
engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from anchorflow.run import Pipeline
from tests.builders import ENV
from tests.conftest import table_rows
from tests.serve.files_project import files_project
from tests.serve.hooks import free_port, wait_for

pytestmark = pytest.mark.e2e
ANCHORFLOW = Path(sys.executable).with_name("anchorflow")


class Serving:
    def __init__(self, root: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != "ANCHORFLOW_SERVE_TOKEN"}
        self.process = subprocess.Popen(
            [str(ANCHORFLOW), "serve", "--project", str(root), "--port", str(self.port),
             "--readers", "0", "--load-every", "0", *options],
            env={**env, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for(self._up, deadline=60)

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"serve exited: {self.process.communicate()}")
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str) -> Any:
        answer = httpx.get(self.url + path, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def run_now(self, source: str = "") -> httpx.Response:
        return httpx.post(self.url + "/run", data={"source": source}, timeout=30,
                          headers={"Origin": self.url, "Accept": "application/json"})  # fmt: skip

    def stop(self) -> subprocess.CompletedProcess[str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=120)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)


def served_runs(serving: Serving) -> list[dict[str, Any]]:
    return list(serving.get("/api/health")["served"]["runs"])


def test_run_now_writes_through_the_server_and_the_api_reads_it(
    engine: str, tmp_path: Path
) -> None:
    project = files_project(tmp_path / "p", files=4)
    serving = Serving(project.root)
    try:
        assert serving.get("/api/health")["last_loads"] == []
        answer = serving.run_now("drops")
        assert answer.status_code == 202 and answer.json() == {"requested": ["drops"]}
        wait_for(lambda: any(r["status"] == "ok" for r in served_runs(serving)), deadline=60)
        health = serving.get("/api/health")
        (run,) = health["served"]["runs"]
        assert (run["reason"], run["sources"], run["rows"]) == ("manual", ["drops"], 80)
        assert sum(load["rows"] for load in health["loads"]) == 80
        assert health["runs"][0]["command"] == "run drops" and health["runs"][0]["status"] == "ok"
        model = serving.get("/api/model")
        (items,) = model["staging_models"]
        assert items["model"] == "items" and items["totals"]["staged"] == 80
        assert {f["field"] for f in items["fields"]["fields"]} >= {"id", "n"}
        refused = httpx.post(serving.url + "/run", data={"source": "drops"},
                             headers={"Origin": "http://elsewhere.example"})  # fmt: skip
        assert refused.status_code == 403
        assert serving.run_now("nowhere").status_code == 404
        # No `fraud:` in this project: no Fraud page, nor its entry in the nav.
        assert httpx.get(serving.url + "/fraud").status_code == 404
        assert 'href="/fraud"' not in httpx.get(serving.url + "/").text
    finally:
        done = serving.stop()
    assert done.returncode == 0, done.stderr


def raw_records(project: Any) -> list[str]:
    return [
        str(r[0]) for r in table_rows(project, "SELECT record FROM raw.drops_records ORDER BY 1")
    ]


def staged(project: Any) -> list[tuple[Any, ...]]:
    return table_rows(project, "SELECT id, n FROM staging.items ORDER BY id")


def test_sigterm_during_a_run_leaves_what_a_clean_run_leaves(engine: str, tmp_path: Path) -> None:
    files = 20 if engine == "spark" else 100  # a window on Spark takes seconds, not ms
    project = files_project(tmp_path / "served", files=files, lines=5)
    serving = Serving(project.root)
    try:
        assert serving.run_now("drops").status_code == 202
        wait_for(lambda: serving.get("/api/health")["last_loads"] != [], deadline=60)
    finally:
        done = serving.stop()  # SIGTERM while it lands
    assert done.returncode == 0, done.stderr
    runs = table_rows(project, "SELECT status, detail FROM meta.runs ORDER BY run_id")
    assert runs == [("interrupted", "stopped by SIGTERM")]
    # Every committed window is whole: its file's five records, nothing of a window half-written.
    per_load = table_rows(project, "SELECT count(*) FROM raw.drops_records GROUP BY load_id")
    assert per_load and {int(n) for (n,) in per_load} == {5} and len(per_load) < files
    # The next run carries on from there and ends where a clean run ends.
    with Pipeline(project) as pipeline:
        pipeline.run()
    clean = files_project(tmp_path / "clean", files=files, lines=5)
    with Pipeline(clean) as pipeline:
        pipeline.run()
    assert raw_records(project) == raw_records(clean) and len(raw_records(clean)) == files * 5
    assert staged(project) == staged(clean)
    assert json.loads(raw_records(project)[0])["id"]
