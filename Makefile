# make test: vet and race-test every package against real servers.
# The servers come from Debian packages; `make deps` installs them when
# missing (as root) or says how to.

GO ?= go
# Extra flags for go test, e.g. make test GOTESTFLAGS='-timeout 12m -v'.
GOTESTFLAGS ?=

SERVER_BINS := redis-server redis-cli memcached
# redis-cli comes with redis-tools, a dependency of redis-server.
SERVER_PKGS := redis-server memcached
# go test -race needs cgo, and so a C toolchain.
CC_PKGS := gcc libc6-dev

.PHONY: test deps vet bench fmt

# -parallel 8: conformance subtests mostly sleep while entries expire, so
# more of them than cores may wait at once.
#
# e2e/ is a module of its own (chromedp stays out of the core go.mod): the
# demo's story in headless Chromium. `go test` with no package runs it in
# its folder and prints where its screenshots went. No -race there: the
# code under test is a separately built demo binary (race-tested in
# cmd/demo), and a race build of chromedp would about double the run.
#
# contrib/ holds the framework adapters, each a module of its own (gin and
# gRPC stay out of the core go.mod), race-tested like the core.
CONTRIB := contrib/ginguard contrib/grpcguard

test: deps vet
	$(GO) test -race -parallel 8 $(GOTESTFLAGS) ./...
	for m in $(CONTRIB); do (cd $$m && $(GO) test -race $(GOTESTFLAGS) ./...) || exit 1; done
	cd e2e && $(GO) test $(GOTESTFLAGS)

vet:
	$(GO) vet ./...
	for m in $(CONTRIB); do (cd $$m && $(GO) vet ./...) || exit 1; done
	cd e2e && $(GO) vet ./...

deps:
	@pkgs=""; \
	for bin in $(SERVER_BINS); do \
		command -v $$bin >/dev/null 2>&1 || pkgs=" $(SERVER_PKGS)"; \
	done; \
	command -v "$$($(GO) env CC)" >/dev/null 2>&1 || pkgs="$$pkgs $(CC_PKGS)"; \
	if [ -z "$$pkgs" ]; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "make: missing packages:$$pkgs. Install them with:" >&2; \
		echo "  sudo sh -c 'apt-get update && apt-get install -y$$pkgs'" >&2; \
		exit 1; \
	fi; \
	echo "make: installing$$pkgs"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$pkgs || exit 1; \
	for bin in $(SERVER_BINS); do \
		command -v $$bin >/dev/null 2>&1 || { echo "make: $$bin still missing after install" >&2; exit 1; }; \
	done

bench:
	$(GO) run ./bench -quick

fmt:
	gofmt -l -w .
