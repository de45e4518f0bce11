#!/usr/bin/env bash
# Live data for Home Assistant: an MQTT broker (yours, or a local mosquitto), the server with
# its Home Assistant bridge on, and simulated meters sending one reading every 10 s in real
# time (--start now --speed 1). Ctrl-C stops all three.
#
#   make ha-live                          # local mosquitto on 127.0.0.1:1883
#   make ha-live MQTT_HOST=192.168.1.20   # the broker your Home Assistant uses (no local one)
#   MQTT_BIND=0.0.0.0 make ha-live        # local mosquitto reachable from the LAN (anonymous!)
#
# Settings (environment): MQTT_HOST, MQTT_PORT (1883), MQTT_USER, MQTT_PASSWORD, MQTT_BIND
# (127.0.0.1), PORT (8080, the server), METERS (1), DATA (a fresh temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
MQTT_PORT=${MQTT_PORT:-1883}
PORT=${PORT:-8080}
METERS=${METERS:-1}
DATA=${DATA:-$(mktemp -d -t omd-ha-live-XXXXXX)}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${MQTT_HOST:-}" ]; then
  MQTT_HOST=127.0.0.1
  printf 'listener %s %s\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" "${MQTT_BIND:-127.0.0.1}" \
    > "$DATA/mosquitto.conf"
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$DATA/mosquitto.conf" &
  pids+=($!)
  echo "[ha-live] mosquitto on ${MQTT_BIND:-127.0.0.1}:$MQTT_PORT: point Home Assistant's MQTT integration at it"
fi
export OMD_DATABASE_URL="sqlite:///$DATA/omd.db" OMD_IMAGE_DIR="$DATA/images" OMD_PORT="$PORT" \
       OMD_MQTT_HOST="$MQTT_HOST" OMD_MQTT_PORT="$MQTT_PORT" \
       OMD_MQTT_USERNAME="${MQTT_USER:-}" OMD_MQTT_PASSWORD="${MQTT_PASSWORD:-}"
.venv/bin/omd-server serve &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "[ha-live] server http://127.0.0.1:$PORT/ (data in $DATA), bridge to $MQTT_HOST:$MQTT_PORT"
echo "[ha-live] simulating $METERS meter(s) live; Ctrl-C stops"
.venv/bin/omd-server simulate --url "http://127.0.0.1:$PORT" --meters "$METERS" \
  --start now --hours 24 --speed 1 --interval 10 --batch 1 &
pids+=($!)
wait "${pids[-1]}"
