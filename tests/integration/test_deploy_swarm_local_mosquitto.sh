#!/usr/bin/env bash
# compose/common.yml + compose/mosquitto.yml run as local processes by
# tests/deploy/swarm_local.py (what `make swarm-local STACK=mosquitto` does):
# the Mosquitto stack (Debian's mosquitto in place of the
# eclipse-mosquitto image).
# 3 publishers, 3 transformers and 3 subscribers pair up through Redis
# claims; every message is accounted for (tests/deploy/swarm_local_check.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../deploy/swarm_local_check.sh"
swarm_local_check mosquitto mqtt
