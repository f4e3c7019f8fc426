#!/usr/bin/env bash
# Ubuzima Sync — THE benchmark command: builds in Release, runs local-write, sync, no-op, load and
# PouchDB benchmarks, prints a table and rewrites docs/PERFORMANCE.md (--tiny: tiny sizes, print only).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

tiny=0
if [ "${1:-}" = "--tiny" ]; then tiny=1; fi
# UBUZIMA_BENCH_ONLY=backends: only the initial sync and load figures, on SQLite and PostgreSQL
# (printed, docs/PERFORMANCE.md left as it is).
only="${UBUZIMA_BENCH_ONLY:-}"
if [ "$tiny" = 1 ]; then
    sync_sizes="300"; single_rows=100; batch_rows=2000; load_devices="10"
    tls_connections=20; tls_requests=100; tls_records=100; login_samples=3
else
    sync_sizes="10000 100000"; single_rows=3000; batch_rows=50000; load_devices="100 200 500"
    tls_connections=300; tls_requests=2000; tls_records=5000; login_samples=25
fi

# Sizes may be narrowed for a quicker look (e.g. UBUZIMA_BENCH_SYNC_SIZES=100000 UBUZIMA_BENCH_LOAD_DEVICES=100).
sync_sizes="${UBUZIMA_BENCH_SYNC_SIZES:-$sync_sizes}"
load_devices="${UBUZIMA_BENCH_LOAD_DEVICES:-$load_devices}"

build="$root/build-bench"
work="$build/bench-work"
results="$work/results.jsonl"
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DUBUZIMA_BUILD_BENCH=ON -DUBUZIMA_BUILD_TESTS=OFF -DUBUZIMA_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$build" --parallel 2 --target ubuzima-server bench_local_writes bench_sync_client bench_load bench_tls bench_login
bin="$build/bench"
server_bin="$build/server/ubuzima-server"

# PouchDB, the peer, from the lock file into bench/node_modules (git-ignored).
pouch=0
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    if [ -d bench/node_modules/pouchdb ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
        pouch=1
    fi
fi
[ "$pouch" = 1 ] || echo "bench: node/npm or the PouchDB install is missing: skipping the PouchDB peer" >&2

rm -rf "$work"
mkdir -p "$work"
: >"$results"
# 500 devices = 500 sockets in the load process and 500 in the server.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

server_pid=""
server_url=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# start_server NAME COMMAND...: runs it in the background, waits for its "listening on" line.
start_server() {
    local name="$1"
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
    server_pid=$!
    for _ in $(seq 1 200); do
        if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
            server_url="$(grep -o 'https\?://[0-9.:]*' "$work/$name.out" | head -1)"
            return 0
        fi
        sleep 0.1
    done
    echo "bench: $name did not start" >&2
    cat "$work/$name.err" >&2
    exit 1
}

# tag JSON lines with extra fields and append them to the results (and show them).
record() { sed -u "s/^{/{$1,/" | tee -a "$results"; }
server_rss() {
    local kb
    kb="$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")"
    echo "{$1,\"bench\":\"server_rss\",\"kb\":$kb}" | tee -a "$results"
}

admin_pw="bench-admin-pw-1"
user_pw="bench-user-pw-1"

if [ "$only" = backends ]; then
    pouch=0
else
echo "== local writes"
"$bin/bench_local_writes" --dir "$work/local" --single-rows "$single_rows" --batch-rows "$batch_rows" | record '"tiny":'"$tiny"
fi

for n in $sync_sizes; do
    echo "== initial sync, N=$n (ours)"
    "$bin/bench_sync_client" gen --n "$n" --out "$work/records-$n.jsonl" | record "\"n\":$n"
    UBUZIMA_ADMIN_PASSWORD="$admin_pw" start_server "server-$n" "$server_bin" --data "$work/server-$n" --listen 127.0.0.1:0 \
        --rate-per-device 0 --access-log off
    "$bin/bench_sync_client" setup --url "$server_url" --admin-password "$admin_pw" --password "$user_pw"
    "$bin/bench_sync_client" push --url "$server_url" --user bench-alice --password "$user_pw" \
        --records "$work/records-$n.jsonl" --db "$work/device-a-$n.db" | record "\"n\":$n"
    server_rss "\"n\":$n,\"system\":\"ours\",\"direction\":\"push\""
    "$bin/bench_sync_client" pull --url "$server_url" --user bench-bob --password "$user_pw" --expect "$n" \
        --db "$work/device-b-$n.db" | record "\"n\":$n"
    server_rss "\"n\":$n,\"system\":\"ours\",\"direction\":\"pull\""
    stop_server
    rm -rf "$work/server-$n" "$work"/device-*-"$n".db*

    if [ "$pouch" = 1 ]; then
        echo "== initial sync, N=$n (PouchDB)"
        start_server "pouch-$n" node bench/pouch_server.js "$work/pouch-server-$n"
        port="${server_url##*:}"
        node bench/pouchdb_bench.js push "$port" "$work" "$work/records-$n.jsonl" | record "\"n\":$n"
        server_rss "\"n\":$n,\"system\":\"pouchdb\",\"direction\":\"push\""
        node bench/pouchdb_bench.js pull "$port" "$work" | record "\"n\":$n"
        server_rss "\"n\":$n,\"system\":\"pouchdb\",\"direction\":\"pull\""
        stop_server
        rm -rf "$work/pouch-server-$n"
    fi
