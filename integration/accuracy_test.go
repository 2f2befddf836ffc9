package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// questionsWords is word2vec's analogy questions, in the shared data beside the repository.
const questionsWords = "../../shared/data/eval/questions-words.txt"

// accuracyBound is how far, in points of total analogy accuracy, a job that went through a
// fault may land from the fault-free run of the same job.
const accuracyBound = 1.0

// minAnalogyQuestions is the fewest answered questions a comparison needs. Below it one
// question moves the score by more than 0.05 points, and runs of one seed land too far
// apart for accuracyBound: with the 766 questions that vectors of the Lee corpus answer,
// six fault-free runs of one compose job scored from 0.65% to 1.57%.
const minAnalogyQuestions = 2000

// faultFreeTimeout bounds one fault-free run and its scoring; it does not eat into the
// deadline of the fault test that asks for it.
const faultFreeTimeout = 4 * time.Minute

// faultFreeJob is a job configuration whose fault-free run the fault tests compare with.
type faultFreeJob struct {
	// key names the configuration: the corpus, the topology and every setting that shapes
	// training, the seed included. Two jobs share a key only when a fault-free run of one
	// is a fault-free run of the other. Settings that only say how long to wait for a node
	// that does not answer (lease, retry and shard-down timeouts) and where shards keep
	// checkpoints change nothing while no node fails, so they may be left out.
	key string
	// run trains the job without a fault, to its end, and returns its output directory.
	// It runs under the *testing.T of the first test that asks for key and with its own
	// deadline, so it may use newCluster, startRecoveryJob, startCompose and checkOutputs.
	run func(t *testing.T, ctx context.Context) string
}

// analogyScore is the part of `skipgrid eval analogy --json` the tests read.
type analogyScore struct {
	Total struct {
		Correct  int     `json:"correct"`
		Total    int     `json:"total"`
		Accuracy float64 `json:"accuracy"`
	} `json:"total"`
	Seen      int `json:"questions_seen"`
	Questions int `json:"questions_total"`
}

// points is the score's total accuracy in percentage points.
func (s analogyScore) points() float64 { return 100 * s.Total.Accuracy }

// String gives the accuracy with the counts it comes from, e.g. "1.82% (130/7142)".
func (s analogyScore) String() string {
	return fmt.Sprintf("%.2f%% (%d/%d)", s.points(), s.Total.Correct, s.Total.Total)
}

// faultFree holds the score of each configuration's fault-free run, by key, for the whole
// test binary: each configuration is trained once, by the first test that asks.
var faultFree = struct {
	mu     sync.Mutex
	scores map[string]*faultFreeScore // guarded by mu
}{scores: map[string]*faultFreeScore{}}

// faultFreeScore is one configuration's fault-free score; done is closed once score or err
// is set.
type faultFreeScore struct {
	done  chan struct{}
	score analogyScore
	err   error
}

// checkAccuracy scores the vectors that a job which went through a fault wrote to out
// against the fault-free run of the same job, logs both as figures and fails the test when
// they differ by more than accuracyBound points, or when they were scored on different
// questions. The score is total analogy accuracy over every section of questions-words.txt
// with all words of the vectors (`eval analogy --restrict 0`), as compute-accuracy counts
// it: the most questions the vectors allow, so the least noise.
//
// job.run is called once per job.key in the test binary; every later test with the same
// key reuses the score. A fault test calls it last, once its own checks of out have passed:
//
//	checkAccuracy(t, ctx, recoveryJobFaultFree, j.out)
//
// A test of another configuration (more shards, replicas, other settings) declares its own
// faultFreeJob, whose run starts the same cluster with the same arguments and waits for
// the job to end, as recoveryJobFaultFree does. ctx bounds the scoring of out.
//
// Where questions-words.txt is not there, it says so in the test log and checks nothing.
// Where the vectors answer fewer than minAnalogyQuestions questions (small corpora such as
// the Lee corpus), it logs their accuracy, says why it compares nothing, and trains no
// fault-free run. Where the fault-free accuracy is itself under accuracyBound, it says that
// only a gain or a changed vocabulary can fail the check.
func checkAccuracy(t *testing.T, ctx context.Context, job faultFreeJob, out string) {
	t.Helper()
	if _, err := os.Stat(questionsWords); err != nil {
		t.Logf("analogy accuracy not checked: the questions are not there (%v)", err)
		return
	}

	fault := scoreAnalogy(t, ctx, out)
	if fault.Seen < minAnalogyQuestions {
		t.Logf("figures: accuracy fault %s, not compared with a fault-free run: %d "+
			"questions answered, fewer than the %d that a %.0f-point bound needs (%s)",
			fault, fault.Seen, minAnalogyQuestions, accuracyBound, job.key)
		return
	}
	base := faultFreeScoreOf(t, job)
	diff := fault.points() - base.points()
	t.Logf("figures: accuracy fault %s, fault-free %s, diff %+.2f points (%s)", fault, base,
		diff, job.key)

	if fault.Seen != base.Seen || fault.Questions != base.Questions {
		t.Errorf("the fault run was scored on %d of %d questions, the fault-free run on %d "+
			"of %d: their vocabularies differ", fault.Seen, fault.Questions, base.Seen,
			base.Questions)
	}
	if base.points() <= accuracyBound {
		t.Logf("the fault-free accuracy %s is within %.0f point of zero: this comparison "+
			"cannot see a fault that spoils the vectors, only the vocabulary and a gain",
			base, accuracyBound)
	}
	if math.Abs(diff) > accuracyBound {
		t.Errorf("analogy accuracy after the fault %s differs from the fault-free run's %s "+
			"by %+.2f points, more than %.0f", fault, base, diff, accuracyBound)
	}
}

