#!/usr/bin/env bash
# The shared driver conformance suite, run against the MQTT driver and a real
# Mosquitto (tests/conformance/servers/mqtt.sh).
exec bash "$(dirname "$0")/../conformance/conformance.sh" mqtt
