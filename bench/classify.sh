#!/usr/bin/env bash
# classify.sh: fine-tune text classifiers with skipgrid and with fastText's
# `supervised` on the same labelled files, and print test accuracy (mean and
# spread over seeds) and training time for each.
#
# skipgrid runs four ways: (a) --random-init, (b) pretrained and
# --freeze-embeddings, (c) pretrained and fine-tuned, all three with its
# default words tokenizer, and (d) pretrained and fine-tuned with
# --tokenizer whitespace, which reads the text as fastText does. fastText runs
# with and without -pretrainedVectors (the same vectors, exported as .vec with
# `skipgrid export --format text`) on two copies of the training file, both
# with their lines shuffled with the run's seed: the raw text, and the text
# tokenized as skipgrid's words tokenizer reads it (lower-case words
# [a-z]+('[a-z]+)?). fastText reads a file in order while skipgrid visits
# the examples in a fresh order every epoch, and a file sorted by label, as
# mr.train.txt is, ruins an unshuffled run. Every seed gets its own order, as
# skipgrid's runs do: the order moves TREC accuracy by several tenths of a
# point, so one order shared by every seed measures that order's luck, not
# fastText. Every tool gets the same epochs, learning rate, dimension, word
# n-grams (bigram buckets) and thread count.
#
# Accuracy is the mean over the seeds with its standard error (the seeds'
# standard deviation over the square root of their number); give 10 or more
# seeds to tell apart methods less than half a point apart (with one seed no
# error is printed). The time / fastText column sets each skipgrid run against
# fastText on the same tokens: random initialisation against random
# initialisation, frozen and fine-tuned against -pretrainedVectors (fastText
# has no frozen embeddings). A second table
# sets fine-tuned skipgrid against fastText with -pretrainedVectors on the
# same tokens, (c) against the tokenized copy and (d) against the raw one,
# with the standard error of the difference.
#
# Usage: bench/classify.sh --pretrained DIR [--sets "trec mr sst2"]
#                          [--seeds "1 2 3"] [--epochs N] [--lr F]
#                          [--bigrams N] [--embedding-lr-scale F] [--threads N]
#                          [--no-fasttext] [--plain-epochs] [--bin FILE] [--keep]
#
# NB: with -pretrainedVectors, fastText adds every pretrained word to its
# dictionary as one more token, and its epochs are counted in tokens, so it
# makes epochs * (train tokens + pretrained words) / train tokens passes over
# the data (about 10 for TREC with 54k pretrained words, at -epoch 5).
# skipgrid finetune counts its --epochs the same way by default
# (--fasttext-epochs); --plain-epochs gives skipgrid --fasttext-epochs=false,
# so that its pretrained runs make --epochs passes.
set -uo pipefail

ROOT=$(git rev-parse --show-toplevel) || { echo "classify.sh: run inside the repository" >&2; exit 2; }
DATA="$ROOT/../shared/data/classify"

usage() {
	cat <<EOF
Usage: bench/classify.sh --pretrained DIR [options]

  --pretrained DIR   directory of a skipgrid training run (DIR/vectors.bin)
  --sets "A B"       data sets under ../shared/data/classify, each with
                     NAME.train.txt and NAME.test.txt (default "trec mr sst2")
  --seeds "1 2 3"    seeds; every number is the mean over them (default 1 2 3)
  --epochs N         epochs (default 5)
  --lr F             starting learning rate (default 0.1)
  --bigrams N        hashed word-bigram buckets; 0 for none (default 0);
                     fastText gets -wordNgrams 2 -bucket N
  --embedding-lr-scale F
                     skipgrid's embedding learning rate over the
                     classifier's (default 1, as fastText has it)
  --no-fasttext      run skipgrid only
  --plain-epochs     skipgrid's pretrained runs make --epochs passes, not
                     fastText's count of them (see NB)
  --threads N        skipgrid workers and fastText threads (default 2)
  --bin FILE         skipgrid binary (default: build one in the work directory)
  --keep             keep the work directory (printed at the start)
EOF
}

die() { echo "classify.sh: $*" >&2; exit 2; }

pre=""
sets="trec mr sst2"
seeds="1 2 3"
epochs=5
lr=0.1
bigrams=0
scale=1
fasttext=1
plain=0
threads=2
bin=""
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--pretrained) pre=$2; shift 2 ;;
	--sets) sets=$2; shift 2 ;;
	--seeds) seeds=$2; shift 2 ;;
	--epochs) epochs=$2; shift 2 ;;
	--lr) lr=$2; shift 2 ;;
	--bigrams) bigrams=$2; shift 2 ;;
	--embedding-lr-scale) scale=$2; shift 2 ;;
	--no-fasttext) fasttext=0; shift ;;
	--plain-epochs) plain=1; shift ;;
	--threads) threads=$2; shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument $1" ;;
	esac