// faultFreeScoreOf returns the score of job's fault-free run, training it when no test has
// yet. When that run failed, in this test or an earlier one, the test fails.
func faultFreeScoreOf(t *testing.T, job faultFreeJob) analogyScore {
	t.Helper()
	faultFree.mu.Lock()
	s, trained := faultFree.scores[job.key]
	if !trained {
		s = &faultFreeScore{done: make(chan struct{})}
		faultFree.scores[job.key] = s
	}
	faultFree.mu.Unlock()
	if trained {
		<-s.done
		if s.err != nil {
			t.Fatal(s.err)
		}
		return s.score
	}

	// Set before the run: run and scoreAnalogy end this goroutine when they fail the test.
	s.err = fmt.Errorf("the fault-free run of %s failed in %s", job.key, t.Name())
	defer close(s.done)
	ctx, cancel := context.WithTimeout(context.Background(), faultFreeTimeout)
	defer cancel()
	start := time.Now()
	out := job.run(t, ctx)
	s.score, s.err = scoreAnalogy(t, ctx, out), nil
	t.Logf("fault-free run of %s: accuracy %s; trained and scored in %.1fs", job.key,
		s.score, time.Since(start).Seconds())
	return s.score
}

// scoreAnalogy runs `skipgrid eval analogy` on out/vectors.bin and returns its result.
func scoreAnalogy(t *testing.T, ctx context.Context, out string) analogyScore {
	t.Helper()
	cmd := exec.CommandContext(ctx, binary, "eval", "analogy",
		"--vectors", filepath.Join(out, "vectors.bin"), "--questions", questionsWords,
		"--restrict", "0", "--json")
	stdout, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("eval analogy of %s: %v\n%s", out, err, tail(stderr, 2000))
	}
	var s analogyScore
	if err := json.Unmarshal(stdout, &s); err != nil {
		t.Fatalf("eval analogy --json output: %v\n%s", err, tail(stdout, 2000))
	}
	if s.Total.Total == 0 || s.Seen != s.Total.Total {
		t.Fatalf("eval analogy of %s answered %d questions, saw %d: nothing to compare", out,
			s.Total.Total, s.Seen)
	}
	return s
}

// faultJobFaultFree is the job of startJob (faults_test.go) without a fault.
var faultJobFaultFree = faultFreeJob{
	key: "enwiki sample, 2 epochs, --batch-words 4096, 2 PS, 2 workers, seed 1",
	run: func(t *testing.T, ctx context.Context) string {
		c := newCluster(t)
		coord, workers, _, out := startJob(t, c)
		if err := coord.wait(t, ctx); err != nil {
			t.Fatalf("fault-free coordinator failed: %v", err)
		}
		waitAll(t, ctx, workers...)
		checkOutputs(t, out, 2)
		return out
	},
}

// recoveryJobFaultFree is the job of startRecoveryJob (recovery_test.go) without a fault.
var recoveryJobFaultFree = faultFreeJob{
	key: fmt.Sprintf("enwiki sample, %d epochs, --chunk-bytes 262144, 2 PS, 2 workers, seed 1",
		recoveryEpochs),
	run: func(t *testing.T, ctx context.Context) string {
		c := newCluster(t)
		j := startRecoveryJob(t, c, nil, nil)
		if err := j.coord.wait(t, ctx); err != nil {
			t.Fatalf("fault-free coordinator failed: %v", err)
		}
		waitAll(t, ctx, append(append([]*proc{}, j.ps...), j.workers...)...)
		checkOutputs(t, j.out, recoveryEpochs)
		return j.out
	},
}

