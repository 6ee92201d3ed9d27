# heracles.secrets -- two commands do all the set-up: `make up` and `make test`.
SHELL        := /bin/bash
PYTHON       ?= python3
VENV         := .venv
BIN          := $(CURDIR)/$(VENV)/bin
COLL_ROOT    := $(CURDIR)/.collections
COLL_LINK    := $(COLL_ROOT)/ansible_collections/heracles/secrets
SANITY_ROOT  := $(CURDIR)/build/sanity
SANITY_DIR   := $(SANITY_ROOT)/ansible_collections/heracles/secrets
GETPIP_CACHE := $(HOME)/.ansible/test/cache
PYTEST_ARGS  ?=

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(COLL_ROOT)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: docs docs-lint changelog release manifests up down clean test sanity lint pytest units integration chaos molecule molecule-kind collection build venv dev help

help:
	@echo "make up      - create .venv, install pinned deps + the collection, start and bootstrap the local 3-node cluster"
	@echo "make test    - install test deps, then ansible-test sanity, ansible-lint and the pytest suite"
	@echo "make down    - stop the local cluster (data kept);  make clean - stop it and remove .local/"
	@echo "make build   - build the collection tarball"
	@echo "make docs    - the collection docsite (antsibull-docs + Sphinx) in build/docsite; make changelog - CHANGELOG.md"
	@echo "make manifests ENV=<env> - the workload-delivery objects pulumi/platform applies, as YAML in manifests/<env>/"
	@echo "make bench   - benchmarks on a fresh local cluster (QUICK=1: a small run) -> benchmarks/results/"
	@echo "make molecule      - molecule test -s default (the local flow on a cluster of its own; part of make test)"
	@echo "make molecule-kind - molecule test -s kind (needs Docker, kind, helm and kubectl)"
	@echo "make chaos   - long fault runs: repeated leader kills, 5000 secrets (tests/reliability, -m chaos; not in make test)"

# --- environment ---------------------------------------------------------------------------
$(VENV)/.runtime: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.runtime
dev: $(VENV)/.dev etcd

# A real etcd for tests/integration/test_envelope_encryption.py (Debian's etcd-server; root or sudo). Outside CI a
# failed install only means those tests are skipped; in CI (CI set) it fails the build.
.PHONY: etcd
etcd:
	@command -v etcd >/dev/null 2>&1 || tests/setup/install-etcd.sh || { test -z "$$CI" && echo "etcd not installed: the etcd tests will be skipped"; }

# checkov (tests/lib/k8s_spec.py) has a venv of its own: its pins conflict with requirements-dev.txt.
CHECKOV_VENV := $(CURDIR)/.venv-checkov

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q -r requirements-checkov.txt
	@touch $@

