# bench/lib.sh - helpers the bench scripts share (sourced, not run).

# make_certs DIR: a throwaway EC P-256 CA (DIR/ca.pem) and a server
# certificate for localhost signed by it (DIR/srv.pem, DIR/srv.key).
make_certs() {
  local dir=$1
  ec() { openssl req "$@" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes 2>/dev/null; }
  ec -x509 -days 2 -subj /CN=bench-ca -keyout "$dir/ca.key" -out "$dir/ca.pem"
  ec -subj /CN=localhost -keyout "$dir/srv.key" -out "$dir/srv.csr"
  printf 'subjectAltName=DNS:localhost\n' >"$dir/ext"
  openssl x509 -req -in "$dir/srv.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/ext" -out "$dir/srv.pem" 2>/dev/null
}

# field FILE EXPR: a value from a JSON file, EXPR in Python subscript form
# (e.g. "['renew_latency_us']['p99']").
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d$2)" "$1"; }

# bench_ok CMD...: run a `leasering bench` command. Its exit 3 (some leases
# not acquired or lost: the JSON says how many, and the tables show it) does
# not stop the script; any other failure does.
bench_ok() { local rc=0; "$@" || rc=$?; [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"; }

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# A throwaway redis-server on a free loopback port, for the scripts that
# measure against one. They set $dir (its working dir) first; start_server
# sets $port and $pid, stop_server stops it and waits until it is gone.
start_server() {
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
      --logfile "$dir/redis.log" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
  done
  echo "could not start redis-server" >&2; exit 1
}
stop_server() {
  if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  pid=
}
# server_cpu: used_cpu_sys + used_cpu_user of the server on $port, in seconds.
server_cpu() {
  redis-cli -p "$port" info cpu | awk -F: '/^used_cpu_(sys|user):/{s+=$2} END{printf "%.6f", s}'
}

# azurite_prepare NAME: check that Azurite is installed, make $dir
# (/tmp/NAME.XXXXXX) with a throwaway CA in it (make_certs), an EXIT trap that
# stops the servers in $pids and removes $dir, and $KEY, the well-known
# devstoreaccount1 key percent-encoded for an azblob:// URI.
azurite_prepare() {
  AZ=node_modules/.bin/azurite-blob
  [ -x $AZ ] || { echo "azurite missing: run scripts/setup" >&2; exit 1; }
  dir=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
  KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq%2FK1SZFPTOtr%2FKBHBeksoGMGw%3D%3D'
  make_certs "$dir"
}

# start_azurite http|https: Azurite (node_modules/) blob-only on a free
# loopback port, in memory, without telemetry; https uses $dir/srv.pem from
# make_certs. Sets $port; appends the pid to the array $pids (the caller's
# EXIT trap stops them). $AZ is the azurite-blob binary.
start_azurite() {
  for _ in $(seq 1 10); do
    port=$((20000 + RANDOM % 40000))
    local tlsargs=()
    [ "$1" = https ] && tlsargs=(--cert "$dir/srv.pem" --key "$dir/srv.key")
    $AZ --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence --disableTelemetry \
      --silent "${tlsargs[@]}" >"$dir/az-$1.log" 2>&1 &
    local p=$!
    for _ in $(seq 1 100); do
      if grep -q "successfully listens" "$dir/az-$1.log" 2>/dev/null; then pids+=("$p"); return 0; fi
      kill -0 $p 2>/dev/null || break
      sleep 0.1
    done
    kill $p 2>/dev/null || true
  done
  echo "cannot start azurite ($1)" >&2; exit 1
}
