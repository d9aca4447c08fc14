# Build, test and demo targets. `make test` is what CI runs (see .ci/run and README.md).
GO        ?= go
PROMTOOL  ?= promtool
FUZZTIME  ?= 30s

VERSION   := $(shell cat VERSION)
REVISION  := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
BRANCH    := $(shell git symbolic-ref --short -q HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS   := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
             -X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(shell id -un)@$(shell uname -n) \
             -X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build sls_keyword_exporter slsemu test test-go test-rules style vet lint bench bench-latency fuzz dashboards demo clean screenshot

all: lint build test

build: sls_keyword_exporter slsemu

sls_keyword_exporter:
	$(GO) build -ldflags "$(LDFLAGS)" -o sls_keyword_exporter .

slsemu:
	$(GO) build -ldflags "$(LDFLAGS)" -o slsemu ./cmd/slsemu

# What the tests need besides Go (promtool, amtool, prometheus, alertmanager, chromium); fast when present.
.PHONY: deps
deps:
	scripts/install-test-deps.sh

# The whole suite with the race detector. -count=1: the e2e tests build and run
# the binaries themselves, which go test's cache cannot see.
test: deps lint build test-rules test-go

test-go:
	$(GO) test -race -count=1 -timeout 14m ./...

# Alert rules, their unit tests, the shipped Prometheus and Alertmanager examples, and the example keyword
# rules' tests (docs/rules-cli.md).
test-rules: sls_keyword_exporter
	./sls_keyword_exporter rules test examples/rules/*_test.yml
	$(PROMTOOL) check rules alerts.rules.yml
	$(PROMTOOL) test rules tests/alerts_test.yml
	$(PROMTOOL) check config examples/prometheus.yml
	amtool check-config examples/alertmanager.yml

style:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: style vet

# Benchmarks print figures; they are not pass/fail. The engine benchmarks
# (e2e) run the exporter and a do-nothing client on the SDK's consumer
# library on the same emulator data, one after the other, and print both.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./pkg/... ./consumer/...
	$(GO) test -run '^$$' -bench . -benchtime 3s -cpu 1 ./match/
	$(GO) test -run '^$$' -bench 'BenchmarkEngineThroughput|BenchmarkIdleShards' -benchtime 1x -timeout 30m ./e2e/

# Log-to-alert latency through emulator, exporter, Prometheus and Alertmanager: 200 spaced writes (about 3 minutes).
bench-latency:
	$(GO) test -run '^$$' -bench BenchmarkLogToAlert -benchtime 1x -timeout 20m ./e2e/

# Refresh the README's picture of the status page: the Chromium e2e test (TestStatusPage) writes it while
# it runs the version-stamped binary; optipng shrinks it further when installed.
screenshot: sls_keyword_exporter
	STATUS_PAGE_SCREENSHOT=$(CURDIR)/docs/status-page.png STATUS_PAGE_EXPORTER=$(CURDIR)/sls_keyword_exporter \
		$(GO) test -count=1 -run '^TestStatusPage$$' -v ./e2e/
	if command -v optipng >/dev/null; then optipng -quiet -o2 docs/status-page.png; fi

# Regenerate the committed Grafana dashboard (a test fails when it is stale).
dashboards:
	$(GO) run ./dashboards/gen

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzSplice -fuzztime $(FUZZTIME) ./pkg/slsemu/
	$(GO) test -run '^$$' -fuzz FuzzPutLogsBody -fuzztime $(FUZZTIME) ./pkg/slsemu/
	$(GO) test -run '^$$' -fuzz FuzzRequestParsing -fuzztime $(FUZZTIME) ./pkg/slsemu/
	$(GO) test -run '^$$' -fuzz FuzzWalkerMatchesSDK -fuzztime $(FUZZTIME) ./consumer/logwire/
	$(GO) test -run '^$$' -fuzz '^FuzzMatchEqualsRegexp$$' -fuzztime $(FUZZTIME) ./match/

# The binary the Dockerfile copies, where promu puts it: .build/<os>-<arch>/ (static, same ldflags as build).
DOCKER_OS   ?= linux
DOCKER_ARCH ?= amd64
.PHONY: docker-binary
docker-binary:
	CGO_ENABLED=0 GOOS=$(DOCKER_OS) GOARCH=$(DOCKER_ARCH) $(GO) build -ldflags "$(LDFLAGS)" -o .build/$(DOCKER_OS)-$(DOCKER_ARCH)/sls_keyword_exporter .

# The exporter on the emulator's demo world with generated traffic.
demo: build
	./scripts/demo.sh

clean:
	rm -f slsemu sls_keyword_exporter
