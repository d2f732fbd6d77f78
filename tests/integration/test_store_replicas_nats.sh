#!/usr/bin/env bash
# The replicas test (20 x 3 roles pairing up through Redis, a subscriber
# killed and taken over) over a brokered driver: NATS.
DRIVER=nats exec bash "$(dirname "$0")/test_store_replicas.sh"
