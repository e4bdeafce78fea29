"""`render.py secrets set`: keys of an encrypted file changed without an editor, with real sops and gpg.

The values come from files and stdin; the test checks that they never reach the
command line of any process (sops included), that the other values keep their
ciphertext, and what the file decrypts to afterwards.
"""

import io
import subprocess
import sys

import pytest
import yaml

from ..gpg import gnupghome, gpg_session_key  # noqa: F401
from .test_secrets import keyed, repo  # noqa: F401


def ciphertexts(repo, name):
    with open(repo.path(f"secrets/{name}.yml")) as f:
        return yaml.safe_load(f)


def test_set_changes_one_key_from_a_file_and_leaves_the_others_ciphertext(keyed, tmp_path, monkeypatch):
    repo = keyed
    assert repo.run("create", "db", "--from-literal", "user=admin", "--from-literal", "password=first").code == 0
    before = ciphertexts(repo, "db")
    (tmp_path / "pw").write_text("second-marker-9a1e")
    seen = []
    real_run = subprocess.run

    def watching(argv, *args, **kwargs):  # every process the command starts, with its arguments
        seen.append(list(argv))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", watching)
    result = repo.run("set", "db", f"password=@{tmp_path / 'pw'}")
    assert (result.code, result.out) == (0, "secrets/db.yml: stringData.password set\n"
                                            "apply it with `make secrets/db`\n"), result.err
    assert seen and not any("second-marker-9a1e" in " ".join(map(str, argv)) for argv in seen)
    after = ciphertexts(repo, "db")
    assert after["stringData"]["user"] == before["stringData"]["user"]  # same data key, untouched value
    assert after["stringData"]["password"] != before["stringData"]["password"]
    assert "second-marker-9a1e" not in open(repo.path("secrets/db.yml")).read()
    assert yaml.safe_load(repo.decrypt("db"))["stringData"] == {"user": "admin", "password": "second-marker-9a1e"}


def test_set_adds_keys_from_stdin_and_binary_values_go_to_data(keyed, tmp_path, monkeypatch):
    repo = keyed
    assert repo.run("create", "db", "--from-literal", "user=admin").code == 0
    (tmp_path / "blob").write_bytes(b"\xff\x00\x01")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from-stdin")))
    result = repo.run("set", "db", "token=-", f"blob=@{tmp_path / 'blob'}")
    assert result.code == 0, result.err
    plain = yaml.safe_load(repo.decrypt("db"))
    assert plain["stringData"] == {"user": "admin", "token": "from-stdin"}
    assert plain["data"] == {"blob": "/wAB"}


@pytest.mark.parametrize("pairs,line", [
    (["password=hunter2"], "error: key 'password': give the value as password=@FILE or password=- (stdin), "
                           "never on the command line, where process listings and shell history keep it"),
    (["a=-", "b=-"], "error: only one value can come from stdin (KEY=-)"),
    (["bad key=@x"], "error: 'bad key': expected KEY=@FILE or KEY=- (key: letters, digits, '-', '_' or '.')"),
    (["password=@/nonexistent/pw"], "error: /nonexistent/pw: does not exist"),
    (["password=@/dev/zero"], "error: /dev/zero: not a regular file"),
])
def test_bad_pairs_are_one_line_and_the_file_stays(keyed, pairs, line):
    repo = keyed
    assert repo.run("create", "db", "--from-literal", "password=first").code == 0
    before = open(repo.path("secrets/db.yml")).read()
    result = repo.run("set", "db", *pairs)
    assert result.code != 0
    assert result.err.strip().splitlines() == [line]
    assert "hunter2" not in result.out + result.err
    assert open(repo.path("secrets/db.yml")).read() == before


def test_set_on_a_missing_file_names_it(keyed, tmp_path):
    (tmp_path / "pw").write_text("x-value")
    result = keyed.run("set", "nosuch", f"password=@{tmp_path / 'pw'}")
    assert result.code != 0 and result.err.strip() == "error: no such secret file: secrets/nosuch.yml"
