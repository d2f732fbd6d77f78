#!/usr/bin/env bash
# The shared conformance suite against Mosquitto again, with the MQTT
# driver's other protocol settings: MQTT 5, QoS 2 and a persistent session
# (clean start off, with a session expiry).  Case 4 kills Mosquitto, which
# runs without persistence, so the session is gone after the restart and the
# driver must subscribe again even though it asked for a persistent one.
export IOTLAT_MQTT_VERSION=5 IOTLAT_MQTT_QOS=2 IOTLAT_MQTT_CLEAN_SESSION=false \
    IOTLAT_MQTT_SESSION_EXPIRY=60
exec bash "$(dirname "$0")/../conformance/conformance.sh" mqtt
