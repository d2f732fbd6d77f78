# iotlat container image: every binary (bin/iotlat-*) and every driver
# (plugins/*.so) on Debian 12 slim, run as an unprivileged user.
#
#   docker build -t iotlat:latest --build-arg VERSION="$(git describe --always --dirty)" .
#   docker run --rm iotlat:latest publisher --help
#   docker run --rm -e IOTLAT_ROLE=subscriber -e IOTLAT_DRIVER=nats ... iotlat:latest
#
# The role (publisher, transformer, subscriber, plotter) is the first argument
# or IOTLAT_ROLE (compose/entrypoint.sh).  The stacks in compose/ and the
# manifests in k8s/ run this image as iotlat:latest.
#
# Two stages: the build stage installs the -dev packages the Makefile lists in
# DEB_PKGS (so the image follows the Makefile) and runs `make`; the runtime
# stage installs only the Debian packages that own the shared libraries the
# built binaries and drivers load, found with ldd + dpkg -S.

FROM debian:12-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
COPY Makefile ./
# Build dependencies: the compiler and every -dev package of DEB_PKGS except
# the unit-test framework.
RUN make --no-print-directory -s --eval "print-deb-pkgs: ; @echo \$(DEB_PKGS)" print-deb-pkgs >/tmp/deb-pkgs \
 && tr ' ' '\n' </tmp/deb-pkgs | grep -E -e '-dev$' -e '^(gcc|make|pkg-config)$' \
    | grep -v -x libcmocka-dev >/tmp/build-pkgs \
 && apt-get update \
 && xargs apt-get install -y --no-install-recommends </tmp/build-pkgs \
 && rm -rf /var/lib/apt/lists/* /tmp/deb-pkgs /tmp/build-pkgs
COPY src/ src/
COPY cmd/ cmd/
COPY plugins/ plugins/
ARG VERSION=image
# `make clean` first: a build context taken from a work tree may carry
# objects and drivers built on the host.  PLUGIN_DIR is the drivers' default
# directory compiled into the binaries (IOTLAT_PLUGIN_DIR overrides it).
RUN make clean >/dev/null \
 && make -j"$(nproc)" VERSION="$VERSION" PLUGIN_DIR=/usr/lib/iotlat all \
 && mkdir -p /out/bin /out/lib \
 && cp bin/iotlat-* /out/bin/ \
 && cp plugins/*.so /out/lib/ \
 && strip --strip-unneeded /out/bin/* /out/lib/*.so
# The Debian packages owning every shared library the binaries and drivers
# load.  ldd prints /lib/... paths while Debian 12 registers most libraries
# under /usr/lib (merged /usr), hence the second dpkg -S.
RUN for f in /out/bin/* /out/lib/*.so; do ldd "$f"; done \
    | awk '$2 == "=>" && $3 ~ "^/" {print $3}' | sort -u \
    | while read -r lib; do dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib"; done \
    | cut -d: -f1 | sort -u >/out/runtime-packages \
 && cat /out/runtime-packages

FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && xargs apt-get install -y --no-install-recommends ca-certificates </tmp/runtime-packages \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && groupadd --system --gid 10001 iotlat \
 && useradd --system --uid 10001 --gid iotlat --home-dir /var/lib/iotlat --shell /usr/sbin/nologin iotlat \
 && install -d -o iotlat -g iotlat -m 0755 /var/lib/iotlat
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/ /usr/lib/iotlat/
COPY compose/entrypoint.sh /usr/local/bin/iotlat-entrypoint
ENV IOTLAT_PLUGIN_DIR=/usr/lib/iotlat
WORKDIR /var/lib/iotlat
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# The plotter's Prometheus endpoint (IOTLAT_PLOTTER_LISTEN=0.0.0.0:9464).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/iotlat-entrypoint"]
