"""The sandbox really confines commands: timeouts kill trees, limits bite, no network, ro fs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.events import CommandRun, Notice
from council.sandbox import CommandResult, Limits, capabilities, cgroups, probe, read_only, run
from council.sandbox import runner as runner_mod
from tests.fakes import attacks

PY = sys.executable
# Backends that isolate on this machine (the set-up script installs bubblewrap; unshare needs
# root or user namespaces). "none" always runs, to prove degraded mode still works and says so.
ISOLATING = [b for b in ("bwrap", "unshare") if probe(b).backend == b]
ALL_BACKENDS = [*ISOLATING, "none"]


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest):
    return probe(request.param)


@pytest.fixture(params=ISOLATING)
def isolating(request: pytest.FixtureRequest):
    return probe(request.param)


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "worktree"
    path.mkdir()
    return path


def py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def wait_gone(marker: str, within_s: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


SPAWN_GRANDCHILD = """
import subprocess, sys, time
marker = sys.argv[1]
subprocess.Popen([sys.executable, "-c", "import time\\ntime.sleep(1000)", marker])
print("spawned", flush=True)
time.sleep(1000)
"""


def test_timeout_kills_the_whole_process_group(backend, worktree: Path) -> None:
    marker = f"council-test-{uuid.uuid4().hex}"
    started = time.monotonic()
    result = run([PY, "-c", SPAWN_GRANDCHILD, marker], worktree, timeout_s=1.5, sandbox=backend)
    assert time.monotonic() - started < 10
    assert result.timed_out
    assert result.exit_code is None
    assert result.signal in (signal.SIGTERM, signal.SIGKILL)
    assert "spawned" in result.stdout
    assert wait_gone(marker) == []


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(backend, worktree: Path) -> None:
    marker = f"council-test-{uuid.uuid4().hex}"
    code = "import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(1000)"
    result = run([PY, "-c", code, marker], worktree, timeout_s=1.0, sandbox=backend)
    assert result.timed_out
    assert wait_gone(marker) == []


def test_processes_left_behind_are_killed_when_the_command_exits(backend, worktree: Path) -> None:
    marker = f"council-test-{uuid.uuid4().hex}"
    code = """
    import subprocess, sys
    subprocess.Popen([sys.executable, "-c", "import time\\ntime.sleep(1000)", sys.argv[1]])
    print("bye")
    """
    started = time.monotonic()
    result = run([*py(code), marker], worktree, timeout_s=30, sandbox=backend)
    # The orphan holds stdout open; run() must not wait for it.
    assert time.monotonic() - started < 10
    assert result.exit_code == 0 and not result.timed_out
    assert wait_gone(marker) == []


def test_exit_code_output_and_tail(backend, worktree: Path) -> None:
    code = """
    import sys
    for i in range(100):
        print(f"line {i}")
    print("oops", file=sys.stderr)
    sys.exit(3)
    """
    result = run(py(code), worktree, timeout_s=30, sandbox=backend)
    assert result.exit_code == 3 and result.signal is None and not result.ok
    assert result.stdout.startswith("line 0\n")
    assert result.stderr == "oops\n"
    assert result.output.endswith("line 99\noops\n")
    assert result.tail(2) == "line 99\noops"
    assert result.cwd == str(worktree.resolve())


def test_death_by_signal_is_reported_as_signal(backend, worktree: Path) -> None:
    result = run(py("import os\nos.kill(os.getpid(), 9)"), worktree, timeout_s=30, sandbox=backend)
    assert result.exit_code is None
    assert result.signal == signal.SIGKILL
    assert not result.timed_out


def test_memory_limit(backend, worktree: Path) -> None:
    code = """
    try:
        block = bytearray(512 * 1024 * 1024)
    except MemoryError:
        print("memory refused")
        raise SystemExit(7)
    print("allocated")
    """
    result = run(py(code), worktree, timeout_s=60, limits=Limits(memory_mb=128), sandbox=backend)
    if cgroups.support().memory is None:
        assert result.exit_code == 7, result.output
        assert "memory refused" in result.stdout
    else:
        # The kernel kills the hog at the cgroup's limit, and the result says which limit.
        assert result.signal == signal.SIGKILL and not result.ok, result.output
        assert "memory limit of 128 MB reached" in result.notes
        assert "allocated" not in result.stdout


def test_file_size_limit(backend, worktree: Path) -> None:
    code = """
    try:
        with open("big.bin", "wb") as fh:
            fh.write(b"x" * (3 * 1024 * 1024))
    except OSError as exc:
        print("refused", exc.errno)
        raise SystemExit(7)
    """
    result = run(py(code), worktree, timeout_s=60, limits=Limits(fsize_mb=1), sandbox=backend)
    assert result.exit_code == 7, result.output
    assert "refused 27" in result.stdout  # EFBIG
    assert (worktree / "big.bin").stat().st_size <= 1024 * 1024


def test_cpu_limit_stops_a_busy_loop_before_the_timeout(backend, worktree: Path) -> None:
    result = run(
        py("while True:\n    pass"), worktree, timeout_s=60, limits=Limits(cpu_s=1), sandbox=backend
    )
    assert not result.timed_out
    assert result.signal in (signal.SIGXCPU, signal.SIGKILL)
    assert result.duration_s < 30


def test_limits_are_set_in_the_child(backend, worktree: Path) -> None:
    code = """
    import resource as r
    print(r.getrlimit(r.RLIMIT_CPU)[0], r.getrlimit(r.RLIMIT_DATA)[0],
          r.getrlimit(r.RLIMIT_FSIZE)[0], r.getrlimit(r.RLIMIT_NPROC)[0])
    """
    limits = Limits(cpu_s=11, memory_mb=1000, nproc=77, fsize_mb=5)
    result = run(py(code), worktree, timeout_s=30, limits=limits, sandbox=backend)
    cpu, data, fsize, nproc = map(int, result.stdout.split())
    assert (cpu, fsize) == (11, 5 * 1024 * 1024)
    # With a memory cgroup the cgroup is the limit (RLIMIT_DATA would only raise MemoryError).
    assert data == (1000 * 1024 * 1024 if cgroups.support().memory is None else -1)
    # Non-root: 77 on top of the processes the user already runs (RLIMIT_NPROC is per uid).
    assert nproc == 77 if os.geteuid() == 0 else nproc >= 77


@pytest.fixture
def tcp_server() -> Iterator[int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(b"hello from the host\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()


CONNECT = """
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as s:
        print("connected:", s.recv(100).decode().strip())
