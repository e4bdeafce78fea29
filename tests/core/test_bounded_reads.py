"""Every file the toolkit reads is read by k8s.core.files: a regular file under the limit of its
kind, else one line naming the file (and the limit). A FIFO never hangs a run, /dev/zero never
fills the memory, a dangling or looping entry under secrets/ is an error, never skipped."""

import argparse
import os
import re
import threading

import pytest

from k8s.core import files
from k8s.core.files import LIMITS, MIB, read_bytes, read_text
from k8s.errors import UserError

from ..conftest import ROOT

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
TIMEOUT = 60  # a run that blocks on a FIFO would take forever: the test fails instead


def error_of(call, *args, **kwargs):
    with pytest.raises(UserError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


def sparse(path, size):
    """A file of `size` bytes that takes no room on disk."""
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


# --- the one reader ---------------------------------------------------------------------------

def test_a_regular_file_and_a_symlink_to_one_are_read(tmp_path):
    (tmp_path / "a").write_bytes(b"x: 1\n")
    os.symlink("a", tmp_path / "link")
    assert read_bytes(str(tmp_path / "a")) == b"x: 1\n"
    assert read_text(str(tmp_path / "link"), "vars") == "x: 1\n"


def test_special_files_are_refused_without_reading_them(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome = {}
    reader = threading.Thread(target=lambda: outcome.update(error=error_of(read_bytes, str(fifo), "vars")),
                              daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert outcome["error"] == f"{fifo}: not a regular file (a FIFO)"
    assert error_of(read_bytes, "/dev/zero", "vars", name="VARS_FILE=/dev/zero") == \
        "VARS_FILE=/dev/zero: not a regular file"
    assert error_of(read_bytes, str(tmp_path), "manifest") == f"{tmp_path}: not a regular file (a directory)"


def test_missing_dangling_and_looping_paths(tmp_path):
    assert error_of(read_bytes, str(tmp_path / "nope")) == f"{tmp_path}/nope: does not exist"
    assert error_of(read_bytes, str(tmp_path / "nope"), missing="vars file not found") == \
        f"{tmp_path}/nope: vars file not found"
    os.symlink("nowhere", tmp_path / "dangling")
    assert error_of(read_bytes, str(tmp_path / "dangling")) == f"{tmp_path}/dangling: is a dangling symlink"
    os.symlink("loop", tmp_path / "loop")
    assert error_of(read_bytes, str(tmp_path / "loop")) == f"{tmp_path}/loop: is a symlink loop"


@pytest.mark.parametrize("kind,limit,name", [("vars", "1 MiB", "a vars file"), ("manifest", "8 MiB", "a manifest"),
                                             ("secret value", "1 MiB", "a secret value file"),
                                             ("secret file", "8 MiB", "a secret file"), ("key", "1 MiB", "a key file")])
def test_each_kind_has_its_limit_and_the_limit_itself_is_fine(tmp_path, kind, limit, name):
    at_limit = sparse(tmp_path / "at", LIMITS[kind])
    assert len(read_bytes(at_limit, kind)) == LIMITS[kind]
    over = sparse(tmp_path / "over", LIMITS[kind] + 1)
    assert error_of(read_bytes, over, kind) == f"{over}: larger than the {limit} limit for {name}: it has {LIMITS[kind] + 1} bytes"


def test_limits_stated():
    assert LIMITS["vars"] == LIMITS["secret value"] == MIB and LIMITS["manifest"] == 8 * MIB
    assert files.size_text(1536) == "1.5 KiB" and files.size_text(12) == "12 bytes"


def test_text_must_be_utf8_without_nul(tmp_path):
    (tmp_path / "bin").write_bytes(b"a\0b")
    assert error_of(read_text, str(tmp_path / "bin")) == f"{tmp_path}/bin: binary file, expected YAML text"
    (tmp_path / "latin").write_bytes(b"a\ncaf\xe9\n")
    assert error_of(read_text, str(tmp_path / "latin")) == f"{tmp_path}/latin:2: not UTF-8 text (byte 0xe9)"


def test_every_open_for_reading_in_the_files_of_this_change_goes_through_files_py():
    """The modules below read only through k8s.core.files (writes use os.open/os.fdopen)."""
    owned = ["k8s/core/variables.py", "k8s/core/validate.py", "k8s/core/render.py", "k8s/core/kinds.py",
             "k8s/secrets/files.py", "k8s/secrets/new.py", "k8s/secrets/objects.py", "k8s/secrets/keys.py",
             "k8s/secrets/workspace.py", "k8s/secrets/sops.py", "k8s/commands/secret_files.py",
             "k8s/nodes/encryption.py", "k8s/nodes/access.py"]
    for rel in owned:
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            source = f.read()
        assert re.findall(r"(?<![.\w])open\(", source) == [], rel


# --- through render.py ------------------------------------------------------------------------

def first_error(result):
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines, (result.stdout, result.stderr)
    return lines[0]


def test_vars_file_dev_zero_is_refused_at_once(project):
    result = project.run("vars", env={"VARS_FILE": "/dev/zero"})
    assert result.returncode == 1
    assert first_error(result) == "error: VARS_FILE=/dev/zero: not a regular file"


def test_vars_file_fifo_does_not_hang(project, tmp_path):
    os.mkfifo(tmp_path / "cluster.vars")
    result = project.run("vars", env={"VARS_FILE": "cluster.vars"})  # subprocess.run: no timeout
    assert result.returncode == 1
    assert first_error(result) == "error: VARS_FILE=cluster.vars: not a regular file (a FIFO)"


def test_vars_file_option_and_makefile_vars_are_bounded(project, tmp_path):
    sparse(tmp_path / "huge.vars", 2 * MIB)
    result = project.run("--vars-file", "huge.vars", "vars")
    assert first_error(result) == "error: huge.vars: larger than the 1 MiB limit for a vars file: it has 2097152 bytes"
    os.remove(tmp_path / "Makefile.vars")
    os.symlink("/dev/zero", tmp_path / "Makefile.vars")
    result = project.run("vars")
    assert result.returncode == 1
    assert first_error(result) == "error: Makefile.vars: not a regular file"


def test_manifests_and_settings_are_bounded(project, tmp_path):
    project.write("manifests/app/a.yaml", CONFIGMAP)
    os.mkfifo(tmp_path / "manifests/app/b.yaml")
    result = project.run("validate")
    assert result.returncode == 1
    assert first_error(result) == "error: manifests/app/b.yaml: not a regular file (a FIFO)"
    os.remove(tmp_path / "manifests/app/b.yaml")
    sparse(tmp_path / "manifests/app/b.yaml", 8 * MIB + 1)
    assert first_error(project.run("validate")) == (
        "error: manifests/app/b.yaml: larger than the 8 MiB limit for a manifest: it has 8388609 bytes")
    os.remove(tmp_path / "manifests/app/b.yaml")
    os.mkfifo(tmp_path / "manifests/app/component.yaml")
    assert first_error(project.run("validate")) == (
        "error: manifests/app/component.yaml: not a regular file (a FIFO)")


# --- secrets ----------------------------------------------------------------------------------

def from_file(*items):
    return argparse.Namespace(from_literal=[], from_file=list(items))


def test_secret_value_files_are_bounded(tmp_path):
    from k8s.secrets.new import values_from_flags

    (tmp_path / "pw").write_text("hunter2")
    assert values_from_flags(from_file(f"password={tmp_path}/pw")) == ({"password": "hunter2"}, {})
    assert error_of(values_from_flags, from_file("z=/dev/zero")) == "--from-file /dev/zero: not a regular file"
    os.mkfifo(tmp_path / "fifo")
    assert error_of(values_from_flags, from_file(f"k={tmp_path}/fifo")) == \
        f"--from-file {tmp_path}/fifo: not a regular file (a FIFO)"
    big = sparse(tmp_path / "big", MIB + 1)
    assert error_of(values_from_flags, from_file(f"k={big}")) == \
        f"--from-file {big}: larger than the 1 MiB limit for a secret value file: it has 1048577 bytes"
    assert error_of(values_from_flags, from_file(f"k={tmp_path}/none")) == f"--from-file {tmp_path}/none: does not exist"


def test_age_key_file_is_bounded(tmp_path):
    from k8s.secrets import keys

    assert error_of(keys.generate_age_key, "/dev/zero") == \
        "/dev/zero: cannot read the age key file: not a regular file"
    big = sparse(tmp_path / "keys.txt", MIB + 1)
    assert error_of(keys.generate_age_key, big).endswith("larger than the 1 MiB limit for a key file: it has 1048577 bytes")


@pytest.mark.parametrize("make,message", [
    (lambda d: os.symlink("gone.yml", d / "db.yml"), "is a dangling symlink"),
    (lambda d: os.symlink("db.yml", d / "db.yml"), "is a symlink loop"),
    (lambda d: os.mkdir(d / "db.yml"), "not a regular file (a directory)"),
    (lambda d: os.mkfifo(d / "db.yml"), "not a regular file (a FIFO)"),
])
def test_secret_files_never_skip_a_bad_entry(tmp_path, make, message):
    from k8s.secrets.files import secret_files

    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "ok.yml").write_text("x: 1\n")
    make(folder)
    assert error_of(secret_files, str(folder)) == f"{folder}/db.yml: {message}"
    assert error_of(secret_files, str(folder), ["db"]) == f"{folder}/db.yml: {message}"


def test_the_admin_kubeconfig_and_sops_config_are_bounded(project, tmp_path):
    from k8s.nodes import access

    os.mkfifo(tmp_path / "admin.conf")
    assert error_of(access.user_kubeconfig, str(tmp_path / "admin.conf"), "admin", "k", "ns", "t") == \
        f"kubeconfig {tmp_path}/admin.conf: not a regular file (a FIFO)"
    (tmp_path / "secrets").mkdir()
    os.mkfifo(tmp_path / "secrets" / ".sops.yaml")
    result = project.run("secrets", "sops-config", "--pgp", "0" * 40)
    assert result.returncode == 1, result.stderr
    assert first_error(result) == "error: secrets/.sops.yaml: not a regular file (a FIFO)"


def test_secrets_check_and_apply_refuse_a_dangling_symlink(project, tmp_path):
    os.makedirs(tmp_path / "secrets")
    os.symlink("moved-away.yml", tmp_path / "secrets" / "db.yml")
    os.mkdir(tmp_path / "secrets" / "notes")  # a folder not named like a secret file is no secret
    check = project.run("secrets", "check")
    assert check.returncode == 1
    assert first_error(check) == "error: secrets/db.yml: is a dangling symlink"
    env = {"KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    apply = project.run("secrets", "apply", env=env)
    assert apply.returncode == 1
    assert first_error(apply) == "error: secrets/db.yml: is a dangling symlink"
