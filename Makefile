# Emberwatch. `make run` runs the demo; `make test` runs every test with the
# race detector. See README.md.

GO          ?= go
BIN         := bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
RUN_FLAGS   ?=

.PHONY: all run test test-deps test-arm64 build cross lint bench fuzz nab pgo clean

all: lint test build

## run: build the agent and run the embedded demo (simulated sensors, embedded broker). Ctrl-C stops it.
run: build
	./$(BIN)/agent run $(RUN_FLAGS)

## test: install the test prerequisites if missing (mosquitto, gcc), then run every test with -race.
test: test-deps
	$(GO) test -race -count=1 -timeout 15m ./...

test-deps:
	@./scripts/test-deps.sh

## test-arm64: check, under qemu-aarch64-static, that an arm64 device scores the NAB corpus bit for bit as measured here (CI runs it).
# Only the NAB golden: the synthetic test streams come from math.Sin and
# NormFloat64, whose last bits differ on arm64 themselves.
test-arm64:
	@command -v qemu-aarch64-static >/dev/null || { echo "test-arm64: needs qemu-aarch64-static (apt-get install qemu-user-static)" >&2; exit 1; }
	GOARCH=arm64 $(GO) test -exec qemu-aarch64-static -count=1 -run 'TestNABScoresUnchanged' ./detect

## build: a static binary for this machine in bin/agent.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/agent ./cmd/agent

## cross: static binaries for the field: linux/arm64, linux/arm v6 and v7, linux/amd64.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64         $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/agent-linux-arm64 ./cmd/agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6   $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/agent-linux-armv6 ./cmd/agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7   $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/agent-linux-armv7 ./cmd/agent
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64         $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/agent-linux-amd64 ./cmd/agent
	@ls -l $(BIN)/agent-linux-*

## lint: gofmt, go vet and staticcheck must all be clean.
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: every Go benchmark, with allocations.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## fuzz: run every fuzz target for FUZZTIME (30s) and copy new corpus entries into testdata/fuzz.
fuzz:
	sh scripts/fuzz.sh

## nab: score the best point detector on the Numenta Anomaly Benchmark (NAB_FLAGS="--detector all" for every one); see docs/DETECTION.md.
NAB_DATA  ?= ../shared/data/nab
NAB_OUT   ?= /tmp/emberwatch-nab
NAB_FLAGS ?=
nab:
	$(GO) run ./cmd/agent eval nab --data $(NAB_DATA) --out $(NAB_OUT) $(NAB_FLAGS)

## pgo: rewrite cmd/agent/default.pgo, the CPU profile that `go build` optimises the agent's hot paths with, from the NAB benchmarks of the detectors the eval and the field run.
pgo:
	$(GO) test -run='^$$' -bench='NAB/^(cad_ose|likelihood:cad_ose|ensemble)$$/' -benchtime=2x -o $(BIN)/detect.test -cpuprofile cmd/agent/default.pgo ./detect

clean:
	rm -rf $(BIN)