except OSError as exc:
    print("failed:", exc)
    raise SystemExit(9)
"""


def test_no_network_cannot_reach_a_host_server(isolating, worktree: Path, tcp_server: int) -> None:
    result = run([PY, "-c", CONNECT, str(tcp_server)], worktree, timeout_s=30, sandbox=isolating)
    assert result.network_isolated
    assert result.exit_code == 9, result.output
    assert "connected" not in result.stdout


def test_network_true_reaches_the_host_server(backend, worktree: Path, tcp_server: int) -> None:
    result = run(
        [PY, "-c", CONNECT, str(tcp_server)], worktree, timeout_s=30, network=True, sandbox=backend
    )
    assert result.exit_code == 0, result.output
    assert "connected: hello from the host" in result.stdout
    assert not result.network_isolated


def test_degraded_mode_runs_and_says_so(worktree: Path, tcp_server: int) -> None:
    none = probe("none")
    assert none.degraded and "NO ISOLATION" in (none.notice or "")
    events: list = []
    result = run(
        [PY, "-c", CONNECT, str(tcp_server)],
        worktree,
        timeout_s=30,
        sandbox=none,
        emit=events.append,
    )
    # Without namespaces the command does reach the network: the result must not claim otherwise.
    assert result.exit_code == 0
    assert not result.network_isolated and not result.fs_isolated
    assert "network not isolated" in result.notes and "filesystem not isolated" in result.notes


def test_degraded_notice_is_emitted_once(worktree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_mod, "_notice_shown", False)
    events: list = []
    for _ in range(2):
        run(["true"], worktree, timeout_s=10, sandbox=probe("none"), emit=events.append)
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "NO ISOLATION" in notices[0].message


WRITE = """
import sys
path, text = sys.argv[1], sys.argv[2]
try:
    with open(path, "w") as fh:
        fh.write(text)
except OSError as exc:
    print("refused:", exc)
    raise SystemExit(5)