// trainJobFaultFree is the embedded `skipgrid train` of TestTrainKilledAndResumed without
// a fault.
var trainJobFaultFree = faultFreeJob{
	key: fmt.Sprintf("embedded train, enwiki sample, %d epochs, --chunk-bytes 262144, seed 1",
		recoveryEpochs),
	run: func(t *testing.T, ctx context.Context) string {
		c := newCluster(t)
		out := filepath.Join(t.TempDir(), "out")
		p := c.start("train", append([]string{"train", "--out", out}, trainArgs()...)...)
		if err := p.wait(t, ctx); err != nil {
			t.Fatalf("fault-free train failed: %v", err)
		}
		checkOutputs(t, out, recoveryEpochs)
		return out
	},
}

// composeFaultFree is the compose cluster of startCompose with settings, without a fault.
func composeFaultFree(compose []string, settings map[string]string) faultFreeJob {
	return faultFreeJob{
		// fmt prints a map sorted by key.
		key: fmt.Sprintf("compose cluster, %v", settings),
		run: func(t *testing.T, ctx context.Context) string {
			c := startCompose(t, ctx, compose, settings)
			if code := c.waitExit(ctx, "coordinator"); code != 0 {
				t.Fatalf("fault-free coordinator exited with %d", code)
			}
			epochs, err := strconv.Atoi(settings["SKIPGRID_EPOCHS"])
			if err != nil {
				t.Fatalf("SKIPGRID_EPOCHS: %v", err)
			}
			checkOutputs(t, c.out, epochs)
			return c.out
		},
	}
}

// TestFaultFreeSpread trains each configuration of the fault tests SKIPGRID_ACCURACY_RUNS
// times without a fault and reports how far apart the total analogy accuracies of runs
// with the same seed land (the workers train asynchronously, so runs are not bit-identical).
// That spread must stay inside accuracyBound, or the fault tests would fail without a
// fault. It is skipped unless SKIPGRID_ACCURACY_RUNS is set; the compose configurations
// are skipped where no Docker engine answers.
func TestFaultFreeSpread(t *testing.T) {
	runs, err := strconv.Atoi(os.Getenv("SKIPGRID_ACCURACY_RUNS"))
	if err != nil || runs < 2 {
		t.Skip("set SKIPGRID_ACCURACY_RUNS to 2 or more to measure the fault-free spread")
	}
	if _, err := os.Stat(questionsWords); err != nil {
		t.Skipf("the questions are not there: %v", err)
	}

	configs := []struct {
		name string
		job  func(t *testing.T) faultFreeJob
	}{
		{"processes", func(*testing.T) faultFreeJob { return faultJobFaultFree }},
		{"recovery", func(*testing.T) faultFreeJob { return recoveryJobFaultFree }},
		{"train", func(*testing.T) faultFreeJob { return trainJobFaultFree }},
		{"compose-worker-killed", func(t *testing.T) faultFreeJob {
			return composeFaultFree(requireDocker(t), workerKilledSettings())
		}},
		{"compose-worker-disconnected", func(t *testing.T) faultFreeJob {
			return composeFaultFree(requireDocker(t), workerDisconnectedSettings())
		}},
	}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) { checkSpread(t, cfg.job(t), runs) })
	}
}

// checkSpread trains job runs times and reports the spread of its scores, failing the test
// when it reaches accuracyBound for a job that checkAccuracy compares.
func checkSpread(t *testing.T, job faultFreeJob, runs int) {
	var scores []float64
	seen := 0
	for i := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), faultFreeTimeout)
		s := scoreAnalogy(t, ctx, job.run(t, ctx))
		cancel()
		t.Logf("%s, run %d: %s", job.key, i+1, s)
		scores, seen = append(scores, s.points()), s.Seen
	}

	lo, hi, mean := scores[0], scores[0], 0.0
	for _, x := range scores {
		lo, hi, mean = math.Min(lo, x), math.Max(hi, x), mean+x/float64(runs)
	}
	sd := 0.0
	for _, x := range scores {
		sd += (x - mean) * (x - mean) / float64(runs-1)
	}
	sd = math.Sqrt(sd)
	t.Logf("figures: spread of %d fault-free runs of %s: %.2f..%.2f%%, mean %.2f%%, "+
		"sd %.2f points, max-min %.2f points", runs, job.key, lo, hi, mean, sd, hi-lo)
	if seen < minAnalogyQuestions {
		t.Logf("%d questions answered: checkAccuracy compares nothing for %s", seen, job.key)
		return
	}
	if hi-lo >= accuracyBound {
		t.Errorf("%s: fault-free runs of one seed land %.2f points apart, not inside "+
			"the %.0f-point bound the fault tests check", job.key, hi-lo, accuracyBound)
	}
}
