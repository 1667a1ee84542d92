# Quick start: `make run` serves with the embedded defaults; `make test` installs and tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install node-deps sdk-ts graphiql docs-ui console graphql-schema run test unit lint bench bench-own clean

# llama-cpp-python (the bundled local model) compiles llama.cpp: once per machine, without
# -march=native (some VMs advertise AMX/AVX-512 they then trap), into a wheel kept here
LLAMA_VERSION := 0.3.36
LLAMA_WHEELS ?= $(HOME)/.cache/circuit-breaker/wheels
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

$(VENV)/.installed: pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --quiet --no-deps --no-cache-dir \
	    --no-binary llama-cpp-python -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	$(PY) -m pip install --quiet --no-deps --force-reinstall \
	  $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet -e './sdk/python[ws,testing]'
	touch $@

# the project's bytecode, written ahead: where PYTHONDONTWRITEBYTECODE is set, every new Ray
# worker (a tenant actor's) would compile the sources again (~0.5 s of its cold start)
install: $(VENV)/.installed graphiql docs-ui console
	$(PY) -m compileall -q actors api domain projections chaos migration scenarios serve_app.py cli.py >/dev/null

# GraphiQL's browser files, from npm by the lockfile, into api/graphql/graphiql/dist (served
# by the gateway under /graphql and /graphiql/: no CDN, works offline)
GRAPHIQL := api/graphql/graphiql
$(GRAPHIQL)/dist/.built: api/static_build.mjs $(addprefix $(GRAPHIQL)/,package.json package-lock.json build.mjs index.html init.js page.css)
	npm ci --prefix $(GRAPHIQL) --no-audit --no-fund
	node $(GRAPHIQL)/build.mjs

graphiql: $(GRAPHIQL)/dist/.built

# Swagger UI's browser files for /docs, from npm by the lockfile, into api/docs_ui/dist
DOCS_UI := api/docs_ui
$(DOCS_UI)/dist/.built: api/static_build.mjs $(addprefix $(DOCS_UI)/,package.json package-lock.json build.mjs index.html init.js)
	npm ci --prefix $(DOCS_UI) --no-audit --no-fund
	node $(DOCS_UI)/build.mjs

docs-ui: $(DOCS_UI)/dist/.built

# the web console at /console: Preact and uPlot from npm by the lockfile, bundled by esbuild
# (api/console/build.mjs) into api/console/dist; nothing from a CDN at run time
CONSOLE := api/console
$(CONSOLE)/dist/.built: $(addprefix $(CONSOLE)/,package.json package-lock.json build.mjs index.html) $(wildcard $(CONSOLE)/src/*.* $(CONSOLE)/src/views/*.*)
	npm ci --prefix $(CONSOLE) --no-audit --no-fund
	node $(CONSOLE)/build.mjs

console: $(CONSOLE)/dist/.built

# api/graphql/schema.graphql from the live schema, then the legacy breaking-change gate
graphql-schema: $(VENV)/.installed
	$(PY) -m api.graphql.export
	$(PY) -m api.graphql.gate

run: install
	$(PY) serve_app.py

# the official openai TypeScript SDK, for the Node test of /v1/chat/completions
node-deps:
	npm ci --prefix tests/node --no-audit --no-fund

# the TypeScript SDK (sdk/typescript): its dev dependencies from the lockfile, then tsc; its
# `npm test` runs against the test cluster from tests/integration/test_sdk_typescript.py
sdk-ts:
	npm ci --prefix sdk/typescript --no-audit --no-fund
	npm run --prefix sdk/typescript build

test: install node-deps sdk-ts
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# the in-process unit tests only (no Ray, no servers): seconds
unit: install
	$(PY) -m pytest -q tests/unit

# the peer comparison table (LiteLLM, Portkey, bare Serve, this project; ../shared/bench-peers)
bench: install
	bash bench/peers.sh

# this project alone against the provider emulator (C=1 and C=32)
bench-own: install
	$(PY) bench/bench_execute.py

clean:
	rm -rf $(VENV) data