print("wrote", path)
"""


@pytest.fixture
def outside_dir() -> Iterator[Path]:
    # Outside /tmp on purpose: bubblewrap hides the host's /tmp entirely, and this dir must be
    # visible (read-only) to prove the write is refused rather than just not found.
    path = Path(tempfile.mkdtemp(prefix="council-outside-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_writes_outside_the_worktree_fail(
    isolating, worktree: Path, tmp_path_factory, outside_dir: Path
) -> None:
    for victim in (outside_dir / "victim.txt", tmp_path_factory.mktemp("other") / "victim.txt"):
        victim.write_text("original\n")
        before = victim.stat().st_mtime_ns
        outside = run(
            [PY, "-c", WRITE, str(victim), "pwned"], worktree, timeout_s=30, sandbox=isolating
        )
        assert outside.fs_isolated
        assert outside.exit_code == 5, outside.output
        assert victim.read_text() == "original\n"
        assert victim.stat().st_mtime_ns == before
        if victim.parent == outside_dir:
            assert "Read-only file system" in outside.stdout

    # New files outside fail too. Next to the worktree (under /tmp) bubblewrap may let the write
    # land in the private tmp, but never on the host.
    fresh = outside_dir / "new.txt"
    assert (
        run([PY, "-c", WRITE, str(fresh), "x"], worktree, timeout_s=30, sandbox=isolating).exit_code
        == 5
    )
    assert not fresh.exists()
    sibling = worktree.parent / "sibling.txt"
    run([PY, "-c", WRITE, str(sibling), "x"], worktree, timeout_s=30, sandbox=isolating)
    assert not sibling.exists()

    inside = run(
        [PY, "-c", WRITE, "new.py", "print(1)\n"], worktree, timeout_s=30, sandbox=isolating
    )
    assert inside.exit_code == 0, inside.output
    assert (worktree / "new.py").read_text() == "print(1)\n"
    nested = worktree / "pkg" / "mod.py"
    nested.parent.mkdir()
    inside = run(
        [PY, "-c", WRITE, str(nested), "x = 1\n"], worktree, timeout_s=30, sandbox=isolating
    )
    assert inside.exit_code == 0, inside.output
    assert nested.read_text() == "x = 1\n"


def test_extra_writable_paths_home_and_private_tmp(isolating, worktree: Path, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    code = """
    import os, sys, tempfile
    open(os.path.join(sys.argv[1], "entry"), "w").write("cached")
    open(os.path.expanduser("~/.rc"), "w").write("home")
    with tempfile.NamedTemporaryFile(delete=False) as fh:
        fh.write(b"tmp")
    print(os.environ["HOME"], fh.name)
    """
    result = run(
        [*py(code), str(cache)], worktree, timeout_s=30, writable=[cache], sandbox=isolating
    )
    assert result.exit_code == 0, result.output
    assert (cache / "entry").read_text() == "cached"
    home, tmp_file = result.stdout.split()
    assert home != os.path.expanduser("~")
    # The private HOME and tmp vanish with the run: nothing lands on the host.
    assert not Path(home, ".rc").exists()
    assert not Path(tmp_file).exists()


def test_fs_not_isolated_without_namespaces_is_reported(worktree: Path, tmp_path_factory) -> None:
    target = tmp_path_factory.mktemp("elsewhere") / "f.txt"
    result = run([PY, "-c", WRITE, str(target), "x"], worktree, timeout_s=30, sandbox=probe("none"))
    assert result.exit_code == 0 and target.read_text() == "x"  # degraded: it could write
    assert result.fs_isolated is False


def test_environment_is_scrubbed_with_overrides(
    backend, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-should-never-leak-1234567890")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    code = """
    import json, os
    print(json.dumps({k: os.environ.get(k) for k in
        ["OPENAI_API_KEY", "HARMLESS_SETTING", "EXTRA", "HOME", "PWD"]}))
    """
    result = run(py(code), worktree, timeout_s=30, env={"EXTRA": "1"}, sandbox=backend)
    import json

    seen = json.loads(result.stdout)
    assert seen["OPENAI_API_KEY"] is None
    assert seen["HARMLESS_SETTING"] == "visible"
    assert seen["EXTRA"] == "1"
    assert seen["HOME"] != os.environ.get("HOME")
    assert seen["PWD"] == str(worktree.resolve())


def test_output_is_capped(backend, worktree: Path) -> None:
    code = """
    import sys
    chunk = "y" * 1023 + "\\n"
    for _ in range(5 * 1024):
        sys.stdout.write(chunk)
    print("THE END")
    """
    result = run(py(code), worktree, timeout_s=60, output_cap_bytes=64 * 1024, sandbox=backend)
    assert result.exit_code == 0
    assert len(result.stdout) < 70 * 1024
    assert result.stdout.startswith("[... ") and "earlier bytes dropped" in result.stdout
    assert result.stdout.endswith("THE END\n")


def test_command_run_event_is_redacted(worktree: Path) -> None:
    events: list = []
    token = "ghp_" + "A" * 36
    result = run(
        ["sh", "-c", 'echo "token is $MY_SECRET"; echo ghp_$1', "sh", token[4:]],
        worktree,
        timeout_s=30,
        env={"MY_SECRET": "hunter2hunter2"},
        emit=events.append,
    )
    assert "hunter2hunter2" in result.stdout  # the result itself is raw
    runs = [e for e in events if isinstance(e, CommandRun)]
    assert len(runs) == 1
    event = runs[0]
    assert event.exit_code == 0 and event.cwd == str(worktree.resolve())
    assert "hunter2hunter2" not in event.output_tail and "[REDACTED]" in event.output_tail
    assert token not in event.output_tail
    assert event.argv[0] == "sh" and event.duration_s >= 0


def test_missing_command_is_127(backend, worktree: Path) -> None:
    events: list = []
    result = run(["no-such-tool-xyz"], worktree, timeout_s=5, sandbox=backend, emit=events.append)
    assert result.exit_code == 127
    assert "command not found: no-such-tool-xyz" in result.stderr
    assert any(isinstance(e, CommandRun) and e.exit_code == 127 for e in events)


def test_bad_arguments(worktree: Path) -> None:
    with pytest.raises(ValueError):
        run([], worktree, timeout_s=1)
    with pytest.raises(ValueError):
        run(["true"], worktree / "missing", timeout_s=1)


def test_capabilities_are_probed_once_and_match_a_backend() -> None:
    first = capabilities()
    assert capabilities() is first
    assert first.backend in ("bwrap", "unshare", "none")
    assert (first.notice is None) == (not first.degraded)
    result = run(["true"], Path.cwd(), timeout_s=10)
    assert isinstance(result, CommandResult) and result.backend == first.backend


KILL_PARENT = """
import os, signal, sys
council, marker = int(sys.argv[1]), sys.argv[2]
print("parent", os.getppid(), "sees council", os.path.exists(f"/proc/{council}"), flush=True)
targets = {os.getppid(), council}
# Hunt for council by scanning /proc (for a marker only, so a broken sandbox harms nothing else).
for name in os.listdir("/proc"):
    try:
        if name.isdigit() and marker.encode() in open(f"/proc/{name}/cmdline", "rb").read():
            targets.add(int(name))
    except OSError:
        pass
