# yaosu — the only entry point humans need.  `make run` · `make test` · `make proto` · `make lint` · `make bench`
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)/gen:$(CURDIR)
PROTOS := $(shell find proto -name '*.proto')


.PHONY: venv proto run run-observed test test-fast lint bench browser clean
venv: $(VENV)/.ok
$(VENV)/.ok: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --python $(BIN)/python -q -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e .
	touch $@

proto: gen/.ok
gen/.ok: $(PROTOS) $(VENV)/.ok
	rm -rf gen && mkdir -p gen
	$(BIN)/python -m grpc_tools.protoc -I proto -I $$($(BIN)/python -c 'import grpc_tools,os;print(os.path.join(os.path.dirname(grpc_tools.__file__),"_proto"))') \
	  --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	touch $@

run: proto
	$(BIN)/python -m tools.devstack

# The suite plus a real Prometheus (Debian's prometheus package) with deploy/prometheus rules on :9090.
run-observed: proto browser
	$(BIN)/python -m tools.devstack --observed

# Browser, fonts and promtool for the portal and monitoring tests (Debian packages; skipped when present).
browser:
	@command -v chromium >/dev/null && fc-list | grep -q "Noto Sans CJK" && command -v promtool >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk prometheus >/dev/null; }

test: proto browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: proto
	$(BIN)/python -m pytest -q -m "not e2e and not slow" $(PYTEST_ARGS)

lint: proto
	$(BIN)/ruff check services tests tools
	$(BIN)/lint-imports

bench: proto
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

clean:
	rm -rf gen .data .pytest_cache

.PHONY: dashboards k8s-render compose-up
dashboards: venv
	$(BIN)/python deploy/grafana/dashboards.py && $(BIN)/python deploy/k8s/sync_files.py
k8s-render:
	kubectl kustomize deploy/k8s/overlays/full
compose-up:
	docker compose -f deploy/compose/docker-compose.yml up --build
