"""Resources: one module per external system, each behind a small abstract seam."""

from databaker.resources.athena_engine import AthenaQueryEngine
from databaker.resources.duckdb_engine import DuckDBQueryEngine
from databaker.resources.layer_store import LayerStore, LayerStoreError, Replacement
from databaker.resources.local_layer_store import LocalLayerStore
from databaker.resources.query_engine import (
    ContainsJoin,
    NativeQuery,
    QueryEngine,
    QueryError,
    SqlQuery,
    Table,
    TableRef,
)
from databaker.resources.s3_layer_store import S3LayerStore

__all__ = [
    "AthenaQueryEngine",
    "ContainsJoin",
    "DuckDBQueryEngine",
    "LayerStore",
    "LayerStoreError",
    "LocalLayerStore",
    "NativeQuery",
    "QueryEngine",
    "QueryError",
    "Replacement",
    "S3LayerStore",
    "SqlQuery",
    "Table",
    "TableRef",
]
