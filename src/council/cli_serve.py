"""`council serve`, `council worker`, `council submit` and `council keys`: the server's commands.

Imports stay inside the commands: fastapi, uvicorn, celery and httpx are loaded only by the
command that needs them, so `council --help` stays fast.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from council.errors import UsageError

DEFAULT_PORT = 8700
DEFAULT_SERVER = f"http://127.0.0.1:{DEFAULT_PORT}"

DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="The server's folder: its database, clones of URL repositories, run logs "
        "(default $COUNCIL_SERVER_DIR or ~/.local/share/council/server).",
        show_default=False,
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="A database URL instead of <data>/server.db (e.g. postgresql://...).",
        show_default=False,
    ),
]
LeaseOpt = Annotated[
    float, typer.Option(help="Seconds a worker's hold on a run lasts without renewal.")
]

keys_app = typer.Typer(
    help="API keys of the server: each limited to its repositories and a request rate.",
    no_args_is_help=True,
)


def data_dir(path: Path | None) -> Path:
    if path is None:
        env = os.environ.get("COUNCIL_SERVER_DIR")
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(env) if env else Path(base) / "council" / "server"
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_url(data: Path, db: str | None) -> str:
    return db or os.environ.get("COUNCIL_SERVER_DB") or f"sqlite:///{data / 'server.db'}"


def _open_store(data: Path, db: str | None):
    from council.store import Store

    return Store(db_url(data, db))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    workers: Annotated[
        int, typer.Option(help="Runs executed at once in this process (0: only Celery workers).")
    ] = 2,
    broker: Annotated[
        str | None,
        typer.Option(
            help="Celery broker (redis://...) for `council worker`s; default $COUNCIL_BROKER_URL.",
            show_default=False,
        ),
    ] = None,
    data: DataOpt = None,
    db: DbOpt = None,
    lease: LeaseOpt = 30.0,
) -> None:
    """The API, the dashboard and the embedded worker pool, on 127.0.0.1:8700 by default."""
    if workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {workers}")
    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    broker = broker or os.environ.get("COUNCIL_BROKER_URL")
    if workers == 0 and not broker:
        raise UsageError(
            "--workers 0 leaves nobody to run the queue",
            hint="give --broker redis://... (and start `council worker`s), or --workers N",
        )
    folder = data_dir(data)
    store = _open_store(folder, db)
    from council.server.keys import KeyStore

    if not _is_loopback(host) and not KeyStore(store).any_active():
        raise UsageError(
            f"refusing to serve on {host} with no API key: anyone who can reach it could run "
            "code on this machine",
            hint="create one first (`council keys create NAME --repo PATH_OR_URL`), or serve "
            "on 127.0.0.1",
        )
    import uvicorn

    from council.queue.pool import WorkerPool
    from council.queue.supervise import WorkerSettings
    from council.server.app import ServerState, create_app

    settings = WorkerSettings(db_url=store.url, log_dir=folder / "logs", lease_s=lease)
    pool = WorkerPool(store, workers, settings) if workers else None
    state = ServerState(store=store, data_dir=folder, workers=workers)
    if broker:
        from council.queue.celery_app import TASK, make_celery

        celery = make_celery(broker)
        state.dispatch = lambda run_id: celery.send_task(TASK, args=[run_id])
    elif pool is not None:
        state.dispatch = lambda _run_id: pool.wake()
    app = create_app(state)
    if pool is not None:
        pool.queue.requeue_expired()  # runs of a server that died: back in line
        pool.start()
    print(f"council serve: http://{host}:{port} (workers: {workers}, data: {folder})", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if pool is not None:
            pool.stop()  # running runs are interrupted and re-queued for the next start


def worker(
    broker: Annotated[
        str | None,
        typer.Option(
            help="Celery broker URL (redis://...); default $COUNCIL_BROKER_URL.", show_default=False
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Runs executed at once.")] = 1,
    data: DataOpt = None,
    db: DbOpt = None,
    lease: LeaseOpt = 30.0,
    name: Annotated[str | None, typer.Option(help="Worker name.", show_default=False)] = None,
) -> None:
    """A Celery worker executing queued runs (the server's database must be reachable)."""
    broker = broker or os.environ.get("COUNCIL_BROKER_URL")
    if not broker:
        raise UsageError("give --broker redis://HOST:PORT/N (or set COUNCIL_BROKER_URL)")
    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
    folder = data_dir(data)
    store = _open_store(folder, db)
    from council.queue.celery_app import configure, make_celery, start_reaper
    from council.queue.supervise import WorkerSettings

    settings = WorkerSettings(db_url=store.url, log_dir=folder / "logs", lease_s=lease)
    app = make_celery(broker)
    configure(store, settings)
    start_reaper(app, store, settings)
    argv = ["worker", "--pool=threads", f"--concurrency={concurrency}", "--loglevel=WARNING"]
    if name:
        argv += ["--hostname", name]
    app.worker_main(argv)


def submit(
    feature: Annotated[
        str, typer.Argument(help="The feature request (empty for --kind heal).")
    ] = "",
    repo: Annotated[
        str, typer.Option("--repo", "-r", help="A path on the server's machine, or a git URL.")
    ] = ".",
    server: Annotated[
        str | None,
        typer.Option(
            help=f"Server URL (default $COUNCIL_SERVER or {DEFAULT_SERVER}).", show_default=False
        ),
    ] = None,
    kind: Annotated[str, typer.Option(help="run or heal.")] = "run",
    tests: Annotated[
        list[str] | None, typer.Option("--tests", help="Tests-given mode (as `council run`).")
    ] = None,
    max_iterations: Annotated[int | None, typer.Option(help="Most iterations.")] = None,
    budget: Annotated[float | None, typer.Option(help="Budget in USD.")] = None,
    pr: Annotated[bool, typer.Option("--pr", help="Open a pull request.")] = False,
    gates: Annotated[
        str | None,
        typer.Option(help="--kind heal: comma-separated gates to run (default: all)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream the run's events until it ends.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON lines.")] = False,
) -> None:
    """Submit a run to a council server; prints its id (--follow: streams it to its end)."""
    from council.queue.submit import is_url
    from council.server.client import Client

    if not is_url(repo):
        repo = str(Path(repo).expanduser().resolve())
    client = Client(server or os.environ.get("COUNCIL_SERVER") or DEFAULT_SERVER)
    body = {
        "repo": repo,
        "kind": kind,
        "feature": feature,
        "tests": tests or [],
        "max_iterations": max_iterations,
        "budget": budget,
        "pr": pr,
        "gates": [g.strip() for g in gates.split(",") if g.strip()] if gates else None,
    }
    run = client.submit(body)
    print(run["id"], flush=True)
    if not follow:
        return
    status = client.follow(run["id"], as_json=as_json)
    raise typer.Exit(0 if status == "green" else 1)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    repo: Annotated[
        list[str],
        typer.Option("--repo", help="A repository the key may use (path, URL or glob); repeat."),
    ],
    rate: Annotated[int, typer.Option(help="Requests a minute.")] = 120,
    data: DataOpt = None,
    db: DbOpt = None,
) -> None:
    """Create a key; its token is printed once and never stored."""
    from council.queue.submit import is_url, repo_key
    from council.server.keys import KeyStore

    # Paths are named as the server sees them (resolved); globs and URLs as given.
    repos = [r if is_url(r) or any(c in r for c in "*?[") else repo_key(r) for r in repo]
    key, token = KeyStore(_open_store(data_dir(data), db)).create(name, repos, rate)
    print(token)
    print(
        f"key {key.id} ({key.name}): {', '.join(key.repos)}; {key.rate_per_minute}/min",
        file=sys.stderr,
    )


@keys_app.command("list")
def keys_list(
    data: DataOpt = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Keys: id, name, repositories, rate, revoked or not (never the secret)."""
    from council.server.keys import KeyStore

    keys = KeyStore(_open_store(data_dir(data), db)).list()
    if as_json:
        print(json.dumps([vars(k) for k in keys]))
        return
    if not keys:
        print("no keys (the server is open on loopback only)")
    for k in keys:
        state = "revoked" if k.revoked_at else "active"
        print(f"{k.id}  {state:7}  {k.rate_per_minute:>5}/min  {k.name}: {', '.join(k.repos)}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `council keys list`).")],
    data: DataOpt = None,
    db: DbOpt = None,
) -> None:
    """Revoke a key: its next request is refused."""
    from council.server.keys import KeyStore

    key = KeyStore(_open_store(data_dir(data), db)).revoke(key_id)
    print(f"revoked {key.id} ({key.name})")


def register(app: typer.Typer) -> None:
    """Add the server's commands to the `council` app."""
    app.command()(serve)
    app.command()(worker)
    app.command()(submit)
    app.add_typer(keys_app, name="keys")
