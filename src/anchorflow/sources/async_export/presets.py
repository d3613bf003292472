"""Presets of the `async_export` kind: the defaults of a known API, which a project overrides.

A preset is plain data merged under the project's own settings (`merged`): every key the
project sets wins, nested mappings are merged key by key, and a stream named like one of the
preset's stream templates starts from that template.
"""

from __future__ import annotations

import copy
from typing import Any

# MaestroQA's export API (https://app.maestroqa.com/api/v1): `POST /request-*-export` answers
# `{"exportId": ...}`; `GET /get-export-data?exportId=` answers `{"status", "dataUrl"}`.
RAW_EXPORT_FILES = ("individual_answers", "section_scores", "total_scores", "annotations", "csat")
_DATED = {"startDate": "{start}", "endDate": "{end}"}


def _raw_stream(single: str | None) -> dict[str, Any]:
    body: dict[str, Any] = dict(_DATED)
    if single is not None:
        body["singleFileExport"] = single
    return {"request": {"path": "/request-raw-export", "body": body},
            "format": "csv" if single else "zip"}  # fmt: skip


MAESTROQA: dict[str, Any] = {
    "base_url": "https://app.maestroqa.com/api/v1",
    "token_header": "apitoken",  # the project sets `token: ${MAESTROQA_API_TOKEN}`
    "date_format": "%Y-%m-%dT%H:%M:%SZ",
    "export_id_field": "exportId",
    "status": {
        "path": "/get-export-data",
        "id_param": "exportId",
        "field": "status",
        "url_field": "dataUrl",
        "requested": ["requested"],
        "in_progress": ["in_progress"],
        "complete": ["complete"],
        "errored": ["errored"],
    },
    "stream_templates": {
        "raw": _raw_stream(None),
        **{name: _raw_stream(name) for name in RAW_EXPORT_FILES},
        "groups": {
            "request": {"path": "/request-groups-export", "body": {"includeUnavailable": True}},
            "format": "csv",
            "snapshot": True,
        },
        "audit_log": {
            "request": {"path": "/request-audit-log-export", "body": dict(_DATED)},
            "format": "csv",
        },
    },
    # Without `streams:`, the agents' groups first, then the scores that join them.
    "streams": {"groups": {}, "total_scores": {"after": ["groups"]}},
}

PRESETS: dict[str, dict[str, Any]] = {"maestroqa": MAESTROQA}


def merged(data: dict[str, Any]) -> dict[str, Any]:
    """The source's settings with its preset's defaults under them (no preset: as they are)."""
    name = data.get("preset")
    if name is None:
        return data
    if name not in PRESETS:
        known = ", ".join(sorted(PRESETS))
        raise ValueError(f"unknown preset {name!r}; known presets: {known}")
    preset = copy.deepcopy(PRESETS[name])
    templates = preset.pop("stream_templates")
    result = _deep_merge(preset, {k: v for k, v in data.items() if k != "streams"})
    streams = data.get("streams", preset["streams"])
    if isinstance(streams, dict):
        result["streams"] = {
            stream: _deep_merge(copy.deepcopy(templates.get(stream, {})), settings or {})
            if isinstance(settings, dict | None) else settings
            for stream, settings in streams.items()
        }  # fmt: skip
    return result


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
