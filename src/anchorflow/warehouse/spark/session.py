"""The SparkSession: one per process (its JVM), started quietly; each warehouse takes its own
session of it (`newSession`), so that the temporary views naming its tables are its own."""

from __future__ import annotations

import logging
import os
import threading
from importlib import resources
from typing import Any

from anchorflow.errors import WarehouseError

_started = threading.Lock()
# Spark SQL settings every warehouse session needs (runtime settings: set per session).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",  # DuckDB's TIMESTAMP: no time zone
    "spark.sql.variant.allowDuplicateKeys": "true",  # JSON with a repeated key is valid JSON
    "spark.sql.ansi.enabled": "false",  # a failed cast is NULL, as in the canonical SQL's TRY_CAST
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.legacy.allowNonEmptyLocationInCTAS": "true",
}


def log_config() -> str:
    """The log4j2 configuration that keeps Spark's INFO and WARN lines off stderr."""
    return str(resources.files("anchorflow.warehouse.spark").joinpath("log4j2.properties"))


def local_driver_memory() -> str:
    """The driver's heap in local mode, where the driver is the executor too: a quarter of
    the machine's memory, from Spark's own 1g to 8g. (Spark's 1g ran out of execution memory
    typing a window of 500,000 events of 1.6 KB.)"""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "1g"
    return f"{max(1, min(8, total // 4 // 2**30))}g"


def spark_session(master: str, builder: Any = None, conf: dict[str, str] | None = None) -> Any:
    """A new session of the process's Spark (started at the first call, on `master`, from
    `builder` when given: the tests' own settings). `conf`: the project's Spark settings, for
    the start (the driver's memory...) and, `spark.sql.*` ones, for this session."""
    conf, given = conf or {}, builder
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise WarehouseError(
            "engine spark needs pyspark: pip install 'anchorflow[spark]' (and Java 17)"
        ) from None
    with _started:
        active = SparkSession.getActiveSession()
        if active is None:
            java_options = f"-Dlog4j2.configurationFile=file:{log_config()}"
            builder = (
                (builder or SparkSession.builder.master(master))
                .appName("anchorflow")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.driver.extraJavaOptions", java_options)
                .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
                .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
            )
            settings = dict(SESSION_CONF)
            if (
                given is None
                and master.startswith("local")
                and "--driver-memory" not in os.environ.get("PYSPARK_SUBMIT_ARGS", "")
            ):
                settings["spark.driver.memory"] = local_driver_memory()
            for key, value in (settings | conf).items():
                builder = builder.config(key, value)
            os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", "python3"))
            try:
                active = builder.getOrCreate()
            except Exception as error:  # no Java, a bad master URL
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise WarehouseError(f"cannot start Spark on {master}: {first}") from None
            active.sparkContext.setLogLevel("ERROR")
            # PySpark logs every failed statement (JSON with the JVM's stack) on stderr; the
            # adapter raises it as one line instead.
            logging.getLogger("SQLQueryContextLogger").disabled = True
    session = active.newSession()
    ours = {k: v for k, v in conf.items() if k.startswith("spark.sql.")}
    for key, value in (SESSION_CONF | ours).items():
        session.conf.set(key, value)
    return session
