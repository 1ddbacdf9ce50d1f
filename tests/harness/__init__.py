"""Test harness for todod: throwaway PostgreSQL, Apache Kafka and todod
processes on loopback.

Used by the integration tests (tests/integration) and the benchmarks (bench/)."""

from .kafka import KafkaServer
from .pg import PostgresServer, query, scalar
from .todod import (Response, Todod, binary, builddir, find_plugin, render_config, start_all,
                    task_id)
from .util import ServiceUnavailable, free_port, in_ci, lead_time, wait_until

__all__ = ["KafkaServer", "PostgresServer", "Response", "ServiceUnavailable", "Todod", "binary",
           "builddir", "find_plugin", "free_port", "in_ci", "lead_time", "query", "render_config",
           "scalar", "start_all", "task_id", "wait_until"]
