# Pharos Node. `make run` is the main job; `make test` runs every test on OTP 25, 27 and 29.
SHELL := /bin/bash
GO ?= go
PKGS := ./...
STATICCHECK_VERSION := v0.8.2
# Releases the tests run against; `make test OTP_RELEASES=25` for a quick pass.
OTP_RELEASES ?= 25 27 29
GOTEST_FLAGS ?= -count=1 -timeout 15m

.PHONY: all build package package-test deps container-bases test test-containers unit-and-interop run bench bench-quick bench-outage otp lint fuzz fuzz-long clean licenses docs cluster-must-show

all: build

## build: bin/pharos-node, stamped with its version, commit and build date (pharos-node --version)
VERSION = $(shell scripts/version.sh)
LDFLAGS = -X main.version=$(VERSION) -X main.commit=$(shell git rev-parse HEAD 2>/dev/null) \
	-X main.buildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/pharos-node ./cmd/pharos-node

## package: a static binary and a .deb in _build/package (scripts/package.sh)
package:
	GO=$(GO) scripts/package.sh

## package-test: build the .deb, install it with dpkg, check it, purge it (scripts/package-test.sh)
package-test:
	GO=$(GO) scripts/package-test.sh

## otp: install OTP 25 (Debian packages) and build or reuse OTP 27 and 29 (scripts/otp.sh)
otp:
	scripts/otp.sh install all

## deps: Debian packages the tests need besides Erlang (openssl, prometheus-node-exporter, podman,
## runc, debootstrap)
deps:
	scripts/test-deps.sh

## container-bases: the Erlang base images of the container suite, built once and cached under
## ~/.cache/pharos/containers (scripts/containers.sh: a debootstrap root filesystem for OTP 25, the
## scripts/otp.sh builds for 27 and 29), one per release of CONTAINER_OTP_RELEASES (25, 27 and 29)
CONTAINER_OTP_RELEASES ?= $(filter 25 27 29,$(OTP_RELEASES))
container-bases:
	@set -e; for rel in $(CONTAINER_OTP_RELEASES); do scripts/containers.sh base $$rel; done

## test: provision Erlang, lint, then every Go test (unit and real-erl interop) once per OTP release,
## the container suite (test/container) once, with the Brain's container on each release of
## CONTAINER_OTP_RELEASES, then the packages that start no Ergo node again under the race
## detector. (Ergo v3.1.0 itself races in every node alive at a minute boundary: node/cron.go
## assigns its timer after time.AfterFunc, whose callback reads it; -race reports that at random
## in fsm, agent, node and cmd/pharos-node; of agent and fsm, the race pass runs tests that start
## no node: RACE_AGENT_TESTS, RACE_FSM_TESTS, RACE_CLUSTER_TESTS.) The network-fault suite (test/faults, with
## internal/netfault; docs/reliability.md) runs in each release's pass: it needs root, iproute2 and
## nftables (deps installs them; without them it fails, never skips) and takes about a minute per
## release. FAULT_TABLE=path collects its table rows.
RACE_PKGS ?= ./buffer ./spill ./etf ./ingest ./internal/config ./tier ./ingest/otlp ./internal/otelmap ./internal/httpsec
RACE_AGENT_TESTS ?= ^(TestRecordArena)
RACE_FSM_TESTS ?= ^(TestInbox|TestInboxPutMany|TestInboxConcurrent|TestPropertyConfirmations)$$
RACE_CLUSTER_TESTS ?= ^(TestShardMovesOnlyItsShare|TestRoutingSpread|TestShardOf|TestParse|TestConfigChecks|TestLayout|TestKernelVersion)$$
CONTAINER_PKG := ./test/container
test: otp deps container-bases lint
	@set -e; pkgs=$$($(GO) list $(PKGS) | grep -v '/test/container$$'); for rel in $(OTP_RELEASES); do \
	  echo "=== go test on OTP $$rel ($$(scripts/otp.sh root $$rel)/bin/erl)"; \
	  PHAROS_OTP=$$rel FAULT_TABLE=$(if $(FAULT_TABLE),$(abspath $(FAULT_TABLE))) $(GO) test $(GOTEST_FLAGS) $$pkgs; \
	done
	@$(MAKE) --no-print-directory test-containers
	@echo "=== go test -race $(RACE_PKGS)"
	$(GO) test -race $(GOTEST_FLAGS) $(RACE_PKGS)
	$(GO) test -race $(GOTEST_FLAGS) -run '$(RACE_AGENT_TESTS)' ./agent
	$(GO) test -race $(GOTEST_FLAGS) -run '$(RACE_FSM_TESTS)' ./fsm
	$(GO) test -race $(GOTEST_FLAGS) -run '$(RACE_CLUSTER_TESTS)' ./cluster
	@echo "=== the .deb: built, installed, checked, purged"
	GO=$(GO) scripts/package-test.sh

