"""Two more broken services healed by `council deploy --target local`, for real:

- an import error at start-up (the code imports a package no dependency provides): recognised
  without a model, the package declared in pyproject.toml, the next release's env built with it;
- a service that binds a port of its own (it runs its own server when imported) instead of the
  one the target gives it: recognised as listening on the wrong port, DevOps diagnoses it,
  Builder's fix (reviewed by Guardian) makes it serve where it is told.

(The crash on a missing environment variable is test_deploy_flow's.)"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from council.cli_deploy import local_target
from council.targets.supervise import free_port
from tests.deploy_fixtures import deploy_cli
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer
from tests.test_deploy_flow import APPROVE, _config
from tests.test_target_local import _commit, _git

OWN_SERVER = '\nimport uvicorn\nuvicorn.run(app, host="127.0.0.1", port={port})\n'
# The default health timeout: neither failure may cost it (an exit, or a service that says it
# serves elsewhere, ends the probe early).
DEPLOY_YAML = (
    "health_timeout_seconds: 60\ndeployment:\n  max_retries: 1\n  retry_delay_seconds: 0\n"
)
WRONG_PORT_DIAGNOSIS = """```json
{{"stage": "health", "category": "code",
  "cause": "app/main.py calls uvicorn.run at import, so the service serves on {port}",
  "evidence": ["Uvicorn running on http://127.0.0.1:{port}"],
  "fix": "run the server only when the module is executed as a script",
  "files": ["app/main.py"], "commands": [], "retry": false}}
```"""
WRONG_PORT_PATCH = """The module starts its own server when it is imported. Guard it:

```diff
--- a/app/main.py
+++ b/app/main.py
@@ -25,2 +25,3 @@
 import uvicorn
-uvicorn.run(app, host="127.0.0.1", port={port})
+if __name__ == "__main__":
+    uvicorn.run(app, host="127.0.0.1", port={port})
```
"""


def _broken(root: Path, server: ScriptedModelServer, extra: str, *, prepend: bool = False) -> Path:
    repo = cs.make_repo(root / "svc")
    main = repo / "app" / "main.py"
    text = main.read_text(encoding="utf-8")
    main.write_text(extra + text if prepend else text + extra, encoding="utf-8")
    (repo / "deploy.yaml").write_text(DEPLOY_YAML, encoding="utf-8")
    _commit(repo, "a broken start")
    (repo / "council.yaml").write_text(_config(server), encoding="utf-8")
    return repo


def test_an_import_error_at_start_up_is_healed_by_declaring_the_package(
    tmp_path: Path, server: ScriptedModelServer, cache: Path
):
    repo = _broken(tmp_path, server, "import yaml  # the settings file is YAML\n", prepend=True)
    asked = len(server.requests)
    try:
        code, events, err = deploy_cli(repo, cache)
        assert code == 0, err[-3000:]
        diagnosed = [e for e in events if e.get("kind") == "deploy_diagnosed"]
        assert [(d["source"], d["category"]) for d in diagnosed] == [("known", "dependency")]
        assert "ModuleNotFoundError: No module named 'yaml'" in diagnosed[0]["evidence"]
        recovery = next(e for e in events if e.get("kind") == "deploy_recovery")
        assert (recovery["action"], recovery["applied"]) == ("add_dependency", True)
        outcome = events[-1]["outcome"]
        assert httpx.get(outcome["url"] + "/api/v1/users/1").json()["username"] == "ada"
        assert "PyYAML" in _git(repo, "show", f"{outcome['branch']}:pyproject.toml")
        assert len(server.requests) == asked  # no model was asked
    finally:
        local_target(repo).stop()


def test_a_service_binding_its_own_port_is_diagnosed_and_fixed(
    tmp_path: Path, server: ScriptedModelServer, cache: Path
):
    port = free_port()
    repo = _broken(tmp_path, server, OWN_SERVER.format(port=port))
    server.script("devops", WRONG_PORT_DIAGNOSIS.format(port=port))
    server.script("builder", WRONG_PORT_PATCH.format(port=port))
    server.script("guardian", APPROVE)
    try:
        code, events, err = deploy_cli(repo, cache)
        assert code == 0, err[-3000:]
        health = [e for e in events if e.get("kind") == "health_checked"]
        assert [h["healthy"] for h in health] == [False, True]
        assert health[0]["exit_code"] is None  # it was running, just not where it was asked
        assert f"the service listens on port {port}" in health[0]["error"]
        assert health[0]["elapsed_s"] < 30  # given up early, not after the 60 s timeout
        known, model = [e for e in events if e.get("kind") == "deploy_diagnosed"]
        assert (known["source"], known["category"]) == ("known", "network")
        assert known["cause"].startswith(f"the service listens on port {port}, not on")
        assert (model["source"], model["category"]) == ("model", "code")
        devops = next(r for r in server.requests if r.get("model") == "devops")
        assert f"Uvicorn running on http://127.0.0.1:{port}" in json.dumps(devops["messages"])
        outcome = events[-1]["outcome"]
        assert httpx.get(outcome["url"] + "/health").json() == {"status": "ok"}
        fixed = _git(repo, "show", f"{outcome['branch']}:app/main.py")
        assert 'if __name__ == "__main__":' in fixed
    finally:
        local_target(repo).stop()
