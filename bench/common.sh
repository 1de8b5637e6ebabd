# Sourced by the bench scripts: builds (or takes BENCH_BIN), starts a
# throwaway PostgreSQL, loads bench/dataset.sql at SCALE into database
# `bench`, and defines the helpers the scripts share. Not a test: machines
# are shared and noisy, so read ratios measured in one session.
#
#   bench_setup NAME SCALE      sets bin, pgbin, work, base, rows; exports PG* and SCRUBSNAP_KEY
bench_setup() {
  local name=$1 scale=$2
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  scripts/setup >/dev/null
  # BENCH_BIN measures another build (e.g. the one before a change) on the same terms.
  if [ -n "${BENCH_BIN:-}" ]; then bin=$(realpath "$BENCH_BIN"); else
    cargo build --release --locked --quiet
    bin=$PWD/target/release/scrubsnap
  fi
  for p in 17 16 15; do [ -x /usr/lib/postgresql/$p/bin/psql ] && { pgbin=/usr/lib/postgresql/$p/bin; break; }; done
  work=$(mktemp -d "/tmp/scrubsnap-$name.XXXX"); chmod 755 "$work"
  pgdir=/tmp/scrubsnap-$name-pg-$$
  trap 'bench_cleanup' EXIT
  local url; url=$(scripts/throwaway-pg start "$pgdir")
  base=${url%/postgres}
  export PGPASSWORD=${url#postgresql://postgres:}; PGPASSWORD=${PGPASSWORD%%@*}
  export PGHOST=127.0.0.1 PGPORT=$(cat "$pgdir/port") PGUSER=postgres PGOPTIONS="-c client_min_messages=warning"
  echo "generating data at scale $scale ..." >&2
  psql -d postgres -c 'CREATE DATABASE bench'
  # Production-like values: names, streets and cities drawn from lists of real
  # ones, random phone numbers and dates, emails made of names, free text
  # that sometimes holds an email or a phone number, JSON documents with a
  # session id. (A pseudo-random pick per row and column, the same in every run.)
  psql -d bench -v n="$(python3 -c "print(int(100000*$scale))")" -f bench/dataset.sql
  rows=$(psql -d bench -Atc "SELECT sum(n_live_tup) FROM pg_stat_user_tables")
  export SCRUBSNAP_KEY=6a2f1c9e0b7d4e8fa3c5d7e9f1b3a5c70d2e4f6a8b9c1d3e5f7a9b2c4d6e8f0a
  declare -gA times rss sizes
}

bench_cleanup() {
  [ -n "${bench_extra_cleanup:-}" ] && eval "$bench_extra_cleanup"
  scripts/throwaway-pg stop "$pgdir"
  rm -rf "$work"
}

psql() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# measure NAME COMMAND...: wall time and peak RSS (GNU time), appended to times[NAME], rss[NAME].
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { echo "$name failed:" >&2; cat "$work/err" >&2; exit 1; }
  local t m; read -r t m <"$work/time"
  times[$name]+="$t "; rss[$name]+="$m "
}

# A new empty database; `drop` removes it again, so that the server does not
# vacuum and analyze it while the next command is measured.
fresh() { psql -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }
drop() { psql -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Bytes of the data files of a local snapshot (its blobs) plus its own files.
snapshot_bytes() { python3 -c "import json,sys; print(sum(f['bytes'] for f in json.load(open(sys.argv[1]))['files']))" "$1/$2/manifest.json"; }
