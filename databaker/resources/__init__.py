"""Resources: one module per external system, each behind a small abstract seam."""

from databaker.resources.duckdb_engine import DuckDBQueryEngine
from databaker.resources.layer_store import LayerStore, LayerStoreError, Replacement
from databaker.resources.local_layer_store import LocalLayerStore
from databaker.resources.query_engine import QueryEngine, QueryError, SqlQuery

__all__ = [
    "DuckDBQueryEngine",
    "LayerStore",
    "LayerStoreError",
    "LocalLayerStore",
    "QueryEngine",
    "QueryError",
    "Replacement",
    "SqlQuery",
]
