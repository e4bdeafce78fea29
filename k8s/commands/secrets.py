"""The `render.py secrets` command family: its subcommands and their arguments.

Kubernetes Secrets are kept in git, encrypted with sops, applied server-side:

    render.py secrets gen-gpg            make (or reuse) the GPG key, no prompts
    render.py secrets gen-age            make (or reuse) an age key instead
    render.py secrets sops-config        write secrets/.sops.yaml for those keys
    render.py secrets create NAME        secrets/NAME.yml, encrypted from the start
    render.py secrets ssh-keys NAME      secrets/NAME.yml holding new ssh keypairs, encrypted
    render.py secrets edit NAME          sops edit, plaintext only on tmpfs
    render.py secrets set NAME K=@FILE   set keys from files or stdin, no editor, no plaintext on disk
    render.py secrets apply [NAME…]      decrypt in memory, substitute, validate, apply
    render.py secrets list               keys, recipients, in sync with the cluster?
    render.py secrets rotate [NAME…]     re-encrypt for the recipients of .sops.yaml
    render.py secrets check              every file under secrets/ is sops-encrypted

Contract: `register(commands)` adds them to render.py's parser, each with
`run` set to its cmd_* function (k8s.commands.secret_keys for the keys,
k8s.commands.secret_files for the files); this module only wires arguments.
The shared work (files, decryption in memory, checks, masking) is in
k8s.secrets. Only the standard library is imported at module level so
`render.py --help` stays fast; each command imports what it needs.
"""

import argparse

from .options import cluster_options, dry_run, namespace
from .secret_files import (MAX_PAIRS, cmd_apply, cmd_check, cmd_create, cmd_edit, cmd_list, cmd_rotate,
                           cmd_ssh_keys)
from .secret_keys import cmd_gen_age, cmd_gen_gpg, cmd_sops_config
from .secret_set import cmd_set
from ..secrets.files import SECRETS_DIR


def register(commands):
    """Add `secrets SUBCOMMAND …` to the subparsers action `commands` of render.py."""
    parser = commands.add_parser("secrets", help="sops-encrypted Secrets in secrets/: keys, create, "
                                                 "apply, list, rotate")
    parser.add_argument("--dir", dest="secrets_dir", default=SECRETS_DIR, metavar="DIR",
                        help="folder of the encrypted files and their .sops.yaml (default: %(default)s)")
    sub = parser.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("gen-gpg", help="create (or reuse) the GPG key for secrets, without prompts")
    p.add_argument("--key-type", choices=("rsa4096", "rsa3072", "ed25519"),
                   help="default: $SOPS_KEY_TYPE or rsa4096")
    p.set_defaults(run=cmd_gen_gpg)

    p = sub.add_parser("gen-age", help="create (or reuse) an age key for secrets")
    p.add_argument("--key-file", metavar="FILE",
                   help="default: $SOPS_AGE_KEY_FILE or ~/.config/sops/age/keys.txt")
    p.set_defaults(run=cmd_gen_age)

    p = sub.add_parser("sops-config", help="write secrets/.sops.yaml: who can decrypt secrets/*.yml")
    p.add_argument("--pgp", action="append", metavar="FPR",
                   help="GPG fingerprint(s) (default: $GPG_FINGERPRINT or the $SOPS_KEY_NAME key)")
    p.add_argument("--age", action="append", metavar="RECIPIENT",
                   help="age recipient(s) (default: $SOPS_AGE_RECIPIENT)")
    p.add_argument("--force", action="store_true", help="replace an existing .sops.yaml")
    p.set_defaults(run=cmd_sops_config)

    p = sub.add_parser("create", help="create secrets/NAME.yml encrypted, then edit it in $EDITOR")
    p.add_argument("name", metavar="NAME", help="the Secret's name: secrets/NAME.yml")
    p.add_argument("--from-literal", action="append", metavar="KEY=VALUE",
                   help="a value (repeatable); it shows in your shell history: prefer --from-file")
    p.add_argument("--from-file", action="append", metavar="[KEY=]PATH",
                   help="a value read from a file (repeatable)")
    namespace(p, "the Secret's namespace, written into the file; without it $K8S_NAMESPACE is, "
                 "substituted when applied")
    p.add_argument("--type", default="Opaque", help="Secret type (default: %(default)s)")
    p.add_argument("--edit", dest="edit", action="store_true", default=None,
                   help="open $EDITOR even with values given (needs a terminal on stdin)")
    p.add_argument("--no-edit", dest="edit", action="store_false",
                   help="never open $EDITOR, even on a terminal without values given")
    p.set_defaults(run=cmd_create)

    p = sub.add_parser("ssh-keys", help="create secrets/NAME.yml holding new ed25519 ssh keypairs "
                                        "(sshkey1/pubkey1, ...), encrypted")
    p.add_argument("name", metavar="NAME", help="the Secret's name: secrets/NAME.yml")
    p.add_argument("--pairs", type=int, default=2,
                   help=f"how many keypairs, 1 to {MAX_PAIRS} (default: %(default)s)")
    namespace(p, "the Secret's namespace, written into the file; without it $K8S_NAMESPACE is, "
                 "substituted when applied")
    p.set_defaults(run=cmd_ssh_keys)

    p = sub.add_parser("edit", help="edit secrets/NAME.yml in $EDITOR (sops edit)")
    p.add_argument("name", metavar="NAME", help="the Secret's name: secrets/NAME.yml")
    p.set_defaults(run=cmd_edit)

    p = sub.add_parser("set", help="set keys of secrets/NAME.yml from files or stdin (KEY=@FILE, KEY=-), "
                                   "encrypted in place, no editor, no plaintext on disk")
    p.add_argument("name", metavar="NAME", help="the Secret's name: secrets/NAME.yml")
    p.add_argument("pairs", nargs="+", metavar="KEY=@FILE|KEY=-",
                   help="a key and where its value comes from: a file, or stdin for one key")
    p.set_defaults(run=cmd_set)

    p = sub.add_parser("apply", help="apply secrets to the cluster: created, configured or unchanged")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every secrets/*.yml")
    p.add_argument("--allow-kind", action="append", metavar="KIND",
                   help="accept this kind besides Secret (repeatable)")
    p.add_argument("--force-conflicts", action="store_true",
                   help="take over fields set by other field managers (e.g. kubectl create)")
    namespace(p, "K8S_NAMESPACE for this run: where secrets whose file says $K8S_NAMESPACE go")
    dry_run(p)
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_apply)

    p = sub.add_parser("list", help="each file: its keys, recipients and whether the cluster has it")
    p.add_argument("--no-cluster", action="store_true", help="do not decrypt or ask the cluster")
    p.add_argument("--allow-kind", action="append", metavar="KIND", help=argparse.SUPPRESS)
    namespace(p, "K8S_NAMESPACE for this run: where the cluster is asked for secrets whose file "
                 "says $K8S_NAMESPACE")
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_list)

    p = sub.add_parser("rotate", help="re-encrypt secrets for the recipients of .sops.yaml")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every secrets/*.yml")
    p.add_argument("--new-data-key", action="store_true",
                   help="also re-encrypt every value with a new data key (after removing a holder)")
    p.set_defaults(run=cmd_rotate)

    p = sub.add_parser("check", help="fail if a file under secrets/ is not sops-encrypted")
    p.add_argument("paths", nargs="*", metavar="PATH", help="default: every file in secrets/")
    p.set_defaults(run=cmd_check)
    return parser
