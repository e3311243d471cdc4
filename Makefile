# Dapr control plane in Rust. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
# Two cores on the reference machine: keep cargo's and the harness's parallelism there.
JOBS ?= 2
FOCUS ?= .*
OURS ?= sentry,placement,scheduler,operator,injector
BINARIES := sentry placement scheduler operator injector

.PHONY: help build run test test-store verify fix gen proto-check conformance conformance-prepare bench-placement bench-scheduler bench-sentry bench-store

help:
	@echo "build        release binaries of the five services (target/release)"
	@echo "run          start the self-hosted control plane locally (placement :50005, scheduler :50006; MTLS=1 adds sentry :50001)"
	@echo "test         the test suite (unit + integration tests; no external peers needed)"
	@echo "test-store   the etcd-semantics suite against a real etcd v3.5.30 (built via Go) and against our store"
	@echo "verify       read-only gate: fmt check, clippy -D warnings, tests, generated-code check"
	@echo "fix          rewrite: cargo fmt and clippy --fix"
	@echo "gen          regenerate committed generated code (protos)"
	@echo "proto-check  compare our .proto descriptors with upstream v1.18.3's"
	@echo "bench-placement  dissemination round times (N=100,1000,5000 streams) and RSS, ours vs upstream (not a test)"
	@echo "bench-scheduler  ScheduleJob req/s, one-shot and reminder trigger timing, RSS, ours vs upstream's scheduler (not a test)"
	@echo "bench-sentry SignCertificate throughput/latency and RSS, ours vs upstream's sentry (not a test)"
	@echo "bench-store  etcd v3 puts/txns/ranges and RSS, our dapr-etcd vs real etcd v3.5.30, 1 and 3 nodes (not a test)"
	@echo "conformance-prepare  fetch and build everything a conformance run needs"
	@echo "conformance  upstream's integration suite against our binaries: FOCUS='<regex>' OURS=sentry,placement"

build:
	$(CARGO) build --release -j $(JOBS) $(addprefix -p ,$(BINARIES))

run: build
	hack/run-local.sh

test:
	$(CARGO) test --workspace -j $(JOBS)

verify:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -j $(JOBS) -- -D warnings
	$(CARGO) test --workspace -j $(JOBS)
	@if [ -f charts/dapr/Chart.yaml ]; then helm lint charts/dapr; else echo "verify: no chart yet, helm lint skipped"; fi

fix:
	$(CARGO) fmt --all
	$(CARGO) clippy --workspace --all-targets --fix --allow-dirty --allow-staged -j $(JOBS)

gen:
	$(CARGO) run -p dapr-proto --features codegen --example gen

proto-check:
	$(CARGO) run -q -p dapr-proto --features codegen --example proto-check -- --upstream "$$(hack/conformance/upstream.sh dir)"

conformance-prepare:
	FOCUS='$(FOCUS)' OURS='$(OURS)' hack/conformance/run.sh prepare

conformance:
	FOCUS='$(FOCUS)' OURS='$(OURS)' hack/conformance/run.sh run

# How test-store starts our server; {port} {peer_port} {dir} {quota} {max_txn_ops} are filled in.
OURS_ETCD_CMD ?= $(CURDIR)/target/debug/dapr-etcd --name n1 --data-dir {dir} --listen-client-urls http://127.0.0.1:{port} --initial-cluster n1=http://127.0.0.1:{peer_port} --quota-backend-bytes {quota} --max-txn-ops {max_txn_ops} --log-level warn

test-store:
	cargo build -p dapr-etcd-store --bin dapr-etcd
	OURS_ETCD_CMD='$(OURS_ETCD_CMD)' hack/etcd/test-store.sh

bench-placement:
	hack/bench/placement.sh

bench-scheduler:
	hack/bench/scheduler.sh

bench-sentry:
	hack/bench/sentry.sh

bench-store:
	hack/bench/store.sh
