# iotlat - build, test, demo, bench, deps: the only entry points a user needs.
#
#   make            build bin/iotlat-* and plugins/*.so
#   make demo       install what is missing, build, run the ZeroMQ demo
#   make test       install what is missing, build, run every test
#   make bench      install what is missing, build, run the benchmarks
#   make report     pictures of a run (IOTLAT_REDIS_URL, IOTLAT_RUN_ID) in REPORT_DIR
#   make swarm-local  a stack of compose/ as local processes: STACK=zeromq|nats|mosquitto|redis
#   make deps       install missing Debian packages (apt-get, as root)
#   SANITIZE=1      build into build-asan/ with AddressSanitizer + UBSan

SANITIZE ?=
ifeq ($(SANITIZE),1)
O ?= build-asan
SAN := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
O ?= .
SAN := -O2
endif

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
PLUGIN_DIR := $(abspath $(O)/plugins)
CFLAGS ?=
CFLAGS += -std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -fPIC $(SAN) \
          -DIL_VERSION='"0.1.0-$(VERSION)"' -DIL_PLUGIN_DIR='"$(PLUGIN_DIR)"' -Isrc
LDFLAGS += $(filter -fsanitize=%,$(SAN))
LIBS := -luv -lhiredis -ldl -lm -lpthread

BINS := $(addprefix $(O)/bin/,iotlat-publisher iotlat-transformer iotlat-subscriber iotlat-plotter)
# Libraries of one binary only (the plotter's HTTP server, Elasticsearch
# client and JSON parser), linked as LIBS_<binary>.
LIBS_iotlat-plotter := -lmicrohttpd -lcurl -lcjson
LIBS_test_elk := -lcjson
# Every plugins/<name>/ folder is one driver, built to plugins/<name>.so and
# linked with LIBS_<name>.
# plugins/common/ holds code compiled into every driver.
PLUGINS := $(patsubst plugins/%/,$(O)/plugins/%.so,$(filter-out plugins/common/,$(sort $(dir $(wildcard plugins/*/*.c)))))
LIBS_zeromq := -lzmq
LIBS_kafka := -lrdkafka
LIBS_nats := -lnats
LIBS_mqtt := -lpaho-mqtt3as
LIBS_redis := -lhiredis
TEST_DRIVERS := $(patsubst tests/drivers/%.c,$(O)/obj/tests/drivers/%.so,$(wildcard tests/drivers/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(O)/obj/tests/%,$(wildcard tests/unit/test_*.c))
BENCHES := $(patsubst tests/bench/%.c,$(O)/obj/tests/bench/%,$(wildcard tests/bench/*.c))
# librdkafka's mock cluster run as a process (tests have no Kafka broker)
# and a raw producer for the Kafka benchmark.
KAFKA_TOOLS := $(patsubst tests/kafka_mock/%.c,$(O)/obj/tests/kafka_mock/%,$(wildcard tests/kafka_mock/*.c))
LIB := $(O)/obj/libiotlat.a
LIB_OBJS := $(patsubst src/%.c,$(O)/obj/%.o,$(wildcard src/*.c))

DEB_PKGS := gcc make libc6-dev pkg-config libzmq3-dev libuv1-dev libcmocka-dev \
            librdkafka-dev libnats-dev libpaho-mqtt-dev libhiredis-dev \
            redis-server mosquitto mosquitto-clients nats-server rabbitmq-server openssl \
            python3 procps iproute2 \
            libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev gnuplot-nox prometheus \
            python3-yaml curl
# The dashboard test type-checks with packages from npm; Node.js and npm are
# installed from Debian only where no npm is on PATH (a Node.js from
# elsewhere brings its own npm, which Debian's npm package would conflict
# with).
NODE_PKGS := nodejs npm
# Deployment validation (tests/integration/test_deploy_*.sh): docker-compose
# for `docker-compose config`, shellcheck for the scripts (python3-yaml,
# above, serves make swarm-local too).  kubectl comes from Debian's
# kubernetes-client only where no kubectl is on PATH (google-cloud-cli's
# kubectl owns /usr/bin/kubectl and conflicts with it); k8s/ needs kustomize
# v5 (kubectl 1.27+), newer than Debian 12's 1.20, and `docker stack config`
# needs docker CLI 23+, newer than Debian 12's docker.io: the test says so
# when they are too old.
DEB_PKGS += docker-compose shellcheck

Q := @
all: $(BINS) $(PLUGINS)

$(O)/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(Q)$(AR) rcs $@ $^

$(O)/bin/%: cmd/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS_$*) $(LIBS) -o $@

.SECONDEXPANSION:
$(O)/plugins/%.so: $$(wildcard plugins/%/*.c) $$(wildcard plugins/%/*.h) src/iotlat_driver.h $(wildcard plugins/common/*)
	@mkdir -p $(dir $@)
	@echo "  CC plugins/$*"
	$(Q)$(CC) $(CFLAGS) -Iplugins/common $(LDFLAGS) -shared $(filter %.c,$^) $(LIBS_$*) -lpthread -o $@

$(O)/obj/tests/drivers/%.so: tests/drivers/%.c src/iotlat_driver.h $(wildcard tests/drivers/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared $< -o $@

$(O)/obj/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS_$*) $(LIBS) -lcmocka -o $@

$(O)/obj/tests/bench/%: tests/bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -lzmq -o $@

$(O)/obj/tests/kafka_mock/%: tests/kafka_mock/%.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< -lrdkafka -o $@

# Installs only what is missing, so it is quick on a prepared machine.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null || missing="$$missing $(NODE_PKGS)"; \
	command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: all Debian packages present"; fi

build-tests: all $(UNIT_TESTS) $(TEST_DRIVERS) $(BENCHES) $(KAFKA_TOOLS)

# Recursive calls so that the build starts after deps has installed the
# libraries it links.
test: deps
	@$(MAKE) --no-print-directory build-tests
	@O=$(O) SANITIZE=$(SANITIZE) bash tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@O=$(O) bash tests/demo.sh

bench: deps
	@$(MAKE) --no-print-directory build-tests SANITIZE=
	@O=. bash tests/bench/run.sh

# A picture of a run without Grafana: make report IOTLAT_REDIS_URL=redis://...
# IOTLAT_RUN_ID=... reads the run's results once and renders
# REPORT_DIR/<run>-latency.png with gnuplot.
REPORT_DIR ?= report
report: deps
	@test -n "$$IOTLAT_REDIS_URL" || { echo "make report: set IOTLAT_REDIS_URL (and IOTLAT_RUN_ID)"; exit 2; }
	@$(MAKE) --no-print-directory $(O)/bin/iotlat-plotter
	IOTLAT_PLOTTER_ONCE=true IOTLAT_PLOTTER_PNG=$(REPORT_DIR) $(O)/bin/iotlat-plotter

# The services of a compose/ stack as local processes, with the replica
# counts and environment the files declare, against local servers from
# Debian's packages (tests/deploy/swarm_local.py; ARGS for its options, e.g.
# ARGS="--stand-in emqx=mosquitto" or ARGS="--replicas publisher=5").
STACK ?= zeromq
swarm-local: deps
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 tests/deploy/swarm_local.py --stack $(STACK) --bin-dir $(O)/bin --plugin-dir $(O)/plugins $(ARGS)
.PHONY: swarm-local

clean:
	rm -rf bin obj plugins/*.so tests/drivers/*.so build-asan tests/*.tmp
	rm -rf $(O)/obj

.PHONY: all deps test demo bench report clean build-tests
.SECONDARY:
