#!/usr/bin/env bash
# bench/query.sh compares skipgrid's query path with gensim's on one vectors file:
#
#   - load: `skipgrid neighbors` reading the file and building its index (read, unit rows,
#     norms) against gensim's KeyedVectors.load_word2vec_format (gensim's norms, computed on
#     its first query, are shown apart);
#   - top-10 cosine neighbours per second of the same 1,000 query words (the words ranked
#     101 to 1,100 in the file, i.e. the most frequent after the first 100), against gensim's
#     most_similar(word, topn=10), after one load on each side.
#
# Each run measures, interleaved so that both sides meet the same machine noise:
#   single-threaded: gensim with OPENBLAS/OMP/MKL_NUM_THREADS=1; skipgrid with GOMAXPROCS=1
#                    and --parallel 1, one word a call and 64 words a call (--bench-batch);
#   all cores:       gensim with its BLAS threads unset; skipgrid with every CPU and
#                    --parallel 0 (rows split across one goroutine per CPU).
# It prints the median of each figure over the runs, and the ratios skipgrid / gensim.
#
# Usage: bench/query.sh [--vectors F] [--runs N] [--python P]
#   --vectors F  vectors file (word2vec binary or text, .vec, GloVe, gzip); files not ending
#                in .bin are converted to binary first, so that both sides read the same bytes.
#                Default: train one with `skipgrid train --corpus data/enwiki-sample.txt.gz`.
#   --runs N     runs of every measurement (default 5).
#   --python P   Python with gensim (default /usr/bin/python3).
set -euo pipefail

vectors="" runs=5 python=/usr/bin/python3
while [ $# -gt 0 ]; do
	case "$1" in
	--vectors) vectors="$2"; shift 2 ;;
	--runs) runs="$2"; shift 2 ;;
	--python) python="$2"; shift 2 ;;
	-h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/query.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$runs" in
'' | *[!0-9]* | 0) echo "bench/query.sh: --runs wants a positive count" >&2; exit 2 ;;
esac
if ! "$python" -c 'import gensim' 2>/dev/null; then
	echo "bench/query.sh: $python cannot import gensim; install python3-gensim" >&2
	exit 1
fi

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
go build -o "$work/skipgrid" ./cmd/skipgrid
sg="$work/skipgrid"

if [ -z "$vectors" ]; then
	echo "training vectors on data/enwiki-sample.txt.gz (give --vectors F to skip this)" >&2
	"$sg" train --corpus data/enwiki-sample.txt.gz --out "$work/model" --log-level warn \
		--progress off >&2
	vectors="$work/model/vectors.bin"
elif [ "${vectors%.bin}" = "$vectors" ]; then
	"$sg" convert --in "$vectors" --out "$work/vectors.bin" --to-format bin --log-level warn
	vectors="$work/vectors.bin"
fi

# gensim_bench loads argv[1], writes the query words to argv[2] when argv[3] is "write",
# otherwise times most_similar on them; prints one JSON object.
gensim_bench='
import json, sys, time
from gensim.models import KeyedVectors
path, queries, mode = sys.argv[1:4]
t0 = time.perf_counter()
kv = KeyedVectors.load_word2vec_format(path, binary=True)
t1 = time.perf_counter()
if mode == "write":
    words = kv.index_to_key
    lo = 100 if len(words) >= 1100 else len(words) // 10
    with open(queries, "w", encoding="utf-8") as f:
        f.write("\n".join(words[lo:lo + 1000]) + "\n")
    json.dump({"words": len(words), "dim": kv.vector_size, "first_query_rank": lo + 1}, sys.stdout)
    sys.exit(0)
kv.fill_norms()
t2 = time.perf_counter()
words = [l.split()[0] for l in open(queries, encoding="utf-8") if l.strip()]
kv.most_similar(words[0], topn=10)
t3 = time.perf_counter()
for w in words:
    kv.most_similar(w, topn=10)
t4 = time.perf_counter()
json.dump({"load_seconds": t1 - t0, "norms_seconds": t2 - t1, "queries": len(words),
           "query_seconds": t4 - t3, "queries_per_second": len(words) / (t4 - t3)}, sys.stdout)
'

info=$("$python" -c "$gensim_bench" "$vectors" "$work/queries.txt" write)
echo "vectors: $vectors ($(wc -c <"$vectors") bytes; $info)"
echo "queries: $(wc -l <"$work/queries.txt") words; $runs runs; $(nproc) CPUs"

results="$work/results.jsonl"
record() { # label, then the command that prints one JSON object
	local label=$1 out
	shift
	out=$("$@")
	printf '{"label": "%s", "result": %s}\n' "$label" "$(printf '%s' "$out" | tr -d '\n')" \
		>>"$results"
}
ours=("$sg" neighbors --vectors "$vectors" --bench-queries "$work/queries.txt" --k 10
	--log-level warn)
theirs=("$python" -c "$gensim_bench" "$vectors" "$work/queries.txt" time)
one_thread=(env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 GOMAXPROCS=1)

for run in $(seq "$runs"); do
	echo "run $run of $runs" >&2
	record "gensim 1 thread" "${one_thread[@]}" "${theirs[@]}"
	record "skipgrid 1 thread" "${one_thread[@]}" "${ours[@]}" --parallel 1
	record "skipgrid 1 thread batch 64" "${one_thread[@]}" "${ours[@]}" --parallel 1 \
		--bench-batch 64
	record "gensim all cores" "${theirs[@]}"
	record "skipgrid all cores" "${ours[@]}" --parallel 0
	record "skipgrid all cores batch 64" "${ours[@]}" --parallel 0 --bench-batch 64
done

"$python" - "$results" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["label"], []).append(r["result"])
med = lambda label, key: statistics.median(x[key] for x in rows[label])
print()
print("%-30s %12s %14s" % ("median of runs", "load s", "queries/s"))
for label in rows:
    print("%-30s %12.4f %14.1f" % (label, med(label, "load_seconds"),
                                   med(label, "queries_per_second")))
print("gensim norms (on first query): %.4f s" % med("gensim 1 thread", "norms_seconds"))
print()
g1, ga = "gensim 1 thread", "gensim all cores"
print("load, gensim / skipgrid (above 1: skipgrid loads faster): %.2f" %
      (med(g1, "load_seconds") / med("skipgrid 1 thread", "load_seconds")))
for ours, theirs in [("skipgrid 1 thread", g1), ("skipgrid 1 thread batch 64", g1),
                     ("skipgrid all cores", ga), ("skipgrid all cores batch 64", ga)]:
    print("queries/s, %s / %s: %.2f" % (ours, theirs,
          med(ours, "queries_per_second") / med(theirs, "queries_per_second")))
EOF