done

if [ "$only" != backends ]; then
echo "== login timing at the production PBKDF2 cost (600,000 iterations)"
UBUZIMA_ADMIN_PASSWORD="$admin_pw" start_server "login" "$server_bin" --data "$work/login" --listen 127.0.0.1:0 \
    --rate-per-device 0 --access-log off
"$bin/bench_login" --url "$server_url" --admin-password "$admin_pw" --samples "$login_samples" | record "\"tiny\":$tiny"
stop_server
rm -rf "$work/login"

echo "== TLS: new connections, keep-alive requests and sync throughput, https vs http"
# A throw-away certificate for 127.0.0.1 (its own trust anchor), as an operator would install one.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
chmod 600 "$work/tls.key"
for variant in plain:cpprest tls:cpprest tls:beast; do
    scheme="${variant%%:*}"; listener="${variant##*:}"
    tls_args=(); ca_args=()
    if [ "$scheme" = tls ]; then tls_args=(--tls-cert "$work/tls.crt" --tls-key "$work/tls.key"); ca_args=(--ca-file "$work/tls.crt"); fi
    UBUZIMA_ADMIN_PASSWORD="$admin_pw" start_server "tls-$scheme-$listener" "$server_bin" --data "$work/tls-$scheme-$listener" \
        --listen 127.0.0.1:0 --listener "$listener" --pbkdf2-iterations 1000 --rate-per-device 0 --access-log off "${tls_args[@]}"
    "$bin/bench_tls" --url "$server_url" "${ca_args[@]}" --admin-password "$admin_pw" --label "$scheme-$listener" \
        --dir "$work/tls-devices" --connections "$tls_connections" --requests "$tls_requests" --records "$tls_records" \
        | record "\"tiny\":$tiny"
    stop_server
    rm -rf "$work/tls-$scheme-$listener" "$work/tls-devices"
done
fi

for devices in $load_devices; do
    echo "== load: $devices concurrent devices"
    # Login cost is not what is measured: a cheap KDF keeps creating hundreds of users quick.
    UBUZIMA_ADMIN_PASSWORD="$admin_pw" start_server "load-$devices" "$server_bin" --data "$work/load-$devices" \
        --listen 127.0.0.1:0 --pbkdf2-iterations 1000 --rate-per-device 0 --access-log off
    "$bin/bench_load" --url "$server_url" --admin-password "$admin_pw" --devices "$devices" --records 20 \
        --run "$devices" | record "\"tiny\":$tiny"
    server_rss "\"devices\":$devices,\"system\":\"ours\",\"direction\":\"load\""
    stop_server
    rm -rf "$work/load-$devices"
done

# The same initial sync and load with the server on PostgreSQL (one and two processes on one
# database), in a throw-away cluster. UBUZIMA_BENCH_PG=0 skips it.
if [ "${UBUZIMA_BENCH_PG:-1}" = 1 ] && command -v pg_virtualenv >/dev/null 2>&1; then
    pg_virtualenv -t bash "$root/bench/postgres.sh" "$bin" "$server_bin" "$work" "$results" "$sync_sizes" "$load_devices" "$tiny"
else
    echo "bench: pg_virtualenv missing or UBUZIMA_BENCH_PG=0: skipping the PostgreSQL figures" >&2
fi

report_args=("$results")
if [ "$tiny" = 0 ] && [ -z "$only" ]; then report_args+=(--write "$root/docs/PERFORMANCE.md"); fi
python3 bench/report.py "${report_args[@]}"
