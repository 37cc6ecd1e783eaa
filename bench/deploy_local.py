"""Local deploy bench: examples/profile-service from git export to healthy, and a release that
crashes on start (a missing environment variable) detected and rolled back.

Prints, over N rounds: the first provision (env build, cold cache) once, then per round the
provision of an already-built release, start -> healthy, and for the bad release the time from
start to "unhealthy" plus the rollback, with the old release checked still answering. Then the
whole command a user runs, `council deploy` (a fresh process: start-up, the run's record,
worktree, artefacts, release, health), once on the example and once on the crashing version,
which DevOps diagnoses and Builder fixes (models: the scripted server of tests/fakes, so the
figure is council's own time, not a model's). Usage:

    python bench/deploy_local.py [--rounds 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from council.targets.local import LocalTarget

DIAGNOSIS = json.dumps(
    {
        "stage": "health",
        "category": "configuration",
        "evidence": ["KeyError: 'PROFILE_DB_URL'"],
        "cause": "app/main.py reads PROFILE_DB_URL at import and it is not set",
        "fix": "read it with a default",
        "files": ["app/main.py"],
        "commands": [],
        "retry": False,
    }
)
PATCH = """```diff
--- a/app/main.py
+++ b/app/main.py
@@ -26,2 +26,2 @@
 import os
-REQUIRED = os.environ["PROFILE_DB_URL"]
+REQUIRED = os.environ.get("PROFILE_DB_URL", "sqlite:///profiles.db")
```
"""
APPROVE = json.dumps({"verdict": "approve", "summary": "ok", "comments": []})

ROOT = Path(__file__).resolve().parents[1]
CRASH = '\nimport os\nREQUIRED = os.environ["PROFILE_DB_URL"]\n'


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=b@example.com", "commit", "-qm", message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="keep files here (default: tmp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    repo = work / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(
        ROOT / "examples" / "profile-service", repo, ignore=shutil.ignore_patterns("__pycache__")
    )
    git(repo, "init", "-q")
    commit(repo, "profile service")
    good_ref = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    main_py = repo / "app" / "main.py"
    main_py.write_text(main_py.read_text() + CRASH)
    commit(repo, "read the database URL")

    target = LocalTarget(state_dir=work / "state", cache_dir=work / "cache")
    started = time.perf_counter()
    good = target.provision(repo, ref=good_ref)
    bad = target.provision(repo)
    first_provision = time.perf_counter() - started

    provision, healthy, detect, rollback = [], [], [], []
    try:
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            good = target.provision(repo, ref=good_ref)
            t1 = time.perf_counter()
            live = target.start(good)
            report = target.health(live, timeout_s=60)
            t2 = time.perf_counter()
            assert report.healthy, report.error
            provision.append(t1 - t0)
            healthy.append(t2 - t1)

            t3 = time.perf_counter()
            attempt = target.start(bad)
            failed = target.health(attempt, timeout_s=60)
            t4 = time.perf_counter()
            assert not failed.healthy
            back = target.rollback()
            t5 = time.perf_counter()
            assert back == live and httpx.get(back.url + "/api/v1/users/1").status_code == 200
            detect.append(t4 - t3)
            rollback.append(t5 - t4)
            target.stop()
    finally:
        target.stop()

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):6.2f}s (min {min(values):.2f}, max {max(values):.2f})"

    print(f"local target, examples/profile-service, {args.rounds} rounds (median)")
    print(f"  first provision (env + server layer, cold cache): {first_provision:6.2f}s")
    print(f"  provision (env cached):                           {med(provision)}")
    print(f"  start -> healthy:                                 {med(healthy)}")
    print(f"  bad release: start -> detected unhealthy:         {med(detect)}")
    print(f"  rollback (old release still serving):             {med(rollback)}")
    total = [a + b for a, b in zip(detect, rollback, strict=True)]
    print(f"  bad release -> rolled back, total:                {med(total)}")
    try:
        whole_command(repo, good_ref, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def whole_command(repo: Path, good_ref: str, work: Path) -> None:
    """`council deploy` as a user runs it: healthy at once, then crash -> diagnosed -> fixed."""
    sys.path.insert(0, str(ROOT))
    from tests.fakes import council_script as cs
    from tests.fakes.model_server import ScriptedModelServer

    bad_ref = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    env = {**os.environ, "COUNCIL_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    council = [sys.executable, "-m", "council.cli", "deploy", "--json"]
    with ScriptedModelServer() as server:
        config = json.loads(cs.council_yaml(server))
        devops = {**config["models"][0], "model_name": "devops"}
        devops["litellm_params"] = {**devops["litellm_params"], "model": "openai/devops"}
        config["models"].append(devops)
        config["personas"]["devops"] = {"model": "devops", "temperature": 0.0, "max_tokens": 900}
        (repo / "council.yaml").write_text(json.dumps(config))
        times = {}
        try:
            for name, ref in (("healthy", good_ref), ("healed", bad_ref)):
                git(repo, "checkout", "-q", "--detach", ref)
                git(repo, "checkout", "-q", "-B", f"bench-{name}")
                (repo / "deploy.yaml").write_text("deployment:\n  retry_delay_seconds: 0\n")
                git(repo, "add", "deploy.yaml")  # council.yaml stays untracked: it names the server
                git(
                    repo,
                    "-c",
                    "user.name=bench",
                    "-c",
                    "user.email=b@example.com",
                    "commit",
                    "-qm",
                    "deploy settings",
                )
                if name == "healed":
                    server.script("devops", DIAGNOSIS)
                    server.script("builder", PATCH)
                    server.script("guardian", APPROVE)
                t0 = time.perf_counter()
                done = subprocess.run(council, cwd=repo, env=env, capture_output=True, text=True)
                times[name] = time.perf_counter() - t0
                assert done.returncode == 0, done.stderr[-2000:]
        finally:
            subprocess.run(
                [sys.executable, "-m", "council.cli", "deploy", "stop"],
                cwd=repo,
                env=env,
                capture_output=True,
            )
    print("council deploy --target local (whole command, fresh process, scripted models)")
    print(f"  example -> healthy:                               {times['healthy']:6.2f}s")
    print(f"  crash on start -> diagnosed, fixed, healthy:      {times['healed']:6.2f}s")


if __name__ == "__main__":
    main()
