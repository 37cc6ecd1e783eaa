"""Per-language toolchains: detect, build the test env, run tests, lint, format, SAST.

Every language reports through the same `TestReport` and `GateResult` shapes.
"""

from council.toolchains.base import Toolchain, detect_toolchains, toolchain_for
from council.toolchains.gates import Finding, GateResult
from council.toolchains.java import JavaToolchain
from council.toolchains.java_env import JavaEnv
from council.toolchains.java_errors import classify_compile_error
from council.toolchains.junit import JUnitError, parse_junit
from council.toolchains.node import NodeToolchain
from council.toolchains.node_env import NodeEnv
from council.toolchains.python import PythonToolchain
from council.toolchains.python_env import PythonEnv
from council.toolchains.python_errors import classify_collection_error
from council.toolchains.report import TestCase, TestReport

__all__ = [
    "Finding",
    "GateResult",
    "JavaEnv",
    "JavaToolchain",
    "JUnitError",
    "NodeEnv",
    "NodeToolchain",
    "PythonEnv",
    "PythonToolchain",
    "TestCase",
    "TestReport",
    "Toolchain",
    "classify_collection_error",
    "classify_compile_error",
    "detect_toolchains",
    "parse_junit",
    "toolchain_for",
]
