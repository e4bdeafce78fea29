"""GPG fixtures for the secrets tests: real gpg, unattended keys, private GNUPGHOMEs.

One ed25519 key is made per session (about 0.3 s); each test gets its own copy
of that keyring, so what a test imports or changes stays with it. Homes live
directly under /tmp with short names: gpg-agent puts its socket inside
GNUPGHOME when /run/user/UID does not exist, and a socket path is limited to
108 bytes. Every home's agent is stopped when its test ends.

    from tests.gpg import gpg_session_key, gnupghome, new_gpg_home, kill_agent  # noqa: F401
"""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import pytest

GPGCONF = shutil.which("gpgconf") or "gpgconf"  # resolved now: tests may empty PATH
KEY_NAME = "k8s-secrets test"
KEY_EMAIL = "secrets@test.invalid"


@dataclass
class GpgHome:
    path: str
    fingerprint: str  # of the key holder's key in this home ("" if none)


def new_gpg_home():
    """An empty GNUPGHOME (mode 0700) with a short path."""
    return tempfile.mkdtemp(prefix="gpg-", dir="/tmp")


def make_key(home, name=KEY_NAME, email=KEY_EMAIL):
    """Fingerprint of a new unattended ed25519 key in `home` (through k8s.secrets.keys, as gen-gpg does)."""
    from k8s.secrets import keys

    fingerprint, created = keys.generate_gpg_key(name, email, "ed25519", home=home)
    assert created
    return fingerprint


def kill_agent(home):
    subprocess.run([GPGCONF, "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": home},
                   capture_output=True, check=False)


def remove_home(home):
    try:
        kill_agent(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


GPG = shutil.which("gpg") or "gpg"


def export_public(home, fingerprint):
    return subprocess.run([GPG, "--batch", "--export", "--armor", fingerprint], capture_output=True,
                          env={**os.environ, "GNUPGHOME": home}, check=True).stdout


def import_keys(home, armored):
    subprocess.run([GPG, "--batch", "--import"], input=armored, capture_output=True,
                   env={**os.environ, "GNUPGHOME": home}, check=True)


@pytest.fixture(scope="session")
def gpg_session_key():
    home = new_gpg_home()
    try:
        yield GpgHome(home, make_key(home))
    finally:
        remove_home(home)


@pytest.fixture
def gnupghome(gpg_session_key, monkeypatch):
    """GNUPGHOME for this test: a copy of the session keyring (key KEY_NAME <KEY_EMAIL>)."""
    home = new_gpg_home()
    shutil.copytree(gpg_session_key.path, home, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("S.*", "*.lock", ".#*"))
    monkeypatch.setenv("GNUPGHOME", home)
    try:
        yield GpgHome(home, gpg_session_key.fingerprint)
    finally:
        remove_home(home)


@pytest.fixture
def gpg_homes():
    """Makes more empty homes on demand (`gpg_homes()`), all removed at teardown."""
    made = []

    def make():
        made.append(new_gpg_home())
        return made[-1]

    yield make
    for home in made:
        remove_home(home)
