"""`council doit`: a cloud request in plain words carried out on the shared run lifecycle."""

from council.pipelines.doit.flow import DoitFlow

__all__ = ["DoitFlow"]
