"""The Jinja environment for the package's templates under infra/templates/<folder>: strict
(a missing variable is an error, not an empty string), no HTML escaping (Dockerfiles, YAML,
HCL), and a `shell_quote` filter."""

from __future__ import annotations

import functools
import shlex

from jinja2 import Environment, PackageLoader, StrictUndefined


@functools.cache
def environment(folder: str) -> Environment:
    env = Environment(
        loader=PackageLoader("council.infra", f"templates/{folder}"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # not HTML  # nosec B701
    )
    env.filters["shell_quote"] = shlex.quote
    return env
