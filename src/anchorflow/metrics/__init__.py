"""The semantic layer: metrics of the project file's `metrics:` section, compiled to SQL.

`compile_query` turns a `MetricQuery` (metrics, dimensions, grain, filters, time range) into
one SELECT for the engine; `run_query` runs it; `describe` lists what can be asked. The CLI's
`metrics query` and the web app's Explore page print the same `MetricResult`.
"""

from anchorflow.metrics.compile import compile_query
from anchorflow.metrics.query import Filter, MetricQuery, MetricResult, parse_filter
from anchorflow.metrics.run import MetricInfo, describe, run_query

__all__ = [
    "Filter",
    "MetricInfo",
    "MetricQuery",
    "MetricResult",
    "compile_query",
    "describe",
    "parse_filter",
    "run_query",
]
