#!/usr/bin/env bash
# Purchase → provisioned beside Medusa v2's place-order flow (docs/BENCHMARKS.md): installs
# the hand-written Medusa project in scripts/peers/medusa/ from npm, migrates and seeds a
# database medusa_bench on the same PostgreSQL, starts `medusa start` (production mode, Redis
# for its event bus, workflow engine, locks and cache), then runs `souk bench purchase` on
# PostgreSQL with Medusa's flow right after each of Souk's runs.
#
#   scripts/peers/medusa.sh [--concurrency 1,8,32 --seconds 10 --runs 3]
#
# SOUK_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres) is where both
# run: Souk in a schema souk_bench, Medusa in a database medusa_bench (both made afresh).
# SOUK_BENCH_REDIS_URL (default redis://127.0.0.1:6379/3) is Medusa's Redis; that database
# is flushed first. The project and its node_modules go to $SOUK_TOOLS/medusa (default
# ~/.cache/souk-tools/medusa). SOUK_BENCH_MEDUSA_MODULES=memory runs Medusa on its
# in-process event bus, workflow engine, locks and cache instead of Redis.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=${SOUK_TOOLS:-$HOME/.cache/souk-tools}
pg=${SOUK_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis=${SOUK_BENCH_REDIS_URL:-redis://127.0.0.1:6379/3}
port=${SOUK_BENCH_MEDUSA_PORT:-9000}
project="$tools/medusa"
log="${TMPDIR:-/tmp}/souk-bench-medusa.log"

mkdir -p "$project/src/scripts"
cp scripts/peers/medusa/package.json scripts/peers/medusa/medusa-config.js "$project/"
cp scripts/peers/medusa/src/scripts/seed.js "$project/src/scripts/"
if [ ! -x "$project/node_modules/.bin/medusa" ]; then
  (cd "$project" && npm install --no-audit --no-fund)
fi

psql "$pg" -qc 'DROP DATABASE IF EXISTS medusa_bench' -qc 'CREATE DATABASE medusa_bench'
redis-cli -u "$redis" flushdb > /dev/null
export NODE_ENV=production DATABASE_URL="${pg%/*}/medusa_bench" REDIS_URL="$redis" PORT="$port"
echo "medusa: migrating and seeding (log: $log)"
(cd "$project" && node_modules/.bin/medusa db:migrate) > "$log" 2>&1
seed=$(cd "$project" && node_modules/.bin/medusa exec ./src/scripts/seed.js 2>> "$log" | tee -a "$log" | sed -n 's/^SOUK_BENCH_MEDUSA //p')
[ -n "$seed" ] || { echo "medusa: the seed printed nothing (see $log)" >&2; exit 1; }

# SOUK_BENCH_MEDUSA_CLUSTER=N runs N Medusa processes (`medusa start --cluster N`); the
# default is one, as `medusa start` does.
cluster=()
[ -z "${SOUK_BENCH_MEDUSA_CLUSTER:-}" ] || cluster=(--cluster "$SOUK_BENCH_MEDUSA_CLUSTER")
(cd "$project" && exec node_modules/.bin/medusa start "${cluster[@]}") >> "$log" 2>&1 &
pid=$!
# Stops the server and, in cluster mode, its workers (its children); what has not stopped
# after 10 s is killed.
stop() {
  local kids
  kids=$(pgrep -P "$pid" || true)
  kill $pid $kids 2> /dev/null || true
  for _ in $(seq 20); do
    kill -0 $pid $kids 2> /dev/null || break
    sleep 0.5
  done
  kill -9 $pid $kids 2> /dev/null || true
}
trap stop EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/health" > /dev/null && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/health" > /dev/null || { echo "medusa did not start (see $log)" >&2; exit 1; }

cargo build --release -q
./target/release/souk --database-url "$pg" bench purchase \
  --medusa "http://127.0.0.1:$port" --medusa-seed "$seed" --medusa-pid "$pid" "$@"
