#!/usr/bin/env bash
# Schemathesis (PyPI) against a demo server's /api/openapi.json: no 5xx, every response as
# the schema says. Runs as the demo seller's company, with an admin API key, so the
# organization-scoped operations run with a real organization id (and another organization's
# id, the operator's, for the cross-organization checks).
#
#   scripts/schemathesis.sh [extra schemathesis arguments]
#   scripts/schemathesis.sh --phases fuzzing,stateful      # generated and chained requests
#
# Installs schemathesis into $SOUK_TOOLS (default ~/.cache/souk-tools) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${SOUK_TOOLS:-$HOME/.cache/souk-tools}
st="$tools/schemathesis/bin/schemathesis"
if [ ! -x "$st" ]; then
  python3 -m venv "$tools/schemathesis"
  "$tools/schemathesis/bin/pip" install -q 'schemathesis==4.32.5'
fi
cargo build --release -q
souk=./target/release/souk
data=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$data"' EXIT
"$souk" --data-dir "$data" demo >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
RUST_LOG=warn "$souk" --data-dir "$data" serve --listen "127.0.0.1:$port" >"$data/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs "$base/livez" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
jar="$data/cookies"
curl -fs -c "$jar" -H 'content-type: application/json' \
  -d '{"email":"seller@acme.test","password":"souk-demo-password"}' "$base/api/v1/auth/signin" >/dev/null
org=$(curl -fs -b "$jar" "$base/api/v1/me" | json '[o["id"] for o in d["orgs"] if o["kind"]=="enterprise"][0]')
key=$(curl -fs -b "$jar" -H 'content-type: application/json' -d '{"name":"schemathesis","role":"admin"}' \
  "$base/api/v1/orgs/$org/api-keys" | json 'd["token"]')

# SOUK_ST_AUTH=key runs as the API key; SOUK_ST_AUTH=operator as the demo operator's session
# (the staff operations; the seller's organization is then another organization's);
# SOUK_ST_AUTH=buyer as the demo enterprise buyer with one subscription (set up below); the
# default is the signed-in seller's session (some operations, such as binding a phone, are for
# a signed-in person only).
case "${SOUK_ST_AUTH:-session}" in
  key) auth="Authorization: Bearer $key" ;;
  operator)
    opjar="$data/operator-cookies"
    curl -fs -c "$opjar" -H 'content-type: application/json' \
      -d '{"email":"operator@souk.test","password":"souk-demo-password"}' "$base/api/v1/auth/signin" >/dev/null
    auth="Cookie: souk_session=$(awk '$6 == "souk_session" {print $7}' "$opjar")" ;;
  *) auth="Cookie: souk_session=$(awk '$6 == "souk_session" {print $7}' "$jar")" ;;
esac
extra=""
if [ "${SOUK_ST_AUTH:-session}" = buyer ]; then
  # The demo enterprise buyer, with a funded wallet and one subscription, so that the
  # operations on a subscription and a product reach past "not found".
  opjar="$data/operator-cookies"
  curl -fs -c "$opjar" -H 'content-type: application/json' \
    -d '{"email":"operator@souk.test","password":"souk-demo-password"}' "$base/api/v1/auth/signin" >/dev/null
  bjar="$data/buyer-cookies"
  curl -fs -c "$bjar" -H 'content-type: application/json' \
    -d '{"email":"buyer@globex.test","password":"souk-demo-password"}' "$base/api/v1/auth/signin" >/dev/null
  org=$(curl -fs -b "$bjar" "$base/api/v1/me" | json '[o["id"] for o in d["orgs"] if o["kind"]=="enterprise"][0]')
  curl -fs -b "$opjar" -H 'content-type: application/json' \
    -d '{"currency":"USD","amount_minor":100000000,"reason":"schemathesis"}' "$base/api/v1/admin/wallets/$org/top-ups" >/dev/null
  product=$(curl -fs "$base/api/v1/storefront/intl/products" | json '[p["product_id"] for p in d["items"] if p["kind"]=="saas"][0]')
  plan=$(curl -fs "$base/api/v1/storefront/intl/products/$product" | json 'd["plans"][0]["id"]')
  sub=$(curl -fs -b "$bjar" -H 'content-type: application/json' -H "Idempotency-Key: st-$$" \
    -d "{\"product_id\":\"$product\",\"plan_id\":\"$plan\"}" "$base/api/v1/orgs/$org/orders" | json 'd["subscription_id"]')
  auth="Cookie: souk_session=$(awk '$6 == "souk_session" {print $7}' "$bjar")"
  extra="\"path.subscription_id\" = \"$sub\"
\"path.product_id\" = \"$product\""
fi
cat >"$data/schemathesis.toml" <<TOML
[parameters]
"path.org_id" = "$org"
$extra
TOML
set +e
"$st" --config-file "$data/schemathesis.toml" run "$base/api/openapi.json" \
  -H "$auth" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
  --max-examples "${SOUK_ST_EXAMPLES:-30}" \
  --workers 2 \
  --exclude-path-regex '^/api/v1/auth/(signout|password)' \
  --report junit --report-dir "${SOUK_ST_REPORT:-target/schemathesis}" \
  "$@"
rc=$?
set -e
if grep -E ' (500|501|502|503|504) ' "$data/server.log" >/dev/null; then echo "server log:"; tail -20 "$data/server.log"; fi
exit $rc
