#!/usr/bin/env bash
# compose/common.yml + compose/rabbitmq.yml run as local processes by
# tests/deploy/swarm_local.py, with Debian's mosquitto standing in for the
# RabbitMQ image (booting a RabbitMQ node is test_mqtt_rabbitmq.sh's job):
# checks the stack's MQTT settings for RabbitMQ - topics with "/" (metro/{id},
# IOTLAT_OUT_TOPIC={topic}/out) and user/password - pair up and deliver.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../deploy/swarm_local_check.sh"
swarm_local_check rabbitmq mqtt --stand-in rabbitmq=mosquitto