## test-containers: the container suite alone: the images built from the working tree, the
## reference Brain in a container on each of CONTAINER_OTP_RELEASES, pharos-node on the host and in
## a container (docs/containers.md)
test-containers:
	@echo "=== go test $(CONTAINER_PKG): the Brain's container on OTP $(CONTAINER_OTP_RELEASES)"
	PHAROS_CONTAINER_OTP="$(CONTAINER_OTP_RELEASES)" $(GO) test $(GOTEST_FLAGS) -v $(CONTAINER_PKG)

## run: the main job: a local reference Brain and `pharos-node run --config examples/pharos.yaml` beside it;
## BRAINS=3: a cluster of 3 Brain nodes (mnesia store, pg group) that pharos-node discovers and shards over
BRAINS ?= 1
run:
	BRAINS=$(BRAINS) scripts/run.sh

## cluster-must-show: issue 21's runs at full size (1,000,000 records) on each of OTP_RELEASES: three
## Brain nodes, acked, a node killed with -9 mid-stream and restarted, routing shard and failover; pg
## discovery with a Brain joining, one leaving and the seed killed (docs/clusters.md); `make test` runs
## the same tests with fewer records
CLUSTER_COUNT ?= 1000000
cluster-must-show: otp
	@set -eo pipefail; for rel in $(OTP_RELEASES); do \
	  echo "=== cluster tests with $(CLUSTER_COUNT) records on OTP $$rel"; \
	  PHAROS_OTP=$$rel PHAROS_CLUSTER_COUNT=$(CLUSTER_COUNT) $(GO) test -count=1 -timeout 30m -v \
	    -run '^(TestAckedKill9|TestPGDiscovery)$$' ./cluster | grep -E '^(=== RUN|--- |    --- |PASS|FAIL|ok)|(failover|pg)_test\.go:[0-9]+: [0-9a-z]' | grep -v erltest; \
	done

## bench: every Go benchmark, package by package (scripts/bench.sh); those with a BEAM counterpart run it
## in the same run, on OTP $(BENCH_OTP). Raw output and a summary table in _build/bench/.
## bench-quick: the same as a short smoke run.
BENCH_OTP ?= $(or $(PHAROS_OTP),25)
bench:
	scripts/otp.sh install $(BENCH_OTP)
	scripts/otp.sh install 27 # ingest's BenchmarkJSONVersusBEAM: OTP 27's json module
	BENCH_OTP=$(BENCH_OTP) GO=$(GO) scripts/bench.sh
bench-quick:
	scripts/otp.sh install $(BENCH_OTP)
	scripts/otp.sh install 27
	BENCH_QUICK=1 BENCH_OTP=$(BENCH_OTP) GO=$(GO) scripts/bench.sh

## bench-outage: a 90 s outage of the Brain at 10,000 records/s, with and without a spill directory,
## on a real daemon (scripts/outage-bench.sh; about 7 minutes, so not part of every make bench)
bench-outage:
	scripts/otp.sh install $(BENCH_OTP)
	PHAROS_OTP=$(BENCH_OTP) scripts/outage-bench.sh

## fuzz: run each fuzz target briefly (fuzz-long: for minutes). The budget is a count of executions, not a
## duration: Go 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded" when a
## duration runs out while a worker is busy (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline.
## 100000x is about 10 s per target here; 2000000x about 3 min.
FUZZTIME ?= 100000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "=== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done
fuzz-long:
	$(MAKE) fuzz FUZZTIME=2000000x

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@if $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -version >/dev/null 2>&1; then \
	  $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS); \
	else echo "lint: staticcheck could not be installed from the Go module proxy; skipped"; fi

## licenses: rewrite THIRD_PARTY_LICENSES.md from `go list -deps` (a test fails while it is out of date)
licenses:
	$(GO) run ./scripts/licenses > THIRD_PARTY_LICENSES.md

## docs: rewrite docs/configuration.md from the settings table (a test fails while it is out of date)
docs:
	PHAROS_UPDATE_DOCS=1 $(GO) test -count=1 -run '^TestConfigurationDocInSync$$' ./internal/config

clean:
	rm -rf bin _build
