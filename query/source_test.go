package query

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/vectors"
)

func TestFileSourceAndRefresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.txt")
	if err := vectors.WriteFile(path, plane(), vectors.FormatText); err != nil {
		t.Fatal(err)
	}
	live := NewLive(&FileSource{Path: path}, quiet)
	if _, err := live.Index(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Index() before loading: %v, want ErrNotReady", err)
	}
	if err := live.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	x, err := live.Index()
	if err != nil {
		t.Fatal(err)
	}
	got, err := x.Neighbors("a", 2, MetricDot)
	if err != nil {
		t.Fatal(err)
	}
	// From TestNeighborsByHand: a·f = 50, a·b = 24.
	if diff := cmp.Diff([]Neighbor{{"f", 50}, {"b", 24}}, got, approx); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// A broken file fails the refresh, names the file, and keeps the index.
	if err := os.WriteFile(path, []byte("2 2\na 1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = live.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Refresh of a broken file: %v; want an error naming %s", err, path)
	}
	if cur, _ := live.Index(); cur != x {
		t.Error("a failed refresh replaced the index")
	}
	if n, _ := live.Loads(); n != 1 {
		t.Errorf("Loads() = %d, want 1", n)
	}
}

func TestFixedCannotRefresh(t *testing.T) {
	x := mustIndex(t, plane(), DefaultConfig())
	live := Fixed(x)
	if got, err := live.Index(); got != x || err != nil {
		t.Errorf("Index() = %p, %v; want the fixed index", got, err)
	}
	if err := live.Refresh(context.Background()); err == nil {
		t.Error("Refresh of a fixed index: no error")
	}
}

func TestParseNames(t *testing.T) {
	for _, m := range []Metric{MetricCosine, MetricDot, MetricEuclidean} {
		got, err := ParseMetric(strings.ToUpper(m.String()))
		if err != nil || got != m {
			t.Errorf("ParseMetric(%q) = %v, %v", strings.ToUpper(m.String()), got, err)
		}
	}
	for _, m := range []AnalogyMethod{Method3CosAdd, Method3CosMul} {
		got, err := ParseAnalogyMethod(m.String())
		if err != nil || got != m {
			t.Errorf("ParseAnalogyMethod(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMetric("l2"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ParseMetric(l2): %v", err)
	}
	if _, err := ParseAnalogyMethod("pairdirection"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ParseAnalogyMethod(pairdirection): %v", err)
	}
}
