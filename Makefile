# iotlat - build, test, demo, bench, deps: the only entry points a user needs.
#
#   make            build bin/iotlat-* and plugins/*.so
#   make demo       install what is missing, build, run the ZeroMQ demo
#   make test       install what is missing, build, run every test
#   make bench      install what is missing, build, run the benchmarks
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

BINS := $(addprefix $(O)/bin/,iotlat-publisher iotlat-transformer iotlat-subscriber)
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
LIB := $(O)/obj/libiotlat.a
LIB_OBJS := $(patsubst src/%.c,$(O)/obj/%.o,$(wildcard src/*.c))

DEB_PKGS := gcc make libc6-dev pkg-config libzmq3-dev libuv1-dev libcmocka-dev \
            librdkafka-dev libnats-dev libpaho-mqtt-dev libhiredis-dev \
            redis-server mosquitto mosquitto-clients nats-server rabbitmq-server openssl \
            python3 procps iproute2

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
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -o $@

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
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -lcmocka -o $@

$(O)/obj/tests/bench/%: tests/bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -lzmq -o $@

# Installs only what is missing, so it is quick on a prepared machine.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: all Debian packages present"; fi

build-tests: all $(UNIT_TESTS) $(TEST_DRIVERS) $(BENCHES)

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

clean:
	rm -rf bin obj plugins/*.so tests/drivers/*.so build-asan tests/*.tmp
	rm -rf $(O)/obj

.PHONY: all deps test demo bench clean build-tests
.SECONDARY:
