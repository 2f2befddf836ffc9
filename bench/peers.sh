#!/usr/bin/env bash
# peers.sh: train word2vec on the same tokens with fastText, gensim and
# skipgrid (embedded in memory, embedded over gRPC, and as a multi-process
# cluster on loopback), and print words per second for each with the ratios.
#
# Every tool gets the same token file (written once by `skipgrid tokenize`),
# the same settings and the same thread count. Speed is measured the same way
# for all: tokens * epochs / wall seconds of the whole process, vocabulary
# pass and vector writing included.
#
# Usage: bench/peers.sh [--corpus FILE...] [--epochs N] [--threads N]
#                       [--model sg|cbow] [--quality] [--keep]
#                       [--tokens FILE] [--max-tokens N] [--timeout S] [--bin FILE]
set -uo pipefail

ROOT=$(git rev-parse --show-toplevel) || { echo "peers.sh: run inside the repository" >&2; exit 2; }
DATA="$ROOT/../shared/data"

usage() {
	cat <<EOF
Usage: bench/peers.sh [options]

  --corpus FILE...   corpus files, plain or gzip
                     (default ../shared/data/corpus/enwiki2014_AA.txt.gz)
  --epochs N         training epochs (default 1)
  --threads N        threads for every tool; skipgrid workers (default 2)
  --model sg|cbow    skip-gram or CBOW (default sg)
  --quality          also score every tool's vectors on analogies (top 30000
                     words) and word similarity
  --keep             keep the work directory (printed at the start)
  --tokens FILE      use this token file (one sentence per line, tokens
                     separated by single spaces) instead of tokenizing
  --max-tokens N     train on the first lines of the tokens only, up to
                     about N tokens (for quick runs)
  --timeout S        stop any one tool after S seconds (default 7200)
  --bin FILE         use this skipgrid binary instead of building bin/skipgrid

Fixed settings: dim 100, window 5, negative 5, sample 1e-4, min-count 5,
alpha 0.025 for sg and 0.05 for cbow (the usual defaults of word2vec and
fastText for each model; every tool gets the same).
EOF
}

die() { echo "peers.sh: $*" >&2; exit 2; }

corpus=()
epochs=1
threads=2
model=sg
quality=0
keep=0
tokens_in=""
max_tokens=0
limit=7200
bin=""

while [ $# -gt 0 ]; do
	case "$1" in
	--corpus)
		shift
		while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do corpus+=("$1"); shift; done
		[ ${#corpus[@]} -gt 0 ] || die "--corpus needs at least one file"
		continue ;;
	--epochs) epochs=${2:-}; shift ;;
	--threads) threads=${2:-}; shift ;;
	--model) model=${2:-}; shift ;;
	--quality) quality=1 ;;
	--keep) keep=1 ;;
	--tokens) tokens_in=${2:-}; shift ;;
	--max-tokens) max_tokens=${2:-}; shift ;;
	--timeout) limit=${2:-}; shift ;;
	--bin) bin=${2:-}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
	shift
done

posint() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
posint "$epochs" || die "--epochs '$epochs': want a positive integer"
posint "$threads" || die "--threads '$threads': want a positive integer"
posint "$limit" || die "--timeout '$limit': want a positive number of seconds"
[[ "$max_tokens" =~ ^[0-9]+$ ]] || die "--max-tokens '$max_tokens': want an integer"
case "$model" in
sg) alpha=0.025; ft_cmd=skipgram; gensim_sg=1 ;;
cbow) alpha=0.05; ft_cmd=cbow; gensim_sg=0 ;;
*) die "--model '$model': want sg or cbow" ;;
esac
if [ -n "$tokens_in" ]; then
	[ -r "$tokens_in" ] || die "--tokens $tokens_in: not a readable file"
else
	[ ${#corpus[@]} -gt 0 ] || corpus=("$DATA/corpus/enwiki2014_AA.txt.gz")
	for f in "${corpus[@]}"; do [ -r "$f" ] || die "corpus $f: not a readable file"; done
fi

WORK=$(mktemp -d -t skipgrid-peers.XXXXXX) || die "cannot make a work directory"
SKIPGRID=${bin:-$ROOT/bin/skipgrid}
cluster_pids=()

# stop_children ends, by process id, the processes that PID started and
# theirs (the tool that /usr/bin/time or timeout runs), deepest first.
# PID itself is left to exit, so that /usr/bin/time still writes its figures.
stop_children() {
	local child
	for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		stop_children "$child"
		kill -TERM "$child" 2>/dev/null || true
	done
}

cleanup() {
	local pid
	for pid in "${cluster_pids[@]}"; do
		stop_children "$pid"
		kill -TERM "$pid" 2>/dev/null || true
	done
	if [ "$keep" = 1 ]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "work directory: $WORK"
echo "settings: model $model, epochs $epochs, threads $threads, dim 100, window 5," \
	"negative 5, sample 1e-4, min-count 5, alpha $alpha"

# --- tools -------------------------------------------------------------------

# install_missing installs fastText, gensim (for /usr/bin/python3) and GNU
# time with apt-get when they are missing.
install_missing() {
	local pkgs=()
	command -v fasttext >/dev/null 2>&1 || pkgs+=(fasttext)
	/usr/bin/python3 -c 'import gensim' >/dev/null 2>&1 || pkgs+=(python3-gensim)
	[ -x /usr/bin/time ] || pkgs+=(time)
	[ ${#pkgs[@]} -eq 0 ] && return 0

	local as=(env DEBIAN_FRONTEND=noninteractive)
	[ "$(id -u)" -eq 0 ] || as=(sudo "${as[@]}")
	echo "installing ${pkgs[*]} with apt-get"
	if ! "${as[@]}" apt-get update -qq >/dev/null ||
		! "${as[@]}" apt-get install -y -qq "${pkgs[@]}" >/dev/null; then
		echo "warning: apt-get could not install ${pkgs[*]}; those steps will fail" >&2
	fi
}

install_missing
[ -x /usr/bin/time ] || die "/usr/bin/time (package time) is missing and could not be installed"

if [ -n "$bin" ]; then
	[ -x "$bin" ] || die "--bin $bin: not an executable file"
else
	echo "building $SKIPGRID"
	if ! (cd "$ROOT" && CGO_ENABLED=0 go build -o bin/skipgrid ./cmd/skipgrid) \
		>"$WORK/build.log" 2>&1; then
		echo "skipgrid build failed; skipgrid steps will fail:" >&2
		tail -n 20 "$WORK/build.log" | sed 's/^/  /' >&2
		rm -f "$SKIPGRID"
	fi
fi

# --- tokens ------------------------------------------------------------------

TOKENS="$WORK/tokens.txt"
if [ -n "$tokens_in" ]; then
	src="$tokens_in"
else
	echo "tokenizing ${corpus[*]}"
	src="$WORK/tokens-all.txt"
	corpus_flags=()
	for f in "${corpus[@]}"; do corpus_flags+=(--corpus "$f"); done
	if ! "$SKIPGRID" tokenize "${corpus_flags[@]}" --out "$src" >"$WORK/tokenize.log" 2>&1; then
		echo "skipgrid tokenize failed, and every tool needs its tokens:" >&2
		tail -n 20 "$WORK/tokenize.log" | sed 's/^/  /' >&2
		exit 1
	fi
fi
if [ "$max_tokens" -gt 0 ]; then
	# Whole lines, stopping once the total reaches max_tokens.
	awk -v max="$max_tokens" '{ print; n += NF; if (n >= max) exit }' "$src" >"$TOKENS"
else
	ln -s "$(realpath "$src")" "$TOKENS"
fi
ntokens=$(wc -w <"$TOKENS" | tr -d ' ')
[ "$ntokens" -gt 0 ] || die "the token file is empty"
echo "tokens: $ntokens ($(wc -l <"$TOKENS" | tr -d ' ') lines)"

# --- runs --------------------------------------------------------------------

names=()
declare -A wall rss status vecs

# record NAME WALL RSS_KB STATUS VECTORS stores one tool's outcome.
record() {
	names+=("$1")
	wall[$1]=$2
	rss[$1]=$3
	status[$1]=$4
	vecs[$1]=$5
}

# run_timed NAME VECTORS CMD... runs CMD under /usr/bin/time and timeout,
# and records its wall time and peak resident memory (the largest of the
# process and the children it waited for).
run_timed() {
	local name=$1 vec=$2
	shift 2
	echo "running $name"
	/usr/bin/time -f '%e %M' -o "$WORK/$name.time" \
		timeout -k 10 "$limit" "$@" >"$WORK/$name.log" 2>&1
	local rc=$?
	local w m
	read -r w m < <(tail -n 1 "$WORK/$name.time" 2>/dev/null) || true
	if [ $rc -ne 0 ]; then
		[ $rc -eq 124 ] && echo "$name: stopped after $limit s (--timeout)" >&2
		echo "$name failed (exit $rc); last lines of its output:" >&2
		tail -n 15 "$WORK/$name.log" | tr '\r' '\n' | tail -n 15 | sed 's/^/  /' >&2
		record "$name" "${w:--}" "${m:-0}" "failed" ""
		return 1
	fi
	record "$name" "$w" "$m" "ok" "$vec"
}

run_fasttext() {
	if ! command -v fasttext >/dev/null 2>&1; then
		echo "fasttext is not installed" >&2
		record fasttext - 0 failed ""
		return 1
	fi
	run_timed fasttext "$WORK/fasttext.vec" fasttext "$ft_cmd" -input "$TOKENS" \
		-output "$WORK/fasttext" -minn 0 -maxn 0 -dim 100 -ws 5 -neg 5 -t 1e-4 \
		-minCount 5 -epoch "$epochs" -thread "$threads" -lr "$alpha" -verbose 1
}

run_gensim() {
	cat >"$WORK/gensim_train.py" <<'EOF'
import sys
from gensim.models import Word2Vec
from gensim.models.word2vec import FAST_VERSION

tokens, out, sg, epochs, workers, alpha = sys.argv[1:7]
if FAST_VERSION < 0:
    sys.exit("gensim has no compiled training routines; it would be far too slow")
model = Word2Vec(corpus_file=tokens, sg=int(sg), vector_size=100, window=5, negative=5,
                 sample=1e-4, min_count=5, epochs=int(epochs), workers=int(workers),
                 alpha=float(alpha))
model.wv.save_word2vec_format(out)
EOF
	run_timed gensim "$WORK/gensim.vec" /usr/bin/python3 "$WORK/gensim_train.py" \
		"$TOKENS" "$WORK/gensim.vec" "$gensim_sg" "$epochs" "$threads" "$alpha"
}

train_flags=(--tokenizer whitespace --model "$model" --dim 100 --window 5 --negative 5
	--sample 1e-4 --min-count 5 --epochs "$epochs" --alpha "$alpha")

run_skipgrid() {
	local name=$1
	shift
	if [ ! -x "$SKIPGRID" ]; then
		echo "$name: $SKIPGRID was not built" >&2
		record "$name" - 0 failed ""
		return 1
	fi
	run_timed "$name" "$WORK/$name/vectors.bin" "$SKIPGRID" train --corpus "$TOKENS" \
		--out "$WORK/$name" "${train_flags[@]}" --workers "$threads" --ps 2 "$@"
}

# free_ports N prints N distinct ports that are free for both TCP and UDP on
# 127.0.0.1 (gossip uses both), holding them all until it has N.
free_ports() {
	/usr/bin/python3 - "$1" <<'EOF'
import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    held += [t, u]
    ports.append(port)
print(" ".join(map(str, ports)))
EOF
}

# start_bg NAME CMD... starts one cluster process under /usr/bin/time.
start_bg() {
	local name=$1
	shift
	/usr/bin/time -f '%e %M' -o "$WORK/$name.time" "$@" >"$WORK/$name.log" 2>&1 &
	cluster_pids+=($!)
}

# run_cluster starts a coordinator, two PS shards and `threads` workers as
# separate processes on loopback, timed from the first start to the
# coordinator's exit. Peak RSS is the sum of every process's peak.
run_cluster() {
	local name=cluster
	if [ ! -x "$SKIPGRID" ]; then
		echo "$name: $SKIPGRID was not built" >&2
		record "$name" - 0 failed ""
		return 1
	fi
	local ports
	read -r -a ports < <(free_ports $((5 + 2 + threads)))
	local cgrpc=${ports[0]} chttp=${ports[1]} cgossip=${ports[2]}
	local seed="127.0.0.1:$cgossip" coord="127.0.0.1:$cgrpc"
	echo "running $name (coordinator gRPC $coord, gossip seed $seed)"

	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -f '%e %M' -o "$WORK/$name-coordinator.time" \
		timeout -k 10 "$limit" "$SKIPGRID" coordinator --corpus "$TOKENS" \
		--out "$WORK/$name" --ps 2 "${train_flags[@]}" \
		--grpc-addr "$coord" --http-addr "127.0.0.1:$chttp" --gossip-addr "$seed" \
		>"$WORK/$name-coordinator.log" 2>&1 &
	local cpid=$!
	cluster_pids+=("$cpid")
	local s
	for s in 0 1; do
		start_bg "$name-ps$s" "$SKIPGRID" ps --shard "$s" \
			--grpc-addr "127.0.0.1:${ports[$((3 + s))]}" --coordinator "$coord" \
			--gossip-addr "127.0.0.1:${ports[$((5 + s))]}" --join "$seed"
	done
	local w
	for ((w = 0; w < threads; w++)); do
		start_bg "$name-w$w" "$SKIPGRID" worker --name "w$w" --coordinator "$coord" \
			--gossip-addr "127.0.0.1:${ports[$((7 + w))]}" --join "$seed"
	done

	wait "$cpid"
	local rc=$?
	t1=$(date +%s.%N)
	stop_cluster_rest "$cpid"
	cluster_result "$name" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
}

# stop_cluster_rest gives the PS shards and workers a few seconds to exit
# on their own after the coordinator, then stops them.
stop_cluster_rest() {
	local cpid=$1 pid i
	for ((i = 0; i < 50; i++)); do
		local alive=0
		for pid in "${cluster_pids[@]}"; do
			[ "$pid" = "$cpid" ] && continue
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for pid in "${cluster_pids[@]}"; do
		[ "$pid" = "$cpid" ] || stop_children "$pid"
	done
	for pid in "${cluster_pids[@]}"; do wait "$pid" 2>/dev/null; done
	cluster_pids=()
}

# cluster_result records the cluster run: the wall time measured here and
# the sum of the processes' peak RSS.
cluster_result() {
	local name=$1 rc=$2 secs=$3 f sum=0 m
	for f in "$WORK/$name"-*.time; do
		m=$(awk 'END { print $NF }' "$f" 2>/dev/null)
		[[ "$m" =~ ^[0-9]+$ ]] && sum=$((sum + m))
	done
	if [ "$rc" -ne 0 ]; then
		echo "$name: coordinator failed (exit $rc); last lines of each log:" >&2
		for f in "$WORK/$name"-*.log; do
			echo "  == $(basename "$f")" >&2
			tail -n 8 "$f" | sed 's/^/  /' >&2
		done
		record "$name" "$secs" "$sum" failed ""
		return 1
	fi
	record "$name" "$secs" "$sum" ok "$WORK/$name/vectors.bin"
}

run_fasttext
run_gensim
run_skipgrid skipgrid-inmem
run_skipgrid skipgrid-grpc --transport grpc
run_cluster

# --- report ------------------------------------------------------------------

# wps NAME prints the tool's words per second, or nothing when it failed.
wps() {
	[ "${status[$1]}" = ok ] || return 0
	awk -v t="$ntokens" -v e="$epochs" -v s="${wall[$1]}" \
		'BEGIN { if (s > 0) printf "%.0f", t * e / s }'
}
ratio() {
	[ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

ft=$(wps fasttext)
gs=$(wps gensim)
echo
echo "$ntokens tokens x $epochs epoch(s), $threads threads, model $model"
printf '%-16s %9s %12s %12s %11s %11s\n' tool "wall s" "peak RSS MB" "words/s" \
	"x fastText" "x gensim"
for n in "${names[@]}"; do
	r=$(wps "$n")
	mb=$(awk -v k="${rss[$n]}" 'BEGIN { printf "%.0f", k / 1024 }')
	if [ "${status[$n]}" != ok ]; then
		printf '%-16s %9s %12s %12s %11s %11s\n' "$n" "${wall[$n]}" "-" failed - -
		continue
	fi
	printf '%-16s %9s %12s %12s %11s %11s\n' "$n" "${wall[$n]}" "$mb" "$r" \
		"$(ratio "$r" "$ft" || echo -)" "$(ratio "$r" "$gs" || echo -)"
done
echo "(cluster: wall time from the first process start to the coordinator's exit;"
echo " peak RSS summed over all its processes)"

# --- quality -----------------------------------------------------------------

if [ "$quality" = 1 ]; then
	questions="$DATA/eval/questions-words.txt"
	pairs="$DATA/eval/EN-WS-353-ALL.txt"
	echo
	if [ ! -x "$SKIPGRID" ]; then
		echo "quality: $SKIPGRID was not built; no scores" >&2
		exit 0
	fi
	for n in "${names[@]}"; do
		[ "${status[$n]}" = ok ] || continue
		echo "== $n (${vecs[$n]})"
		"$SKIPGRID" eval analogy --vectors "${vecs[$n]}" --questions "$questions" \
			--restrict 30000 2>&1 | tail -n 3 | sed 's/^/  /' ||
			echo "  eval analogy failed" >&2
		"$SKIPGRID" eval similarity --vectors "${vecs[$n]}" --pairs "$pairs" 2>&1 |
			tail -n 3 | sed 's/^/  /' || echo "  eval similarity failed" >&2
	done
fi
