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

.PHONY: test
test: ## run every test against a real PostgreSQL (private cluster unless DATABASE_URL is set), with -race
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: fuzz
fuzz: ## fuzz the parsers briefly (FUZZTIME=30s per target)
	$(GO) test ./ledger -run '^$$' -fuzz '^FuzzParseTonnes$$' -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./internal/registry -run '^$$' -fuzz '^Fuzz' -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./reports -run '^$$' -fuzz '^FuzzIndentCompact$$' -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./internal/store -run '^$$' -fuzz '^FuzzParseMetadata$$' -fuzztime $${FUZZTIME:-30s}

.PHONY: bench
bench: ## seed 1,000 contracts / 10M postings once (kept in the cluster), then time every report, the audit and writes
	$(GO) run ./cmd/clbench -contracts 1000 -postings 10000000 -runs 5

.PHONY: bench-smoke
bench-smoke: ## the benchmark, small: 20 contracts, 20,000 postings (CI runs it)
	$(GO) run ./cmd/clbench -contracts 20 -postings 20000 -runs 2

.PHONY: migrate
migrate: build ## apply pending migrations
	./$(BIN) migrate

.PHONY: db-stop
db-stop: build ## stop the private PostgreSQL cluster
	./$(BIN) db stop

.PHONY: clean
clean: ## remove the binary (the private cluster in .data/ stays; `make db-stop` first to remove it)
	rm -rf bin
