#!/usr/bin/env bash
# Runs the SLS emulator's demo world and the exporter on it until Ctrl-C (used by `make demo`).
set -euo pipefail
cd "$(dirname "$0")/.."

EMULATOR_ADDR=127.0.0.1:9880 # examples/demo.yml names it as each region's proxy
EXPORTER_ADDR=${EXPORTER_ADDR:-:10290}

./slsemu --web.listen-address="$EMULATOR_ADDR" --log.level=warn &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/${EMULATOR_ADDR%:*}/${EMULATOR_ADDR#*:}") 2>/dev/null; then break; fi
  sleep 0.1
done

port=${EXPORTER_ADDR##*:}
cat <<MSG

  SLS emulator (demo world, generated traffic): http://$EMULATOR_ADDR/_slsemu/state
  Exporter status page:                         http://localhost:$port/
  Exporter metrics:                             http://localhost:$port/metrics
  Watch 5xx counters rise per region:           curl -s localhost:$port/metrics | grep 'sls_keyword_matches_total.*http_5xx'
  Stop with Ctrl-C.

MSG
./sls_keyword_exporter --config.file=examples/demo.yml --web.listen-address="$EXPORTER_ADDR"