for pid in sorted(targets - {os.getpid()}):
    try:
        os.kill(pid, signal.SIGKILL)
        print("sent", pid, flush=True)
    except OSError as exc:
        print("refused", pid, exc.errno, flush=True)
print("still running", flush=True)
"""


def test_code_that_kills_its_parent_never_reaches_council(isolating, worktree: Path) -> None:
    marker = f"council-stand-in-{uuid.uuid4().hex}"
    stand_in = subprocess.Popen([PY, "-c", "import time\ntime.sleep(60)", marker])
    try:
        result = run(
            [PY, "-c", KILL_PARENT, str(os.getpid()), marker],
            worktree,
            timeout_s=30,
            sandbox=isolating,
        )
        assert stand_in.poll() is None, "a process outside the sandbox was killed"
    finally:
        stand_in.kill()
        stand_in.wait()
    # We are still here to look: the kill went to the sandbox's own pid 1, which ignores it.
    assert result.exit_code == 0, result.output
    assert "parent 1 sees council False" in result.stdout
    assert "still running" in result.stdout


def test_without_namespaces_the_parent_is_a_shim_not_council(worktree: Path) -> None:
    code = "import os, signal\nprint(os.getppid(), flush=True)\nos.kill(os.getppid(), 9)"
    result = run(py(code), worktree, timeout_s=30, sandbox=probe("none"))
    assert int(result.stdout.split()[0]) != os.getpid()
    assert result.signal == signal.SIGKILL  # the shim died in council's place, and it says so


# A fork bomb that stops by itself after 400 processes (so a broken limit cannot take the
# machine down), each child sleeping at most 20 s; it prints how many it has so far.
FORK_BOMB = """
import os, sys, time
made = 0
while made < 400:
    try:
        pid = os.fork()
    except OSError:
        time.sleep(0.01)
        continue
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    made += 1
    print(made, flush=True)
