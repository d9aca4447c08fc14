# Build, test and demo targets. `make test` is what CI runs (see .ci/run and README.md).
GO        ?= go
PROMTOOL  ?= promtool
FUZZTIME  ?= 30s

VERSION   := $(shell cat VERSION)
REVISION  := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
BRANCH    := $(shell git symbolic-ref --short -q HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS   := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
             -X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(shell id -un)@$(shell hostname) \
             -X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build slsemu test test-go style vet lint bench fuzz demo clean

all: lint build test

build: slsemu

slsemu:
	$(GO) build -ldflags "$(LDFLAGS)" -o slsemu ./cmd/slsemu

# The whole suite with the race detector; binaries are built first because
# some tests run them as separate processes.
test: lint build test-go

test-go:
	$(GO) test -race -timeout 14m ./...

style:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: style vet

# Benchmarks print throughput figures; they are not pass/fail.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzSplice -fuzztime $(FUZZTIME) ./pkg/slsemu/
	$(GO) test -run '^$$' -fuzz FuzzPutLogsBody -fuzztime $(FUZZTIME) ./pkg/slsemu/
	$(GO) test -run '^$$' -fuzz FuzzRequestParsing -fuzztime $(FUZZTIME) ./pkg/slsemu/

# The emulator's demo world with generated traffic.
demo: build
	./slsemu --web.listen-address=127.0.0.1:9880

clean:
	rm -f slsemu sls_keyword_exporter
