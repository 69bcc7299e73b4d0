# myha — build, test, demo. `make demo` and `make test` each work alone on a
# fresh Debian 12 machine with Go: they install what is missing first.

export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Whole suite, unit and integration, with the race detector.
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build deps demo-deps test test-nonroot package unit integration chaos capture-proof fuzz bench scale demo lab-up lab-down clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/myha ./cmd/myha
	$(GO) build -o bin/labctl ./test/labctl

deps:
	@test/install-deps.sh test

demo-deps:
	@test/install-deps.sh demo

# The one test command (CI runs it): every package, real servers included.
test: deps
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

unit:
	$(GO) test $(TESTFLAGS) ./binlog ./config ./topology ./cmd/...

integration: deps
	$(GO) test $(TESTFLAGS) ./test/...

# The whole failure-injection matrix: the failover command killed at every
# boundary of its plan (CI runs a fixed sample of them in `make test`).
chaos: deps
	MYHA_CHAOS=full $(GO) test $(TESTFLAGS) -run 'TestChaos' -v ./test/integration

# The zero-loss proof repeated: the primary's host gone (kill -9, datadir
# moved) with only the monitors' captures acknowledging semi-sync; prints
# acknowledged-lost and outage per run (CI runs it CAPTURE_RUNS=2 times).
CAPTURE_RUNS ?= 10
capture-proof: deps
	@mkdir -p bin
	MYHA_CAPTURE_RUNS=$(CAPTURE_RUNS) $(GO) test -race -count=1 -timeout 30m -run 'TestCaptureZeroLoss' -v ./test/integration > bin/capture-proof.log 2>&1; \
	  rc=$$?; grep -E 'CAPTURE-PROOF|^\s*--- |^(ok|FAIL|PASS)' bin/capture-proof.log; echo "full log: bin/capture-proof.log"; exit $$rc

# Fuzz every parser for FUZZTIME each (go test -fuzz runs one target at a time).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./binlog -run '^$$' -fuzz '^FuzzParseMariaDBPos$$' -fuzztime $(FUZZTIME)
	$(GO) test ./binlog -run '^$$' -fuzz '^FuzzParseMySQLSet$$' -fuzztime $(FUZZTIME)
	$(GO) test ./binlog -run '^$$' -fuzz '^FuzzParseFilePos$$' -fuzztime $(FUZZTIME)
	$(GO) test ./binlog -run '^$$' -fuzz '^FuzzParseMariaDBState$$' -fuzztime $(FUZZTIME)
	$(GO) test ./config -run '^$$' -fuzz '^FuzzImportMHA$$' -fuzztime $(FUZZTIME)
	$(GO) test ./config -run '^$$' -fuzz '^FuzzNormalizeAddress$$' -fuzztime $(FUZZTIME)
	$(GO) test ./daemon -run '^$$' -fuzz '^FuzzGossipStore$$' -fuzztime $(FUZZTIME)
	$(GO) test ./daemon -run '^$$' -fuzz '^FuzzFSMApply$$' -fuzztime $(FUZZTIME)
	$(GO) test ./capture -run '^$$' -fuzz '^FuzzDecodePacket$$' -fuzztime $(FUZZTIME)
	$(GO) test ./capture -run '^$$' -fuzz '^FuzzSegmentReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./capture -run '^$$' -fuzz '^FuzzServerQuery$$' -fuzztime $(FUZZTIME)

# The integration suite as an ordinary user (run as root: it makes the user
# myha-newcomer): what runs on loopback runs, the rest skips saying why.
test-nonroot: deps
	test/nonroot.sh

# A Debian package in bin/ (dpkg-deb; prints its path).
package:
	@test/package.sh

# Benchmarks print figures; targets are goals, never test assertions.
bench: deps build
	$(GO) run ./test/bench
	$(GO) test -run '^$$' -bench . -benchtime 3x -cpu 1 ./capture
	$(GO) test -run '^$$' -bench '^Benchmark(Fault|CaptureReplay)' -benchtime 1x -count 5 -timeout 30m ./test/integration

# Sizing: monitors (real daemon processes, memberlist and raft on loopback)
# against N clusters × 3 FAKE servers; prints one row per N. Figures, not
# tests. Run it alone on the machine: it measures CPU.
SCALE_N ?= 10,100,300,1000
SCALE_MONITORS ?= 3
SCALE_WINDOW ?= 20s
SCALE_KILLS ?= 5
scale:
	$(GO) run ./test/bench -only scale -scale-n $(SCALE_N) -scale-monitors $(SCALE_MONITORS) -scale-window $(SCALE_WINDOW) -scale-kills $(SCALE_KILLS)

demo: demo-deps build
	@test/demo.sh

lab-up: demo-deps build
	bin/labctl up

lab-down:
	$(GO) run ./test/labctl down

clean:
	rm -rf bin
