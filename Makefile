# carbonledger: the index of habits. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/carbonledger
PKGS  := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build the binary into bin/carbonledger
	$(GO) build -o $(BIN) ./cmd/carbonledger

.PHONY: demo
demo: build ## load the two seed contracts with an illustrative history and print their positions
	./$(BIN) demo

# The export tests check our journal with the real hledger and bean-check, and the dashboard
# test drives headless Chromium. What is missing is installed from Debian's packages when we
# may (root, or sudo without a password); otherwise the target stops at once with the one
# command to run.
TEST_TOOLS := hledger:hledger bean-check:beancount chromium:chromium

.PHONY: test-deps
test-deps: ## install what the tests need and the machine lacks (hledger, beancount, chromium)
	@need=""; for t in $(TEST_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || need="$$need $${t##*:}"; done; \
	if [ -z "$$need" ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	else echo "make test needs$$need; install them with:"; echo "  sudo apt-get install -y$$need"; exit 1; fi; \
	echo "make: installing$$need for the tests"; \
	$$sudo apt-get update -q >/dev/null && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$need >/dev/null || \
	{ echo "make: could not install$$need; run: sudo apt-get install -y$$need"; exit 1; }

.PHONY: check
check: ## gofmt, go vet and go mod tidy: the quick checks make test starts with
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) vet $(PKGS)

.PHONY: test
test: test-deps check ## install missing test tools, check, then run every test with -race against a real PostgreSQL (private cluster unless DATABASE_URL is set)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: fuzz
fuzz: ## fuzz every parser: each Fuzz target of every package in turn, FUZZTIME (30s) each; make test runs their seeds
	@set -eo pipefail; \
	targets=$$($(GO) test -list '^Fuzz' $(PKGS) | awk '/^Fuzz/ { n[++k] = $$1 } /^ok/ { for (i = 1; i <= k; i++) print $$2, n[i]; k = 0 }'); \
	test -n "$$targets" || { echo "make fuzz: no Fuzz targets found"; exit 1; }; \
	while read -r pkg target; do \
		echo "== $$pkg $$target ($${FUZZTIME:-30s})"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$target\$$" -fuzztime $${FUZZTIME:-30s} </dev/null; \
	done <<< "$$targets"

.PHONY: bench
bench: ## seed 1,000 contracts / 10M postings once (kept in the cluster), time every report and the audit, writes beside pgbench TPC-B, the API beside the store, then import beside COPY
	$(GO) run ./cmd/clbench -contracts 1000 -postings 10000000 -runs 5 -write-seconds 10 -history 0,10000,100000 -bulk-rows 1000000 -bulk-contracts 1000

.PHONY: bench-writes
bench-writes: ## only the write section of make bench: deliveries at 1-32 writers beside pgbench TPC-B, and latency over history
	$(GO) run ./cmd/clbench -only writes -write-seconds 10 -history 0,10000,100000

.PHONY: bench-api
bench-api: ## only the API section of make bench: 32 clients posting deliveries over loopback beside store.Deliver at 32 writers
	$(GO) run ./cmd/clbench -only api -write-seconds 10

.PHONY: bench-bulk
bench-bulk: ## only the bulk section of make bench: carbonledger import of 1M deliveries over 1,000 contracts, beside plain COPY
	$(GO) run ./cmd/clbench -only bulk -bulk-rows 1000000 -bulk-contracts 1000

.PHONY: bench-smoke
bench-smoke: ## the benchmark, small: 20 contracts, 20,000 postings, 2 s per write and API level, 20,000 imported rows (CI runs it)
	$(GO) run ./cmd/clbench -contracts 20 -postings 20000 -runs 2 -write-seconds 2 -write-warmup 1 -history 0,1000,10000 -bulk-rows 20000 -bulk-contracts 20

.PHONY: migrate
migrate: build ## apply pending migrations
	./$(BIN) migrate

.PHONY: db-stop
db-stop: build ## stop the private PostgreSQL cluster
	./$(BIN) db stop

.PHONY: clean
clean: ## remove the binary (the private cluster in .data/ stays; `make db-stop` first to remove it)
	rm -rf bin
