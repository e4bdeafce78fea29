# Kubernetes cluster toolkit: takes a fresh kubeadm cluster to a secured,
# usable state and keeps administering it.
#
# Usage:
#   make test                  set up .venv and run the whole test suite
#   make render                render + validate every component into build/
#   make install               apply every install component, in order, waiting for rollouts
#   make <component>           apply one component (ACTION=delete make <component> removes it, YES=1 without asking)
#   make diff                  what applying everything would change (C=NAME: one component)
#   make help                  list every target
#
# Variables come from Makefile.vars (defaults, `export NAME ?= value`), the
# per-cluster file named by VARS_FILE, and the environment, which wins.
# Every target is one line calling render.py; the logic lives in k8s/.

VARS_FILE ?=
-include $(VARS_FILE)
include Makefile.vars

PYTHON  := .venv/bin/python
RENDER  := $(PYTHON) render.py
BUILD   ?= build
ACTION  ?= apply
COMPONENTS := $(notdir $(wildcard manifests/*))

.DEFAULT_GOAL := help
# `make diff NAME` would diff everything and then apply NAME (make runs every goal)
ifneq ($(and $(filter diff,$(MAKECMDGOALS)),$(filter $(COMPONENTS),$(MAKECMDGOALS))),)
$(error make diff takes one component as C=NAME: make diff C=$(firstword $(filter $(COMPONENTS),$(MAKECMDGOALS))))
endif
.PHONY: help test yaml_hunt controlplane sandbox sandbox_down render validate vars components bench clean install diff check kubeconfig \
	untaint_master admission_config sops_gen_gpg sops_gen_age secrets secret_set data_sync_keys FORCE \
	persistent persistent_dirs node_labels encryption_key encryption_config \
	encryption_install encryption_rotate audit_policy audit_install kubelet_serving_certs approve_kubelet_certs \
	vendor $(COMPONENTS)

help: ## list every target with its description
	@sed -n 's/^\([$$()A-Za-z0-9_./%-]*\):.*## \(.*\)/  \1\t\2/p' Makefile | sed 's/$$(COMPONENTS)/<component>/; s/%/NAME/' | expand -t 24

# compat: the checkout on sys.path by a .pth line; the default import hook costs 20 ms of every start
.venv/.installed: pyproject.toml
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' --config-settings editable_mode=compat && touch $@

.venv: .venv/.installed ## create the virtualenv with the pinned dependencies

test: .venv/.installed controlplane ## run the whole test suite (cluster-facing tests on a real control plane)
	HYPOTHESIS_PROFILE=ci $(PYTHON) -m pytest

yaml_hunt: .venv/.installed controlplane ## the YAML oracle with many more generated manifests (EXAMPLES=20000, SEED=N: other ones)
	YAML_ORACLE_EXAMPLES=$(or $(EXAMPLES),20000) YAML_ORACLE_SEED=$(SEED) $(PYTHON) -m pytest -q tests/core/test_yaml_oracle.py

controlplane: .venv/.installed ## build kube-apiserver, controller-manager, scheduler and etcd for the tests (cached)
	$(PYTHON) tests/controlplane/build.py

sandbox: .venv/.installed controlplane ## start a real control plane with simulated K8S_NODES and print its KUBECONFIG
	$(PYTHON) -m tests.controlplane.sandbox up

sandbox_down: .venv/.installed ## stop the control plane `make sandbox` started
	$(PYTHON) -m tests.controlplane.sandbox down

render: .venv/.installed ## render + validate every component into build/ (no cluster needed)
	$(RENDER) template --out $(BUILD)

validate: .venv/.installed ## render + validate every component, print a summary only
	$(RENDER) validate

vendor: .venv/.installed ## download the upstream manifests components import into vendor/ (UPDATE=1: all again)
	$(RENDER) vendor $(if $(UPDATE),--update)

install: .venv/.installed ## apply every install component in dependency order, waiting for rollouts
	$(RENDER) install

diff: .venv/.installed ## what applying would change: everything, or C=NAME one component (never applied)
	$(RENDER) diff $(C)

$(COMPONENTS): .venv/.installed ## apply one component; ACTION=delete removes it (asks first; YES=1 does not)
	$(RENDER) $(ACTION) $@ $(if $(and $(filter delete,$(ACTION)),$(YES)),--yes)

check: .venv/.installed ## preflight: podSubnet vs POD_CIDR, versions, kubelet TLS, retired components, NetworkPolicy enforcement
	$(RENDER) check

sops_gen_gpg: .venv/.installed ## create (or reuse) the GPG key for secrets/, without prompts
	$(RENDER) secrets gen-gpg

sops_gen_age: .venv/.installed ## create (or reuse) an age key for secrets/ (instead of or besides GPG)
	$(RENDER) secrets gen-age

secrets/.sops.yaml: | .venv/.installed ## write the sops rules: secrets/*.yml encrypted for your key(s)
	$(RENDER) secrets sops-config

# FORCE: an existing file is not "up to date" but told how to change it; @: SECRET_ARGS is not echoed
secrets/%.yml: FORCE | .venv/.installed ## create secrets/NAME.yml encrypted, then edit it in $EDITOR (SECRET_ARGS="--from-file KEY=PATH" without a terminal)
	@$(RENDER) secrets create $* $(SECRET_ARGS)

secret_set: .venv/.installed ## NAME=db SET="KEY=@FILE ..." (or KEY=- for stdin): set keys of secrets/NAME.yml, no editor
	@$(RENDER) secrets set $(NAME) $(SET)

data_sync_keys: .venv/.installed ## new ssh keypairs for data-sync, encrypted in secrets/$DATA_SYNC_SECRET.yml
	$(RENDER) secrets ssh-keys $(DATA_SYNC_SECRET) --namespace data-sync

secrets: .venv/.installed ## apply every secrets/*.yml to the cluster (created or updated)
	$(RENDER) secrets apply

secrets/%: .venv/.installed ## apply secrets/NAME.yml to the cluster (created or updated)
	$(RENDER) secrets apply $*

persistent: .venv/.installed ## create/update the node-local PersistentVolumes of volumes/ on every node of K8S_NODES
	$(RENDER) persistent --check-nodes

persistent_dirs: .venv/.installed ## NODE=host: create that node's volume directories over one ssh connection
	$(RENDER) persistent-dirs $(NODE)

node_labels: .venv/.installed ## apply the node labels of volumes/nodes.yaml (labels dropped from it are removed)
	$(RENDER) node-labels

encryption_key: .venv/.installed ## create (or reuse) the etcd encryption key in secrets/etcd-encryption.yml (sops)
	$(RENDER) encryption key

encryption_config: .venv/.installed ## write build/kubeadm/ (the kubeadm patch, encryption at rest among it), show the config (keys masked)
	$(RENDER) encryption-config --out $(BUILD)

encryption_install: .venv/.installed ## NODE=host: copy the EncryptionConfiguration to a control-plane node (root, 0600)
	$(RENDER) encryption install $(NODE)

encryption_rotate: .venv/.installed ## STEP=add|promote|rewrite|drop: one step of the etcd key rotation
	$(RENDER) encryption rotate $(STEP)

audit_policy: .venv/.installed ## write build/kubeadm/ (the API audit policy and the kubeadm patch)
	$(RENDER) audit-policy --out $(BUILD)

audit_install: .venv/.installed ## NODE=host: copy the audit policy to a control-plane node (root, 0600)
	$(RENDER) audit install $(NODE)

kubelet_serving_certs: .venv/.installed ## serverTLSBootstrap on every node of K8S_NODES (ssh, kubelet restarted), then approve their serving CSRs
	$(RENDER) kubelet-certs enable

approve_kubelet_certs: .venv/.installed ## approve pending kubelet serving CSRs that name only the requesting node's own names and addresses
	$(RENDER) kubelet-certs approve

kubeconfig: .venv/.installed ## write $KUBECONFIG_OUT with the sudo and user@$CLUSTER contexts
	$(RENDER) kubeconfig

untaint_master: .venv/.installed ## NODE=host: let workloads run on a control-plane node (single-node clusters)
	$(RENDER) untaint $(NODE)

admission_config: .venv/.installed ## write build/kubeadm/ (the Pod Security Admission defaults and the kubeadm patch)
	$(RENDER) admission-config --out $(BUILD)

vars: .venv/.installed ## show every variable, its value and where it came from
	$(RENDER) vars

components: .venv/.installed ## list components with their dependencies
	$(RENDER) components

bench: .venv/.installed ## run the benchmarks in bench/ and print ratios against their baselines
	$(PYTHON) bench/run.py

FORCE:

clean: ## remove build/ output
	rm -rf $(BUILD)