print("bomb finished", flush=True)
"""


def _our_cgroups() -> list[Path]:
    found = cgroups.support()
    return [
        p
        for ctl in (found.pids, found.memory)
        if ctl is not None
        for p in ctl.parent.glob(f"council-{os.getpid()}-*")
    ]


def test_fork_bomb_stops_at_the_process_limit_with_nothing_left(backend, worktree: Path) -> None:
    if cgroups.support().pids is None:
        notice = runner_mod.limits_notice(cgroups.support()) or ""
        assert "Limits that hold" in notice and "process limit" in notice
        return
    marker = f"council-bomb-{uuid.uuid4().hex}"
    result = run(
        [PY, "-c", FORK_BOMB, marker],
        worktree,
        timeout_s=20,
        limits=Limits(nproc=40),
        sandbox=backend,
    )
    assert "process limit of 40 reached" in result.notes, result.output
    assert "process limit of 40 reached" in result.stderr
    assert not result.ok and not result.timed_out
    made = [int(line) for line in result.stdout.split() if line.isdigit()]
    assert made and max(made) < 40  # the bomb's own count never reached the limit
    assert "bomb finished" not in result.stdout
    assert wait_gone(marker) == []
    assert _our_cgroups() == []  # removed after the command


def test_memory_hog_that_catches_memory_error_is_still_reported(backend, worktree: Path) -> None:
    if cgroups.support().memory is None:
        notice = runner_mod.limits_notice(cgroups.support()) or ""
        assert "MemoryError" in notice
        return
    code = attacks.memory_hog(64, "pass") + 'print("all fine here")\n'
    result = run(
        [PY, "-c", code], worktree, timeout_s=60, limits=Limits(memory_mb=96), sandbox=backend
    )
    assert "memory limit of 96 MB reached" in result.notes, result.output
    assert not result.ok and "all fine here" not in result.stdout
    assert _our_cgroups() == []


def test_cgroup_v2_layout_is_found_and_its_counters_read(tmp_path: Path) -> None:
    """A cgroup2 tree (made of plain folders here: this machine may mount v1) is used through
    its own file names: pids.max / memory.max to limit, pids.events / memory.events to tell."""
    own = tmp_path / "unified" / "user.slice" / "council.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("memory pids\n")
    mountinfo = f"30 23 0:26 / {tmp_path / 'unified'} rw - cgroup2 cgroup2 rw,nsdelegate\n"
    found = cgroups.detect(mountinfo, "0::/user.slice/council.scope\n")
    assert found.complete and found.pids and found.memory
    assert found.pids.parent == own and found.pids.v2 and found.memory.v2
    group = cgroups.create(64, 100, found)
    assert group is not None and len(group.procs_files) == 1  # one folder for both
    folder = Path(group.procs_files[0]).parent
    assert (folder / "pids.max").read_text() == "64"
    assert (folder / "memory.max").read_text() == str(100 * 1024 * 1024)
    (folder / "pids.events").write_text("max 0\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.limit_reached() == "memory limit of 100 MB reached"
    (folder / "pids.events").write_text("max 2\n")
    assert group.limit_reached() == "process limit of 64 reached"
    # A v1 machine where council may not write: nothing is used, and the notice says so.
    v1 = "31 23 0:27 / /nonexistent/pids rw - cgroup cgroup rw,pids\n"
    none = cgroups.detect(v1, "8:pids:/\n")
    assert none.pids is None and "pids or memory" in none.why
    notice = runner_mod.limits_notice(none) or ""
    assert "Limits that hold" in notice and "RLIMIT_DATA" in notice


PROTECTED = """
import os
for label, act in [
    ("write", lambda: open("tests/test_a.py", "w").write("x")),
    ("delete", lambda: os.unlink("tests/test_a.py")),
    ("rename", lambda: os.rename("tests/test_a.py", "moved.py")),
    ("git", lambda: open(".git", "w").write("gitdir: /nowhere")),
    ("new file", lambda: open("tests/conftest.py", "w").write("x")),
    ("cache", lambda: os.makedirs("tests/__pycache__")),
]:
    try:
        act()
        print(label, "ok")
    except OSError as exc:
        print(label, exc.errno)
"""


def test_read_only_paths_inside_the_worktree_cannot_be_changed(isolating, worktree: Path) -> None:
    (worktree / "tests").mkdir()
    (worktree / "tests" / "test_a.py").write_text("frozen\n")
    (worktree / ".git").write_text("gitdir: elsewhere\n")
    with read_only([worktree / "tests" / "test_a.py", worktree / ".git"]):
        result = run([PY, "-c", PROTECTED], worktree, timeout_s=30, sandbox=isolating)
    lines = result.stdout.splitlines()
    # EROFS for writes, EBUSY for removing a mount point; the rest of the worktree is writable.
    assert lines == ["write 30", "delete 16", "rename 16", "git 30", "new file ok", "cache ok"]
    assert (worktree / "tests" / "test_a.py").read_text() == "frozen\n"
    # Outside the block the same paths are writable again.
    again = run([PY, "-c", PROTECTED], worktree, timeout_s=30, sandbox=isolating)
    assert again.stdout.splitlines()[0] == "write ok"
