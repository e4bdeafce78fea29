"""The key commands of `render.py secrets`: gen-gpg, gen-age, sops-config.

Contract: each `cmd_*(args)` takes the parsed arguments of its subcommand
(wired in k8s.commands.secrets), prints what it did and returns the exit code;
the keys themselves are made and checked in k8s.secrets.keys. They make or
reuse a key without prompts and write secrets/.sops.yaml, the list of who can
decrypt secrets/*.yml; no secret file is read.

Only the standard library is imported at module level (render.py --help stays
fast); each command imports what it needs.
"""

import os
import sys

from ..secrets.workspace import Workspace


def out(text=""):
    print(text, flush=True)


def cmd_gen_gpg(args):
    from ..secrets import keys

    ws = Workspace(args)
    v = ws.variables
    name, email = v.get("SOPS_KEY_NAME", ""), v.get("SOPS_KEY_EMAIL", "")
    key_type = args.key_type or v.get("SOPS_KEY_TYPE") or "rsa4096"
    passphrase = os.environ.get("SOPS_KEY_PASSPHRASE") or None
    fingerprint, created = keys.generate_gpg_key(name, email, key_type, passphrase)
    uid = keys.user_id(name, email)
    home = os.environ.get("GNUPGHOME") or "~/.gnupg"
    if created:
        protection = "protected by SOPS_KEY_PASSPHRASE" if passphrase else "without a passphrase"
        out(f"created GPG key {fingerprint} for {uid!r} ({key_type}, {protection}) in {home}")
    else:
        out(f"reusing GPG key {fingerprint} for {uid!r} in {home} (none created)")
    out(f"fingerprint: {fingerprint}")
    for line in keys.backup_hint(fingerprint):
        out(line)
    out(f"next: make {ws.config}")
    return 0


def cmd_gen_age(args):
    from ..secrets import keys

    ws = Workspace(args)
    recipient, path, created = keys.generate_age_key(args.key_file)
    out(f"{'created' if created else 'reusing'} age key {path} (mode 0600)"
        + ("" if created else " (none created)"))
    out(f"recipient: {recipient}")
    out(f"back up {path} somewhere safe and outside this repository; sops reads it from there "
        "(or from SOPS_AGE_KEY_FILE)")
    out(f"next: add `export SOPS_AGE_RECIPIENT ?= {recipient}` to Makefile.vars (or your VARS_FILE), "
        f"then make {ws.config}")
    return 0


def cmd_sops_config(args):
    from ..core.files import read_text
    from ..secrets import keys
    from ..errors import UserError

    ws = Workspace(args)
    v = ws.variables
    if args.pgp or args.age:  # exactly the recipients given
        pgp = keys.split_list(",".join(args.pgp or []))
        age = keys.split_list(",".join(args.age or []))
    else:
        pgp = keys.split_list(v.get("GPG_FINGERPRINT"))
        age = keys.split_list(v.get("SOPS_AGE_RECIPIENT"))
        if not pgp and v.get("SOPS_KEY_NAME") and v.get("SOPS_KEY_EMAIL"):
            uid = keys.user_id(v["SOPS_KEY_NAME"], v["SOPS_KEY_EMAIL"])
            try:
                pgp = keys.find_keys(keys.gpg(), uid)[:1]
            except UserError:
                if not age:  # no gpg, and no age key either: say why
                    raise
    pgp = [fp.upper() for fp in pgp]
    if not pgp and not age:
        raise UserError("no recipient for secrets: run `make sops_gen_gpg` (or set GPG_FINGERPRINT), "
                        "or `make sops_gen_age` and set SOPS_AGE_RECIPIENT")
    keys.check_fingerprints(pgp)
    keys.check_age_recipients(age)
    text = keys.sops_config(pgp, age)
    if os.path.exists(ws.config):
        current = read_text(ws.config, "sops config")
        if current == text:
            out(f"{ws.config} is up to date")
            return 0
        if not args.force:
            raise UserError(f"{ws.config} exists with other recipients; rerun with --force to "
                            "replace it, then `render.py secrets rotate`")
    missing = [fp for fp in pgp if not keys.has_public_key(fp)]
    tmp = f"{ws.config}.new"
    try:
        os.makedirs(ws.directory, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, ws.config)
    except OSError as err:
        raise UserError(f"cannot write: {err.strerror}", file=ws.config) from None
    out(f"wrote {ws.config}: secrets/*.yml encrypted for "
        + ", ".join([f"pgp:{fp}" for fp in pgp] + [f"age:{r}" for r in age]))
    for fp in missing:
        print(f"warning: GPG key {fp} is not in this keyring: import its public key "
              "(gpg --import) before creating or rotating secrets", file=sys.stderr)
    if args.force:
        out("existing secret files keep their old recipients until `render.py secrets rotate`")
    return 0