done
[ -n "$pre" ] || { usage >&2; die "--pretrained DIR is required"; }
[ -f "$pre/vectors.bin" ] || die "$pre/vectors.bin does not exist"
[ "$fasttext" = 0 ] || command -v fasttext >/dev/null ||
	die "fasttext not found (Debian: apt-get install fasttext), or give --no-fasttext"
command -v python3 >/dev/null || die "python3 not found"

work=$(mktemp -d /tmp/skipgrid-classify.XXXXXX)
echo "work directory: $work" >&2
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT

if [ -z "$bin" ]; then
	bin="$work/skipgrid"
	(cd "$ROOT" && go build -o "$bin" ./cmd/skipgrid) || die "go build failed"
fi
"$bin" export --from "$pre" --format text --out "$work/vectors.vec" >&2 ||
	die "export of $pre/vectors.bin failed"
dim=$(head -1 "$work/vectors.vec" | cut -d' ' -f2)

ngram_args=(-wordNgrams 1)
if [ "$bigrams" -gt 0 ]; then
	ngram_args=(-wordNgrams 2 -bucket "$bigrams")
fi

# copy tok|raw SRC DST [SEED]: DST holds SRC's lines, with tok their labels and
# their text as skipgrid's words tokenizer reads it (exact for ASCII text),
# with raw as they are, in a random order drawn from SEED when one is given.
copy() {
	python3 - "$@" <<'EOF'
import random, re, sys
mode, src, dst = sys.argv[1:4]
word = re.compile(r"[a-z]+(?:'[a-z]+)?")
out = []
with open(src, encoding="utf-8", errors="surrogateescape") as f:
    for line in f:
        if mode == "raw":
            out.append(line if line.endswith("\n") else line + "\n")
            continue
        fields = line.split()
        i = 0
        while i < len(fields) and fields[i].startswith("__label__"):
            i += 1
        out.append(" ".join(fields[:i] + word.findall(" ".join(fields[i:]).lower())) + "\n")
if len(sys.argv) > 4:
    random.Random(int(sys.argv[4])).shuffle(out)
with open(dst, "w", encoding="utf-8", errors="surrogateescape") as g:
    g.writelines(out)
EOF
}

# now prints the time in seconds.
now() { date +%s.%N; }

# passes SET: the passes fastText makes with the pretrained vectors at
# --epochs: tokens are the train file's labels, words and one end of line each.
passes() {
	local tokens words
	tokens=$(awk '{ n += NF + 1 } END { print n }' "$work/$1.train.tok")
	words=$(head -1 "$work/vectors.vec" | cut -d' ' -f1)
	echo $(((epochs * (tokens + words) + tokens / 2) / tokens))
}

# skipgrid_run SET SEED MODE: prints "accuracy start end", the times around the
# whole finetune command (vectors read, cluster up, training, model written).
skipgrid_run() {
	local set=$1 seed=$2 mode=$3 out="$work/sg-$1-$2-$3" args=()
	case "$mode" in
	random) args=(--random-init --dim "$dim") ;;
	frozen) args=(--pretrained "$pre/vectors.bin" --freeze-embeddings) ;;
	tuned) args=(--pretrained "$pre/vectors.bin") ;;
	raw-tuned) args=(--pretrained "$pre/vectors.bin" --tokenizer whitespace) ;;
	esac
	[ "$plain" = 0 ] || args+=(--fasttext-epochs=false)
	local t0 t1 acc
	t0=$(now)
	"$bin" finetune "${args[@]}" --train "$DATA/$set.train.txt" --out "$out" \
		--epochs "$epochs" --alpha "$lr" --bigrams "$bigrams" --seed "$seed" \
		--embedding-lr-scale "$scale" \
		--workers "$threads" --log-level error >/dev/null || { echo "nan 0 0"; return; }
	t1=$(now)
	acc=$("$bin" eval classify --model "$out" --test "$DATA/$set.test.txt" --json \
		--log-level error |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["report"]["accuracy"])')
	rm -rf "$out"
	echo "$acc $t0 $t1"
}

# fasttext_run TRAIN TEST SEED [ARGS...]: prints "accuracy start end".
fasttext_run() {
	local train=$1 test=$2 seed=$3 model="$work/ft"
	shift 3
	local t0 t1 acc
	t0=$(now)
	fasttext supervised -input "$train" -output "$model" -epoch "$epochs" -lr "$lr" \
		-dim "$dim" "${ngram_args[@]}" -thread "$threads" -seed "$seed" -verbose 0 "$@" \
		>/dev/null || { echo "nan 0 0"; return; }
	t1=$(now)
	acc=$(fasttext test "$model.bin" "$test" | awk '$1 == "P@1" { print $2 }')
	rm -f "$model.bin" "$model.vec"
	echo "$acc $t0 $t1"
}

results="$work/results.txt"
for set in $sets; do
	[ -f "$DATA/$set.train.txt" ] || die "$DATA/$set.train.txt does not exist"
	copy tok "$DATA/$set.train.txt" "$work/$set.train.tok"
	copy tok "$DATA/$set.test.txt" "$work/$set.test.tok"
	echo "$set: fastText's -epoch $epochs with the pretrained vectors is $(passes "$set") passes" >&2
	for seed in $seeds; do
		echo "$set: seed $seed" >&2
		for mode in random frozen tuned raw-tuned; do
			echo "$set sg-$mode $(skipgrid_run "$set" "$seed" "$mode")" >>"$results"
		done
		[ "$fasttext" = 1 ] || continue
		copy raw "$DATA/$set.train.txt" "$work/$set.train.$seed.raw" "$seed"
		raw=("$work/$set.train.$seed.raw" "$DATA/$set.test.txt" "$seed")
		copy tok "$DATA/$set.train.txt" "$work/$set.train.$seed.tok" "$seed"
		tok=("$work/$set.train.$seed.tok" "$work/$set.test.tok" "$seed")
		vec=(-pretrainedVectors "$work/vectors.vec")
		echo "$set ft-raw-random $(fasttext_run "${raw[@]}")" >>"$results"
		echo "$set ft-raw-pre $(fasttext_run "${raw[@]}" "${vec[@]}")" >>"$results"
		echo "$set ft-tok-random $(fasttext_run "${tok[@]}")" >>"$results"
		echo "$set ft-tok-pre $(fasttext_run "${tok[@]}" "${vec[@]}")" >>"$results"
	done
done

# The tables: mean accuracy over the seeds and its standard error, mean wall seconds, and
# skipgrid's time over fastText's on the same tokens; then fine-tuned skipgrid minus
# fastText with the pretrained vectors, on each of the two tokenizations.
python3 - "$results" "$(echo $seeds | wc -w)" <<'EOF'
import sys
from collections import defaultdict
from statistics import mean, stdev

rows, sets = defaultdict(list), []
for line in open(sys.argv[1]):
    s, key, acc, t0, t1 = line.split()
    if s not in sets:
        sets.append(s)
    rows[s, key].append((float(acc), float(t1) - float(t0)))
names = [
    ("sg-random", "skipgrid, random init", "ft-tok-random"),
    ("sg-frozen", "skipgrid, pretrained, frozen", "ft-tok-pre"),
    ("sg-tuned", "skipgrid, pretrained, fine-tuned", "ft-tok-pre"),
    ("sg-raw-tuned", "skipgrid, pretrained, fine-tuned, --tokenizer whitespace", "ft-raw-pre"),
    ("ft-tok-random", "fastText, skipgrid's tokens, random init", None),
    ("ft-tok-pre", "fastText, skipgrid's tokens, pretrained", None),
    ("ft-raw-random", "fastText, raw text, random init", None),
    ("ft-raw-pre", "fastText, raw text, pretrained", None),
]
pairs = [
    ("sg-tuned", "ft-tok-pre", "skipgrid's words tokenizer"),
    ("sg-raw-tuned", "ft-raw-pre", "raw text, split on white space"),
]


def stderr(xs):
    return stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else 0.0


def pm(x, se):
    """x ± se, in points; x alone when one seed gives no error."""
    return "%+.2f" % x if n == 1 else "%+.2f ± %.2f" % (x, se)


def accs(s, key):
    return [a for a, _ in rows[s, key]]


n = int(sys.argv[2])
if n == 1:
    print("| set | method | accuracy % (one seed) | seconds | time / fastText |")
else:
    print("| set | method | accuracy %% (mean of %d seeds ± standard error) | seconds | "
          "time / fastText |" % n)
print("|---|---|---|---|---|")
for s in sets:
    for key, name, ref in names:
        r = rows[s, key]
        if not r:
            continue
        acc, sec = [a for a, _ in r], mean([t for _, t in r])
        ratio = ""
        if ref and rows[s, ref]:
            ratio = "%.1f" % (sec / mean([t for _, t in rows[s, ref]]))
        print("| %s | %s | %s | %.2f | %s |" % (
            s, name, pm(100 * mean(acc), 100 * stderr(acc)).lstrip("+"), sec, ratio))

if not any(rows[s, "ft-tok-pre"] for s in sets):
    sys.exit()
print()
print("| set | tokens | skipgrid fine-tuned | fastText pretrained | difference%s |" % (
    "" if n == 1 else " ± standard error"))
print("|---|---|---|---|---|")
for s in sets:
    for sg, ft, tokens in pairs:
        a, b = accs(s, sg), accs(s, ft)
        if not a or not b:
            continue
        se = (stderr(a) ** 2 + stderr(b) ** 2) ** 0.5
        print("| %s | %s | %.2f | %.2f | %s |" % (
            s, tokens, 100 * mean(a), 100 * mean(b), pm(100 * (mean(a) - mean(b)), 100 * se)))
EOF
