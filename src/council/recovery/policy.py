"""The command policy: every command a model proposes is parsed and checked against a deny list.

Matching is on the parsed command, never on a substring of the raw text: the line is parsed by
tree-sitter-bash (shell_syntax.py: quotes, escapes, `;` `&&` `||` `|` `&`, subshells, compound
commands, redirections, heredocs, `$(...)`, backticks, process substitution), wrappers are
unwrapped (`sudo`, `env X=1`, `nohup`, `timeout`,
`xargs`, `bash -c "..."`, `eval`), and the rules look at the program (`/bin/rm` is `rm`) and its
parsed arguments. So `echo "rm -rf /"` is allowed and `sudo /bin/rm -r -f /` is not. A command that
cannot be parsed, or whose program comes from an unknown variable, is denied: it cannot be checked.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from council.recovery.shell_syntax import ParseError, Simple, Word, command_words, parse

# Seed 004's `safety.forbidden_commands`; council.yaml's deny list adds to these.
DEFAULT_DENY: tuple[str, ...] = ("rm -rf /", "kubectl delete namespace", "az group delete")
PROTECTED_BRANCHES: tuple[str, ...] = ("main", "master", "release*")
MAX_DEPTH = 8

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish", "busybox"})
INTERPRETERS = SHELLS | {
    "python", "python3", "python2", "perl", "ruby", "node", "php", "pwsh", "powershell", "iex",
    "source", ".", "eval",
}  # fmt: skip
DOWNLOADERS = frozenset(
    {"curl", "wget", "fetch", "iwr", "irm", "invoke-webrequest", "invoke-restmethod", "aria2c"}
)
_TEXT_ONLY = frozenset({"echo", "printf", "true", "false", ":", "test", "["})
_RESERVED = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "esac"}
)
_SYSTEM_DIRS = frozenset(
    "/bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run "
    "/sbin /srv /sys /usr /var /Users /System /Library /Applications".split()
)
_CREDENTIAL_PATHS = (
    "~/.ssh", "~/.ssh/*", "/root/.ssh", "/root/.ssh/*", "/home/*/.ssh", "/home/*/.ssh/*",
    "/Users/*/.ssh", "/Users/*/.ssh/*",
    "~/.aws", "~/.aws/*", "~/.azure", "~/.azure/*", "~/.kube/config", "~/.docker/config.json",
    "~/.netrc", "~/.git-credentials", "~/.config/gh/hosts.yml", "~/.pypirc", "~/.npmrc",
    "~/.config/gcloud", "~/.config/gcloud/*",
    "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/sudoers", "/proc/*/environ",
    "*/id_rsa", "*/id_rsa.*", "*/id_ed25519", "*/id_ed25519.*", "*/id_ecdsa", "*/id_dsa",
)  # fmt: skip
_ENV_TEMPLATES = (".example", ".sample", ".template", ".dist", ".defaults")


@dataclass(frozen=True)
class PolicyDecision:
    """Whether a command may run; when not, which rule refused it and why."""

    allowed: bool
    rule: str = ""
    reason: str = ""
    command: str = ""  # the part of the line the rule refused (a sub-command, after unwrapping)


# -- unwrapping ------------------------------------------------------------------------------

_ASSIGN = re.compile(r"^[A-Za-z_]\w*=")

# wrapper -> (options that take a value, whether the first positional is a value, not the command)
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset("-u -g -h -p -C -D -r -t -U -T --user --group --host --prompt".split()), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-t"}), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "time": (frozenset({"-f", "-o"}), 0),
    "xargs": (frozenset("-n -I -L -P -d -s -a -E -i -l --max-args --replace".split()), 0),
    "unbuffer": (frozenset(), 0),
    "flock": (frozenset({"-w", "-E", "--timeout"}), 1),
    "chroot": (frozenset(), 1),
    "watch": (frozenset({"-n", "-d", "--interval"}), 0),
    "strace": (frozenset({"-o", "-e", "-p", "-s"}), 0),
}


def program_name(word: str) -> str:
    """`/usr/bin/rm` -> `rm`; `\\rm` was unescaped by the lexer already."""
    return posixpath.basename(word.rstrip("/")) or word


@dataclass
class Command:
    """A simple command after unwrapping: the program that really runs, and its arguments."""

    program: str
    args: list[Word]
    simple: Simple
    text: str

    @property
    def argv(self) -> list[str]:
        return [w.text for w in self.args]


def _skip_options(args: list[Word], takes_value: frozenset[str]) -> int:
    i = 0
    while i < len(args):
        text = args[i].text
        if text == "--":
            return i + 1
        if not text.startswith("-") or text == "-":
            return i
        name = text.split("=", 1)[0]
        i += 2 if name in takes_value and "=" not in text else 1
    return i


@dataclass
class _Context:
    extra_deny: list[list[str]]
    protected: tuple[str, ...]
    variables: dict[str, str]
    depth: int = 0


class _Denied(Exception):
    def __init__(self, rule: str, reason: str, command: str) -> None:
        super().__init__(reason)
        self.decision = PolicyDecision(False, rule, reason, command)


def _expand(word: Word, variables: dict[str, str]) -> Word:
    if not word.has_var or not variables:
        return word

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, match.group(0))

    text = re.sub(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)", sub, word.text)
    still = bool(re.search(r"\$\{?[A-Za-z_]", text))
    return Word(text, word.quoted, word.subs, still)


def _unwrap(simple: Simple, ctx: _Context) -> list[Command]:
    """The command(s) a simple command runs: wrappers peeled, `bash -c` and `eval` parsed."""
    words = [_expand(w, ctx.variables) for w in simple.words]
    text = " ".join(w.text for w in words)
    # Leading assignments; a command of assignments only sets variables for later commands.
    i = 0
    while i < len(words) and _ASSIGN.match(words[i].text) and not words[i].text.startswith("="):
        i += 1
    if i == len(words):
        for w in words:
            name, value = w.text.split("=", 1)
            if not w.subs:
                ctx.variables[name] = value
        return []
    words = words[i:]
    while words and words[0].text in _RESERVED and not words[0].quoted:
        words = words[1:]
    if not words or words[0].text in ("for", "case", "select", "function"):
        return []  # loop/case headers: their bodies are separate commands and checked as such
    if words[0].text.endswith("()") or (len(words) > 1 and words[1].text == "()"):
        return []  # a function definition header
    head = words[0]
    if head.subs and not head.has_var:
        # `$(which rm) -rf /`: refused by the last rule, so that a wrapper's own rule (a
        # download run by `bash -c "$(curl ...)"`) names the real danger first.
        return [Command(head.text, words[1:], simple, text)]
    if head.has_var:
        raise _Denied(
            "indirect-program",
            f"the program name {head.text!r} comes from a variable, so it cannot be checked",
            text,
        )
    program = program_name(head.text)
    args = words[1:]
    if program in _WRAPPERS:
        takes_value, positional_values = _WRAPPERS[program]
        j = _skip_options(args, takes_value)
        while j < len(args) and _ASSIGN.match(args[j].text):  # sudo X=1 cmd
            j += 1
        j += positional_values
        if j >= len(args):
            return [Command(program, args, simple, text)]
        return _unwrap(simple.with_words(args[j:]), ctx)
    if program == "env":
        j = 0
        while j < len(args):
            a = args[j].text
            if a in ("-u", "--unset", "-C", "--chdir"):
                j += 2
            elif a in ("-S", "--split-string") and j + 1 < len(args):
                inner = _parse_or_deny(args[j + 1].text)
                split = [w for pipeline in inner for s in pipeline for w in s.words]
                return _unwrap(simple.with_words(split + args[j + 2 :]), ctx)
            elif a.startswith("-") or _ASSIGN.match(a):
                j += 1
            else:
                break
        if j >= len(args):
            return [Command(program, args, simple, text)]
        return _unwrap(simple.with_words(args[j:]), ctx)
    if program == "command" and args and args[0].text in ("-v", "-V"):
        return []  # looks a name up, runs nothing
    if program == "command":
        j = _skip_options(args, frozenset())
        return _unwrap(simple.with_words(args[j:]), ctx) if j < len(args) else []
    found = [Command(program, args, simple, text)]
    script = _shell_script(program, args)
    if script is None and program in SHELLS and simple.stdin is not None:
        script = simple.stdin  # `bash <<EOF ... EOF`, `sh <<< "..."`: the input is the script
    if script is not None:
        found += _commands_in(script, ctx)
    if program == "eval" and args:
        found += _commands_in(" ".join(a.text for a in args), ctx)
    return found


def _shell_script(program: str, args: list[Word]) -> str | None:
    """The script of `bash -c SCRIPT` (also `-lc`, `-ec`, `-o pipefail -c`), else None."""
    if program not in SHELLS:
        return None
    i = 0
    if program == "busybox" and args and args[0].text in SHELLS:
        i = 1
    seen_c = False
    while i < len(args):
        a = args[i].text
        if a in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if a == "--":
            i += 1
            break
        if a.startswith(("-", "+")) and not a.startswith("--") and len(a) > 1:
            seen_c = seen_c or "c" in a[1:]
            i += 1
            continue
        if a.startswith("--"):
            i += 1
            continue
        break
    if seen_c and i < len(args):
        return args[i].text
    return None


def _commands_in(script: str, ctx: _Context) -> list[Command]:
    if ctx.depth >= MAX_DEPTH:
        raise _Denied("too-deep", "commands nested too deeply to check", script)
    inner = _Context(ctx.extra_deny, ctx.protected, dict(ctx.variables), ctx.depth + 1)
    out: list[Command] = []
    for pipeline in _parse_or_deny(script):
        for simple in pipeline:
            out += _unwrap(simple, inner)
    return out


def _parse_or_deny(text: str) -> list[list[Simple]]:
    try:
        return parse(text)
    except ParseError as exc:
        raise _Denied("unparsable", f"the command cannot be parsed ({exc})", text) from exc


# -- rules -----------------------------------------------------------------------------------


def _flags(args: list[Word]) -> tuple[set[str], list[str]]:
    """Short flags (clusters expanded), long flags, and positionals (`--` ends the options)."""
    flags: set[str] = set()
    positionals: list[str] = []
    ended = False
    for word in args:
        a = word.text
        if ended or not a.startswith("-") or a == "-":
            positionals.append(a)
        elif a == "--":
            ended = True
        elif a.startswith("--"):
            flags.add(a.split("=", 1)[0])
        else:
            flags.update(f"-{c}" for c in a[1:])
    return flags, positionals


def _home_normalised(path: str) -> str:
    path = re.sub(r"^(?:\$HOME|\$\{HOME\}|~[A-Za-z0-9_.-]*)(?=/|$)", "~", path)
    if path.startswith("/"):
        path = posixpath.normpath(path)
        path = "/" + path.lstrip("/")  # normpath keeps a leading `//`
    elif path.startswith("~"):
        path = ("~" + posixpath.normpath("/" + path[1:].lstrip("/"))).rstrip("/")
    return path


def _dangerous_target(raw: str) -> str | None:
    """Why deleting `raw` recursively would be a disaster, or None."""
    # `$DIR/` with DIR unset is `/` (an empty `$f` alone deletes nothing).
    if re.match(r"^\$\{?[A-Za-z_]\w*(?::?-)?\}?/", raw) and not re.match(
        r"^\$(?:HOME|\{HOME\})(?=/|$)", raw
    ):
        return f"{raw!r} starts with a variable that may be empty, which makes it `/...`"
    path = _home_normalised(raw)
    for suffix in ("/*", "/.*", "/.[!.]*"):
        if path.endswith(suffix):
            path = path[: -len(suffix)] or "/"
    path = _home_normalised(path)
    if path in ("/", "~", "/*"):
        return "it is the root or the home folder"
    if path in _SYSTEM_DIRS:
        return f"{path} is a system folder"
    if re.fullmatch(r"/(?:home|Users)/[^/]+", path) or path == "/root":
        return f"{path} is a home folder"
    return None


def _rule_rm(cmd: Command) -> tuple[str, str] | None:
    if cmd.program not in ("rm", "rmdir"):
        return None
    flags, targets = _flags(cmd.args)
    if "--no-preserve-root" in flags:
        return "rm-root", "rm --no-preserve-root"
    if not ({"-r", "-R", "--recursive"} & flags) and cmd.program == "rm":
        return None
    for target in targets:
        why = _dangerous_target(target)
        if why:
            return "rm-root-or-home", f"recursive delete of {target}: {why}"
    return None


def _rule_find_delete(cmd: Command) -> tuple[str, str] | None:
    if cmd.program != "find":
        return None
    argv = cmd.argv
    roots = []
    for a in argv:
        if a.startswith(("-", "(", "!")):
            break
        roots.append(a)
    deletes = "-delete" in argv or any(
        a in ("-exec", "-execdir", "-ok") and i + 1 < len(argv) and program_name(argv[i + 1]) in
        ("rm", "shred") for i, a in enumerate(argv)
    )  # fmt: skip
    for root in roots:
        why = _dangerous_target(root)
        if deletes and why:
            return "rm-root-or-home", f"find deleting under {root}: {why}"
    return None


def _rule_chmod_root(cmd: Command) -> tuple[str, str] | None:
    if cmd.program not in ("chmod", "chown", "chgrp"):
        return None
    flags, positionals = _flags(cmd.args)
    if not ({"-R", "--recursive"} & flags):
        return None
    for target in positionals[1:]:
        why = _dangerous_target(target)
        if why:
            return "recursive-permissions-root", f"{cmd.program} -R on {target}: {why}"
    return None


def _rule_disk(cmd: Command) -> tuple[str, str] | None:
    if cmd.program.startswith("mkfs") or cmd.program in ("wipefs", "fdisk", "sfdisk", "parted"):
        return "disk-format", f"{cmd.program} rewrites disks"
    if cmd.program == "dd" and any(re.match(r"^of=/dev/(?!null$|zero$)", a) for a in cmd.argv):
        return "disk-format", "dd writing to a device"
    if cmd.program in ("shutdown", "reboot", "halt", "poweroff"):
        return "power", f"{cmd.program} stops the machine"
    return None


_GIT_VALUE_OPTS = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"})
_PUSH_VALUE_OPTS = frozenset({"--repo", "-o", "--push-option", "--receive-pack", "--exec"})


def _rule_git_push(cmd: Command, protected: tuple[str, ...]) -> tuple[str, str] | None:
    if cmd.program != "git":
        return None
    argv = cmd.argv
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in _GIT_VALUE_OPTS else 1
    if i >= len(argv) or argv[i] != "push":
        return None
    force = delete = mirror = False
    positionals: list[str] = []
    j = i + 1
    while j < len(argv):
        a = argv[j]
        if a in _PUSH_VALUE_OPTS:
            j += 2
            continue
        if a.startswith("--force") or a == "--mirror" or a == "--all":
            force = force or a.startswith("--force")
            mirror = mirror or a in ("--mirror", "--all")
        elif a in ("--delete",):
            delete = True
        elif a.startswith("-") and not a.startswith("--"):
            force = force or "f" in a[1:]
            delete = delete or "d" in a[1:]
        elif not a.startswith("-"):
            positionals.append(a)
        j += 1
    refspecs = positionals[1:]
    destinations: list[tuple[str, bool, bool]] = []  # (branch, forced, deleted)
    for spec in refspecs:
        plus = spec.startswith("+")
        spec = spec.lstrip("+")
        src, _, dst = spec.partition(":")
        target = dst if ":" in spec else src
        target = target.removeprefix("refs/heads/")
        destinations.append((target, force or plus, delete or (":" in spec and not src)))
    if mirror and (force or delete):
        return "force-push-protected", "force/mirror push of every branch"
    if (force or delete) and not refspecs:
        return "force-push-protected", "force-push without naming the branch (it may be protected)"
    for branch, forced, deleted in destinations:
        if not (forced or deleted):
            continue
        if branch in ("HEAD", "@") or any(fnmatch.fnmatchcase(branch, p) for p in protected):
            verb = "delete" if deleted else "force-push to"
            return "force-push-protected", f"{verb} protected branch {branch!r}"
    return None


def _non_option_words(argv: list[str]) -> list[str]:
    return [a for a in argv if not a.startswith("-")]


def _subsequence(needle: Sequence[str], hay: Sequence[str]) -> bool:
    it = iter(hay)
    return all(any(fnmatch.fnmatchcase(h, n) for h in it) for n in needle)


_CLOUD_DELETES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("az", ("group", "delete"), "deletes an Azure resource group"),
    ("az", ("resource", "delete"), "deletes Azure resources"),
    ("az", ("aks", "delete"), "deletes a Kubernetes cluster"),
    ("az", ("keyvault", "delete"), "deletes a key vault"),
    ("az", ("keyvault", "purge"), "purges a key vault"),
    ("az", ("keyvault", "secret", "[sd]e[lt]*"), "rotates or deletes a secret"),
    ("az", ("keyvault", "secret", "purge"), "purges a secret"),
    ("az", ("ad", "*", "credential", "reset"), "rotates credentials"),
    ("kubectl", ("delete", "namespace*"), "deletes a Kubernetes namespace"),
    ("kubectl", ("delete", "ns"), "deletes a Kubernetes namespace"),
    ("kubectl", ("delete", "ns/*"), "deletes a Kubernetes namespace"),
    ("kubectl", ("delete", "namespace*/*"), "deletes a Kubernetes namespace"),
    ("terraform", ("destroy",), "destroys all managed infrastructure"),
    ("tofu", ("destroy",), "destroys all managed infrastructure"),
    ("gcloud", ("projects", "delete"), "deletes a cloud project"),
    ("aws", ("cloudformation", "delete-stack"), "deletes a cloud stack"),
)


def _rule_cloud(cmd: Command) -> tuple[str, str] | None:
    words = _non_option_words(cmd.argv)
    for program, sequence, why in _CLOUD_DELETES:
        if cmd.program == program and _subsequence(sequence, words):
            return "cloud-delete", f"`{program} {' '.join(sequence)}` {why}"
    if cmd.program in ("terraform", "tofu") and "apply" in words and "-destroy" in cmd.argv:
        return "cloud-delete", "`terraform apply -destroy` destroys all managed infrastructure"
    if (
        cmd.program == "kubectl"
        and "delete" in words
        and ({"-A", "--all-namespaces"} & set(cmd.argv))
    ):
        return "cloud-delete", "`kubectl delete` across all namespaces"
    return None


def _is_credential_path(raw: str) -> bool:
    path = _home_normalised(raw)
    name = posixpath.basename(path.rstrip("/"))
    if name == ".env" or (name.startswith(".env.") and not name.endswith(_ENV_TEMPLATES)):
        return True
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in _CREDENTIAL_PATHS)


def _path_candidates(arg: str) -> list[str]:
    out = [arg]
    if "=" in arg:
        out.append(arg.split("=", 1)[1])
    if arg.startswith("@"):
        out.append(arg[1:])
    return [c for c in out if c]


def _rule_credentials(cmd: Command) -> tuple[str, str] | None:
    if cmd.program in _TEXT_ONLY:
        reads = [w.text for w in cmd.simple.reads]
    else:
        argv = cmd.argv
        if cmd.program in ("cp", "mv", "install", "ln") and len(_non_option_words(argv)) >= 2:
            last = _non_option_words(argv)[-1]
            argv = argv[: len(argv) - 1 - argv[::-1].index(last)]  # the destination is written
        reads = argv + [w.text for w in cmd.simple.reads]
    for arg in reads:
        for candidate in _path_candidates(arg):
            if _is_credential_path(candidate):
                return "read-credentials", f"reads credential file {candidate}"
    return None


def _has_download(words: Sequence[Word], ctx: _Context) -> bool:
    for word in words:
        for body in word.subs:
            try:
                inner = _commands_in(body, ctx)
            except _Denied:
                return True
            if any(c.program.lower() in DOWNLOADERS for c in inner):
                return True
    return False


def _rule_download_exec(cmd: Command, ctx: _Context) -> tuple[str, str] | None:
    """`bash <(curl ...)`, `sh -c "$(wget -O- ...)"`, `eval "$(curl ...)"`, `python3 - < <(curl
    ...)`."""
    if cmd.program.lower() in INTERPRETERS and _has_download([*cmd.args, *cmd.simple.reads], ctx):
        return "download-to-shell", f"{cmd.program} runs code downloaded by a substitution"
    return None


def _rule_deny_list(cmd: Command, ctx: _Context) -> tuple[str, str] | None:
    if not ctx.extra_deny:
        return None
    flags, positionals = _flags(cmd.args)
    for entry in ctx.extra_deny:
        if program_name(entry[0]) != cmd.program:
            continue
        want_flags, want_positionals = _flags([Word(t) for t in entry[1:]])
        if not want_flags <= flags:
            continue
        if entry[0] == "rm" and want_positionals:
            # "rm -rf /" in a deny list means the disaster, in all its spellings.
            wanted = {_home_normalised(w) for w in want_positionals}
            if any(
                _home_normalised(t) in wanted
                or (_dangerous_target(t) and any(_dangerous_target(w) for w in want_positionals))
                for t in positionals
            ):
                return "deny-list", f"matches deny-list entry `{' '.join(entry)}`"
            continue
        if _subsequence(want_positionals, positionals):
            return "deny-list", f"matches deny-list entry `{' '.join(entry)}`"
    return None


def _rule_substituted_program(cmd: Command) -> tuple[str, str] | None:
    if "$(" in cmd.program or "`" in cmd.program:
        return "indirect-program", f"the program {cmd.program!r} is computed: it cannot be checked"
    return None


_Rule = Callable[[Command, _Context], "tuple[str, str] | None"]
_RULES: tuple[_Rule, ...] = (
    lambda c, _x: _rule_rm(c),
    lambda c, _x: _rule_find_delete(c),
    lambda c, _x: _rule_chmod_root(c),
    lambda c, _x: _rule_disk(c),
    lambda c, x: _rule_git_push(c, x.protected),
    lambda c, _x: _rule_cloud(c),
    lambda c, _x: _rule_credentials(c),
    _rule_download_exec,
    _rule_deny_list,
    lambda c, _x: _rule_substituted_program(c),
)


def _check_pipeline(pipeline: list[Simple], ctx: _Context) -> None:
    stages: list[list[Command]] = [_unwrap(simple, ctx) for simple in pipeline]
    for commands in stages:
        for cmd in commands:
            for rule in _RULES:
                verdict = rule(cmd, ctx)
                if verdict:
                    raise _Denied(verdict[0], verdict[1], cmd.text)
            for word in cmd.args:  # $(...) in an argument runs before the command
                for body in word.subs:
                    _check_text(body, ctx)
    for simple in pipeline:
        # Substitutions run wherever they are: in `X=$(...)` too, which runs no program.
        for word in simple.words + simple.reads + simple.writes:
            for body in word.subs:
                _check_text(body, ctx)
    # A download piped into an interpreter: `curl -s URL | sudo bash`.
    downloaded = False
    for index, commands in enumerate(stages):
        programs = [c.program.lower() for c in commands]
        if index > 0 and commands:
            first = commands[0]
            reads_stdin = _shell_script(first.program, first.args) is None
            if first.program in SHELLS and reads_stdin:
                for earlier in pipeline[:index]:  # `cat <<EOF | sh`: the heredoc is the script
                    if earlier.stdin is not None:
                        _check_text(earlier.stdin, ctx)
        if downloaded and index > 0 and commands:
            first = commands[0]
            reads_stdin = _shell_script(first.program, first.args) is None
            if first.program.lower() in INTERPRETERS and reads_stdin:
                raise _Denied(
                    "download-to-shell",
                    f"a download is piped into {first.program}",
                    " | ".join(c.text for cs in stages for c in cs[:1]),
                )
        downloaded = downloaded or any(p in DOWNLOADERS for p in programs)


def _check_text(text: str, ctx: _Context) -> None:
    if ctx.depth >= MAX_DEPTH:
        raise _Denied("too-deep", "commands nested too deeply to check", text)
    inner = _Context(ctx.extra_deny, ctx.protected, ctx.variables, ctx.depth + 1)
    for pipeline in _parse_or_deny(text):
        _check_pipeline(pipeline, inner)


def check(
    command: str,
    extra_deny: Sequence[str] = (),
    *,
    protected_branches: Sequence[str] = PROTECTED_BRANCHES,
    include_defaults: bool = True,
) -> PolicyDecision:
    """Whether `command` (one shell line, possibly several commands) may run.

    `extra_deny`: council.yaml's deny list, each entry a command prefix such as
    `kubectl delete namespace` (matched on parsed words: flags in any order and spelling,
    other options in between). Seed 004's list is always included unless `include_defaults`
    is false; the built-in rules always apply.
    """
    entries = [*(DEFAULT_DENY if include_defaults else ()), *extra_deny]
    parsed: list[list[str]] = []
    for entry in entries:
        try:
            words = command_words(entry)
        except ParseError:
            continue
        if words:
            parsed.append(words)
    ctx = _Context(parsed, tuple(protected_branches), {})
    if not command.strip():
        return PolicyDecision(True, reason="empty command")
    try:
        _check_text(command, ctx)
    except _Denied as denied:
        return denied.decision
    return PolicyDecision(True)


def check_argv(
    argv: Sequence[str], extra_deny: Sequence[str] = (), **options: object
) -> PolicyDecision:
    """`check` for a command given as an argument vector (no shell in between)."""
    import shlex

    return check(shlex.join(argv), extra_deny, **options)  # type: ignore[arg-type]
