"""Remote: run one command line on a node over ssh, with the system's ssh client.

The client runs in a subprocess, so the user's ssh config, agent and known
hosts apply as they do on the command line. Three variables shape the call:

    SSH_CONFIG    an ssh config file to use instead of ~/.ssh/config (`ssh -F FILE`)
    SSH_OPTIONS   more ssh arguments, split like a shell does (`-p 2222 -i ~/.ssh/k8s`)
    REMOTE_SUDO   the words put before each remote command (default `sudo`; empty: none)

ssh always gets `-o BatchMode=yes` (fail instead of asking for a password or
a host key confirmation) and a connect timeout, after the user's options so
that theirs win (ssh keeps the first value it gets for an option). The node's
name comes after `--`, so it can never be read as an option; callers shell-quote
every word of the remote command line they pass (`shlex.quote`).

Only the standard library is imported.
"""

import shlex
import subprocess

from ..errors import UserError

SSH = "ssh"
DEFAULT_SUDO = "sudo"
CONNECT_TIMEOUT = 15  # seconds


def _variable(variables, name, default=""):
    value = variables.get(name)
    return default if value is None else value


def ssh_options(variables):
    """The ssh arguments before the host: -F SSH_CONFIG, SSH_OPTIONS, then BatchMode and a timeout.

    The same list serves scp (`scp` takes -F and -o alike) and `rsync -e`.
    """
    options = []
    config = _variable(variables, "SSH_CONFIG").strip()
    if config:
        options += ["-F", config]
    try:
        options += shlex.split(_variable(variables, "SSH_OPTIONS"))
    except ValueError as err:
        raise UserError(f"SSH_OPTIONS: {err}") from None
    return options + ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]


def sudo_words(variables):
    """REMOTE_SUDO as words: ["sudo"] by default, [] when set empty."""
    try:
        return shlex.split(_variable(variables, "REMOTE_SUDO", DEFAULT_SUDO))
    except ValueError as err:
        raise UserError(f"REMOTE_SUDO: {err}") from None


def check_host(host):
    if not host or host.startswith("-") or any(c.isspace() or ord(c) < 32 for c in host):
        raise UserError(f"{host!r} is not a host name to ssh to")


def ssh_argv(host, command, variables):
    """The full ssh command: options, `--`, the host, and the remote command line as one word."""
    check_host(host)
    return [SSH, *ssh_options(variables), "--", host, command]


def run(host, command, variables, timeout=None):
    """Run `command` (a shell command line, already quoted) on `host`; returns the CompletedProcess.

    A failure is a one-line UserError naming the host and ssh's exit status: 255 is
    ssh itself (no connection, authentication, host key), anything else the remote
    command's own status. The last line ssh or the command wrote to stderr is added.
    """
    argv = ssh_argv(host, command, variables)
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=timeout)
    except FileNotFoundError:
        raise UserError(f"ssh {host}: no ssh client ({SSH}) found: install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"ssh {host}: no answer within {timeout:g}s") from None
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
        detail = f": {lines[-1]}" if lines else ""
        what = "ssh" if result.returncode == 255 else "remote command"
        raise UserError(f"ssh {host}: {what} failed (exit status {result.returncode}){detail}")
    return result