# The collection is linked, not copied, into .collections so edits are live; `make build` makes the tarball.
collection: $(COLL_LINK)
$(COLL_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../.. $@

build: venv
	$(BIN)/ansible-galaxy collection build --force --output-path build/

# --- the embedded default ------------------------------------------------------------------
up: venv collection
	$(BIN)/ansible-playbook -i inventories/local playbooks/site.yml

down: venv collection
	$(BIN)/ansible-playbook -i inventories/local playbooks/down.yml

clean: venv collection
	-$(BIN)/ansible-playbook -i inventories/local playbooks/down.yml -e down_state=absent
	rm -rf .local build tests/output

# --- docs and changelog (antsibull-docs, antsibull-changelog: the Ansible way) ------------------------------------
# Plugin, module and role reference from their own documentation; docs/docsite/ adds the guides (runbooks, data).
ANTSIBULL_ENV := PATH=$(BIN):$$PATH ANSIBLE_COLLECTIONS_PATH=$(COLL_ROOT)
docs-lint: dev collection
	cd $(COLL_LINK) && $(ANTSIBULL_ENV) $(BIN)/antsibull-docs lint-collection-docs --plugin-docs .
	$(BIN)/antsibull-changelog lint $$(ls changelogs/fragments/*.yml 2>/dev/null)

$(VENV)/.docs: requirements-docs.txt $(VENV)/.dev
	$(BIN)/python -m pip install -q -r requirements-docs.txt
	@touch $@

# The collection's docsite into build/docsite/build/html (Sphinx with the Ansible theme).
docs: $(VENV)/.docs collection
	rm -rf build/docsite && mkdir -p build/docsite
	$(ANTSIBULL_ENV) $(BIN)/antsibull-docs sphinx-init --use-current --dest-dir build/docsite heracles.secrets
	@# build.sh's steps without -W: offline, the references into docs.ansible.com (intersphinx) stay unresolved
	cd build/docsite && $(ANTSIBULL_ENV) $(BIN)/antsibull-docs collection --use-current --cleanup everything \
	  --dest-dir rst heracles.secrets && $(BIN)/sphinx-build -M html rst build -c . -q --keep-going
	@echo "open build/docsite/build/html/index.html"

# CHANGELOG.md from changelogs/changelog.yaml; `make release VERSION=x.y.z` folds the fragments into a release.
changelog: dev collection
	$(ANTSIBULL_ENV) $(BIN)/antsibull-changelog generate

release: dev collection
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=x.y.z"; exit 2; }
	$(ANTSIBULL_ENV) $(BIN)/antsibull-changelog release --version $(VERSION)

# --- GitOps ---------------------------------------------------------------------------------
# The very objects pulumi/platform applies for the stack ENV (apps' namespaces, SecretStores, ExternalSecrets, RBAC,
# NetworkPolicies, alerts), one YAML file per object, from vault/ and pulumi/platform/Pulumi.<ENV>.yaml.
ENV ?=
manifests: dev
	@test -n "$(ENV)" || { echo "usage: make manifests ENV=<environment> (one of: $$(ls vault/environments | sed 's/\.yml$$//' | tr '\n' ' '))"; exit 2; }
	$(BIN)/python pulumi/manifests.py --env $(ENV) --out manifests/$(ENV)

# --- tests ---------------------------------------------------------------------------------
test: dev collection $(CHECKOV_VENV)/.installed
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory docs-lint
	$(MAKE) --no-print-directory pytest
	$(MAKE) --no-print-directory molecule

pytest: dev collection $(CHECKOV_VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests

units: dev collection $(CHECKOV_VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/unit

integration: dev collection
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/integration

# pytest.ini deselects the chaos marker; this target asks for it (tests/reliability/test_chaos.py, ~10 min).
chaos: dev collection
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/reliability -m chaos

# Molecule scenarios live in extensions/molecule/; run them by name (the kind driver is absent here).
molecule: dev collection
	$(BIN)/molecule test -s default

molecule-kind: dev collection
	$(BIN)/molecule test -s kind

lint: dev collection
	$(BIN)/ansible-lint --profile production --offline

$(GETPIP_CACHE)/get_pip_24_2.py: tests/sanity/get_pip_standin.py
	@mkdir -p $(GETPIP_CACHE)
	@ls $(GETPIP_CACHE)/pip-24.2-*.whl >/dev/null 2>&1 || \
	  $(BIN)/python -m pip download -q --no-deps pip==24.2 -d $(GETPIP_CACHE)
	cp tests/sanity/get_pip_standin.py $@

# ansible-test wants the collection under ansible_collections/<ns>/<name>: copy the tracked tree there.
sanity: dev $(GETPIP_CACHE)/get_pip_24_2.py
	@rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_DIR)
	@(git ls-files -co --exclude-standard 2>/dev/null || find . -type f -not -path './.*') \
	  | grep -v -E '^(\.ci/|\.venv/|\.collections/|\.local/|build/)' \
	  | while read -r f; do [ -e "$$f" ] && echo "$$f"; done \
	  | tar -cf - -T - | tar -xf - -C $(SANITY_DIR)
	@# Own git repo for the copy: otherwise ansible-test walks up to this repo's .git, where build/
	@# is ignored, lists no files and skips every test.
	@command -v git >/dev/null && git -C $(SANITY_DIR) init -q || true
	cd $(SANITY_DIR) && $(BIN)/ansible-test sanity --python 3.11 --color no --requirements

# --- benchmarks ----------------------------------------------------------------------------
# .venv-bench holds the competitor (the `ansible` package with community.hashi_vault) and matplotlib: never a
# runtime dependency. Our side runs from .venv. QUICK=1: N=50, one make up, a few minutes.
# jq, the audit report's baseline, is Debian's: bench.py (audit_bench.ensure_jq) runs apt-get install -y jq when it is
# missing and measures the module alone when that fails.
.PHONY: bench
BENCH_VENV := .venv-bench
QUICK      ?=
BENCH_ARGS ?=

$(BENCH_VENV)/.installed: benchmarks/requirements.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r benchmarks/requirements.txt
	@touch $@

bench: venv collection $(BENCH_VENV)/.installed
	$(BIN)/python benchmarks/bench.py $(if $(QUICK),--quick) $(BENCH_ARGS)
