"""The Spark engine: the layers as Parquet files in a lake, the journal in a DuckDB file beside
it (see `adapter` for how a load becomes visible whole or not at all)."""

from anchorflow.warehouse.spark.adapter import SparkWarehouse

__all__ = ["SparkWarehouse"]
