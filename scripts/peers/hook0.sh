#!/usr/bin/env bash
# Webhook delivery, Souk beside Hook0 (docs/BENCHMARKS.md): installs Hook0's output worker
# from crates.io and hook0-api's database migrations (its published crate), then runs
# `souk bench deliveries` on PostgreSQL with both.
#
#   scripts/peers/hook0.sh [--events 10000 --endpoints 10 --runs 3]
#
# SOUK_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres) is where both
# run: Souk in a schema souk_bench, Hook0 in a database hook0_bench (both made afresh).
# Tools go to $SOUK_TOOLS (default ~/.cache/souk-tools).
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=${SOUK_TOOLS:-$HOME/.cache/souk-tools}
pg=${SOUK_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
worker="$tools/hook0/bin/hook0-output-worker"
if [ ! -x "$worker" ]; then
  cargo install --root "$tools/hook0" hook0-output-worker@0.3.0
fi
migrations="$tools/hook0/hook0-api-0.1.0/migrations"
if [ ! -d "$migrations" ]; then
  curl -sSfL -o "$tools/hook0/hook0-api-0.1.0.crate" https://static.crates.io/crates/hook0-api/hook0-api-0.1.0.crate
  tar xzf "$tools/hook0/hook0-api-0.1.0.crate" -C "$tools/hook0" hook0-api-0.1.0/migrations
fi
cargo build --release -q
./target/release/souk --database-url "$pg" bench deliveries --hook0-worker "$worker" --hook0-migrations "$migrations" "$@"
