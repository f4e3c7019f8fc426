#!/usr/bin/env bash
# Ubuzima Sync — the storage-backend figures (issue 9): initial sync and the load benchmark with
# the server on PostgreSQL, with one server process and with two on one database (devices spread
# over both, as a load balancer without sticky sessions would). Called by bench/run.sh inside
# `pg_virtualenv -t` (a throw-away cluster, durable: fsync and synchronous_commit on, like the
# SQLite store's synchronous=FULL). Arguments: BIN_DIR SERVER_BIN WORK RESULTS SYNC_SIZES LOAD_DEVICES TINY.
set -euo pipefail
bin="$1"; server_bin="$2"; work="$3"; results="$4"; sync_sizes="$5"; load_devices="$6"; tiny="$7"
admin_pw="bench-admin-pw-1"
user_pw="bench-user-pw-1"

pids=()
urls=()
stop_servers() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=(); urls=()
}
trap stop_servers EXIT

# start_server NAME DB ARGS...: one more server process on database DB; waits for its listening line.
start_server() {
    local name="$1" db="$2"
    shift 2
    UBUZIMA_ADMIN_PASSWORD="$admin_pw" "$server_bin" --db "postgresql:///$db" --listen 127.0.0.1:0 \
        --access-log off --rate-per-device 0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    for _ in $(seq 1 300); do
        if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
            urls+=("$(grep -o 'https\?://[0-9.:]*' "$work/$name.out" | head -1)")
            return 0
        fi
        sleep 0.1
    done
    echo "bench: $name did not start" >&2
    cat "$work/$name.err" >&2
    exit 1
}

record() { sed -u "s/^{/{\"backend\":\"postgresql\",$1,/" | tee -a "$results"; }
server_rss() {
    local kb=0 k
    for pid in "${pids[@]}"; do
        k="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
        kb=$((kb + k))
    done
    echo "{\"backend\":\"postgresql\",$1,\"bench\":\"server_rss\",\"kb\":$kb}" | tee -a "$results"
}
db_size_kb() { psql -XAtc "SELECT pg_database_size('$1') / 1024" postgres; }

psql -XAtc "SELECT 'bench: ' || version()" postgres >&2

for n in $sync_sizes; do
    echo "== initial sync, N=$n (PostgreSQL)"
    [ -f "$work/records-$n.jsonl" ] || "$bin/bench_sync_client" gen --n "$n" --out "$work/records-$n.jsonl" >/dev/null
    createdb "sync_$n"
    start_server "pg-server-$n" "sync_$n"
    "$bin/bench_sync_client" setup --url "${urls[0]}" --admin-password "$admin_pw" --password "$user_pw"
    "$bin/bench_sync_client" push --url "${urls[0]}" --user bench-alice --password "$user_pw" \
        --records "$work/records-$n.jsonl" --db "$work/pg-device-a-$n.db" | record "\"n\":$n"
    server_rss "\"n\":$n,\"system\":\"ours\",\"direction\":\"push\""
    "$bin/bench_sync_client" pull --url "${urls[0]}" --user bench-bob --password "$user_pw" --expect "$n" \
        --db "$work/pg-device-b-$n.db" | record "\"n\":$n"
    server_rss "\"n\":$n,\"system\":\"ours\",\"direction\":\"pull\""
    echo "{\"backend\":\"postgresql\",\"bench\":\"store_size\",\"n\":$n,\"kb\":$(db_size_kb "sync_$n")}" | tee -a "$results"
    stop_servers
    dropdb "sync_$n"
    rm -f "$work"/pg-device-*-"$n".db*
done

for servers in 1 2; do
    for devices in $load_devices; do
        echo "== load: $devices concurrent devices, $servers server process(es) on PostgreSQL"
        createdb "load_${servers}_$devices"
        for s in $(seq 1 "$servers"); do
            start_server "pg-load-$servers-$devices-$s" "load_${servers}_$devices" --pbkdf2-iterations 1000
        done
        url_args=()
        for u in "${urls[@]}"; do url_args+=(--url "$u"); done
        "$bin/bench_load" "${url_args[@]}" --admin-password "$admin_pw" --devices "$devices" --records 20 \
            --run "pg$servers-$devices" | record "\"tiny\":$tiny"
        server_rss "\"devices\":$devices,\"servers\":$servers,\"system\":\"ours\",\"direction\":\"load\""
        stop_servers
        dropdb "load_${servers}_$devices"
    done
done
