"""A real OpenSSH server on 127.0.0.1 for tests that ssh to a "node" (Debian: openssh-server).

Each server gets a temporary directory with its own host key, a client key pair and its
authorized_keys, and listens on a free port; the "remote" user is the current user, so what
a test runs over ssh happens on this machine, where the test can look at the result.

Fixtures (import them into a test module, or a conftest)::

    from tests.sshd import sshd, sshd_factory  # noqa: F401

    def test_copy(sshd, tmp_path):
        sshd.host, sshd.port, sshd.user  # 127.0.0.1, the port, the login user
        sshd.config          # an ssh client config: `ssh -F <config> ANY-NAME` reaches this server
                             # (Host * -> 127.0.0.1:port, user, key, pinned host key, BatchMode)
        sshd.options         # the same as arguments, for `ssh <options> -- 127.0.0.1 ...`
                             # (-F /dev/null -p PORT -i KEY -l USER -o UserKnownHostsFile=... ...)
        sshd.variables()     # {"SSH_CONFIG": sshd.config}: what render.py's ssh commands need
        sshd.ssh("true")     # run a command through the real client: a CompletedProcess
        sshd.log             # sshd's log lines so far (-e: they go to its stderr)

`sshd_factory(user=None)` starts more (each its own port and keys). Outside pytest::

    with SshServer() as server:
        subprocess.run(["scp", "-F", server.config, "file", "node:/tmp/"])   # sftp subsystem on

Running as root (as CI does), sshd needs its privilege separation directory /run/sshd,
which is created when missing. Running as root, ``SshServer(user="name")`` runs sshd as that
unprivileged user instead (with setpriv); the client must then run as that user too:
prefix the command with ``server.as_user`` (setpriv) and add
``server.user_env()`` (HOME, USER) to its environment. ``unprivileged_user()``
finds such an account (or $K8S_TEST_SSH_USER), None if there is none.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

SSHD_PATHS = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
HOST_KEY_ALIAS = "sshd-test"


def sshd_binary():
    """Absolute path of sshd (it re-executes itself, so it must be absolute), or None."""
    found = shutil.which("sshd")
    for path in ([found] if found else []) + list(SSHD_PATHS):
        if path and os.access(path, os.X_OK):
            return os.path.abspath(path)
    return None


def unprivileged_user():
    """An account with a login shell and uid >= 1000 to run sshd as, or None.

    $K8S_TEST_SSH_USER names one explicitly.
    """
    wanted = os.environ.get("K8S_TEST_SSH_USER")
    try:
        shells = {line.strip() for line in open("/etc/shells") if line.startswith("/")}
    except OSError:
        shells = {"/bin/sh", "/bin/bash"}
    for entry in pwd.getpwall():
        if wanted and entry.pw_name != wanted:
            continue
        if wanted or (entry.pw_uid >= 1000 and entry.pw_uid != 65534 and entry.pw_shell in shells):
            return entry.pw_name
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SshServer:
    """One sshd on 127.0.0.1; see the module docstring. Start with `start()` or `with`."""

    def __init__(self, user=None):
        self.host = "127.0.0.1"
        self.port = None
        self.run_as = user if user and os.geteuid() == 0 and user != pwd.getpwuid(0).pw_name else None
        self.user = self.run_as or pwd.getpwuid(os.geteuid()).pw_name
        self.dir = None
        self.log = []
        self.process = None
        self._reader = None

    def accepted(self, expected=0):
        """Connections sshd accepted; waits a little for its log (read by another thread)
        to reach `expected`."""
        import time

        deadline = time.monotonic() + 3
        while True:
            count = sum("Accepted publickey" in line for line in self.log)
            if count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.02)

    # -- paths ----------------------------------------------------------------------------------

    @property
    def key(self):
        return os.path.join(self.dir, "client_ed25519")

    @property
    def known_hosts(self):
        return os.path.join(self.dir, "known_hosts")

    @property
    def config(self):
        return os.path.join(self.dir, "ssh_config")

    @property
    def options(self):
        """ssh arguments reaching this server as `ssh <options> -- 127.0.0.1 COMMAND`."""
        return ["-F", "/dev/null", "-p", str(self.port), "-i", self.key, "-l", self.user,
                "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", f"HostKeyAlias={HOST_KEY_ALIAS}", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]

    @property
    def as_user(self):
        """Command prefix that runs a client as the user sshd runs as ([] when that is us);
        give that client the environment `user_env()` too."""
        if not self.run_as:
            return []
        entry = pwd.getpwnam(self.run_as)
        return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]

    def user_env(self):
        """HOME, USER and LOGNAME for a client run with `as_user` ({} when that is us)."""
        if not self.run_as:
            return {}
        return {"HOME": self.dir, "USER": self.run_as, "LOGNAME": self.run_as}

    def variables(self):
        """The toolkit's ssh variables for reaching this server under any host name."""
        return {"SSH_CONFIG": self.config}

    def ssh(self, command, host="node", **kwargs):
        """Run `command` on the server through the real ssh client and its config."""
        env = {**os.environ, **self.user_env(), **kwargs.pop("env", {})}
        return subprocess.run([*self.as_user, "ssh", "-F", self.config, "--", host, command],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, **kwargs)

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        sshd = sshd_binary()
        if sshd is None:
            raise FileNotFoundError("sshd not found: apt-get install openssh-server")
        self.dir = tempfile.mkdtemp(prefix="sshd-test-")
        os.chmod(self.dir, 0o755)
        for name in ("host_ed25519", "client_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                            "-f", os.path.join(self.dir, name)], check=True, stdin=subprocess.DEVNULL)
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        with open(os.path.join(self.dir, "host_ed25519.pub")) as f:
            host_key = " ".join(f.read().split()[:2])
        with open(self.known_hosts, "w") as f:
            f.write(f"{HOST_KEY_ALIAS} {host_key}\n")
        if os.geteuid() == 0 and not self.run_as:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation (root only)
        last_error = ""
        for _ in range(5):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            self._write_configs()
            if self.run_as:
                entry = pwd.getpwnam(self.run_as)
                for root, dirs, files in os.walk(self.dir):
                    for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                        os.chown(name, entry.pw_uid, entry.pw_gid)
            command = [sshd, "-D", "-e", "-f", os.path.join(self.dir, "sshd_config")]
            if self.run_as:
                command = self.as_user + command
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, text=True)
            ready, last_error = self._wait_until_listening()
            if ready:
                self._reader = threading.Thread(target=self._drain, daemon=True)
                self._reader.start()
                return self
            self.process.wait(5)
        self.stop()
        raise RuntimeError(f"sshd did not start: {last_error}")

    def _write_configs(self):
        d = self.dir
        with open(os.path.join(d, "sshd_config"), "w") as f:
            f.write("\n".join([
                f"ListenAddress {self.host}", f"Port {self.port}",
                f"HostKey {d}/host_ed25519", f"AuthorizedKeysFile {d}/authorized_keys",
                f"PidFile {d}/sshd.pid", "UsePAM no", "StrictModes no",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password", f"AllowUsers {self.user}",
                "Subsystem sftp internal-sftp", "LogLevel INFO", ""]))
        with open(self.config, "w") as f:
            f.write("\n".join([
                "Host *", f"  HostName {self.host}", f"  Port {self.port}", f"  User {self.user}",
                f'  IdentityFile "{self.key}"', "  IdentitiesOnly yes",
                f'  UserKnownHostsFile "{self.known_hosts}"', "  GlobalKnownHostsFile /dev/null",
                "  StrictHostKeyChecking yes", f"  HostKeyAlias {HOST_KEY_ALIAS}",
                "  BatchMode yes", "  LogLevel ERROR", ""]))

    def _wait_until_listening(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                return False, "\n".join(self.log[-5:]) or f"exit status {self.process.poll()}"
            self.log.append(line.rstrip("\n"))
            if "Server listening on" in line:
                return True, ""
        return False, "no 'Server listening' line within 10s"

    def _drain(self):
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


@pytest.fixture
def sshd_factory():
    started = []

    def factory(user=None):
        if sshd_binary() is None:
            pytest.skip("sshd not installed (apt-get install openssh-server)")
        server = SshServer(user=user).start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        server.stop()


@pytest.fixture
def sshd(sshd_factory):
    return sshd_factory()
