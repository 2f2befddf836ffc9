package query

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// get sends a request to h and returns the status, the Content-Type and
// the body.
func get(t *testing.T, h http.Handler, method, target, body string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body == "" {
		req.ContentLength = 0
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
}

// decode decodes a JSON body into a value of type T.
func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return v
}

func TestHTTPAnswers(t *testing.T) {
	h := NewHandler(Fixed(mustIndex(t, plane(), DefaultConfig())), quiet)
	tests := []struct {
		name, target string
		want         any
		opt          cmp.Option // approx unless set
	}{{
		// Scores worked by hand in TestNeighborsByHand; A is found as a.
		name:   "neighbors",
		target: "/v1/neighbors?word=A&word=d&k=2",
		want: NeighborsReply{Metric: "cosine", K: 2, Results: []WordResult{
			{Query: "A", Word: "a", Neighbors: []Neighbor{{"f", 1}, {"b", 0.96}}},
			{Query: "d", Word: "d", Neighbors: []Neighbor{{"b", 0.8}, {"a", 0.6}}},
		}},
	}, {
		name:   "neighbors euclidean",
		target: "/v1/neighbors?word=a&k=1&metric=euclidean",
		want: NeighborsReply{Metric: "euclidean", K: 1, Results: []WordResult{
			{Query: "a", Word: "a", Neighbors: []Neighbor{{"b", 1.4142135623730951}}},
		}},
	}, {
		// Over the plane: a=(3,4), b=(4,3), c=(0,2) as unit rows (0.6,0.8),
		// (0.8,0.6), (0,1); b-a+c = (0.2,0.8): f (0.12+0.64), d 0.2, z 0,
		// e -0.76.
		name:   "analogy",
		target: "/v1/analogy?a=a&b=b&c=c&k=3",
		want: AnalogyReply{A: "a", B: "b", C: "c", Method: "3cosadd", K: 3,
			Neighbors: []Neighbor{{"f", 0.76}, {"d", 0.2}, {"z", 0}}},
	}, {
		// 3CosMul, x' = (1+cos)/2 against a, b, c: e (0, 0.02, 0.1) gives
		// 0.02*0.1/0.001, the small denominator winning as 3CosMul allows;
		// f (1, 0.98, 0.9) gives 0.98*0.9/1.001. Dividing by about 0.001
		// magnifies the float32 rounding of the unit rows a thousandfold.
		name:   "analogy 3cosmul",
		target: "/v1/analogy?a=a&b=b&c=c&k=2&method=3CosMul",
		want: AnalogyReply{A: "a", B: "b", C: "c", Method: "3cosmul", K: 2,
			Neighbors: []Neighbor{{"e", 0.02 * 0.1 / 0.001}, {"f", 0.98 * 0.9 / 1.001}}},
		opt: cmpopts.EquateApprox(1e-5, 0),
	}, {
		name:   "similarity",
		target: "/v1/similarity?w1=a&w2=b&metric=dot",
		want:   SimilarityReply{W1: "a", W2: "b", Metric: "dot", Score: 24},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ctype, body := get(t, h, http.MethodGet, tt.target, "")
			if code != http.StatusOK || ctype != "application/json" {
				t.Fatalf("status %d, Content-Type %q, body %s", code, ctype, body)
			}
			var got any
			switch tt.want.(type) {
			case NeighborsReply:
				got = decode[NeighborsReply](t, body)
			case AnalogyReply:
				got = decode[AnalogyReply](t, body)
			default:
				got = decode[SimilarityReply](t, body)
			}
			opt := tt.opt
			if opt == nil {
				opt = approx
			}
			if diff := cmp.Diff(tt.want, got, opt); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	h := NewHandler(Fixed(mustIndex(t, plane(), DefaultConfig())), quiet)
	many := "/v1/neighbors?word=a" + strings.Repeat("&word=a", MaxWords)
	long := "/v1/neighbors?word=" + strings.Repeat("a", MaxQueryBytes)
	tests := []struct {
		name, method, target, body string
		status                     int
		code                       string
		mention                    string // a fragment the message must hold
	}{
		{"unknown word", "GET", "/v1/neighbors?word=nope", "", 400, "unknown_word", `"nope"`},
		{"unknown analogy word", "GET", "/v1/analogy?a=a&b=b&c=nope", "", 400,
			"unknown_word", `"nope"`},
		{"unknown similarity word", "GET", "/v1/similarity?w1=nope&w2=a", "", 400,
			"unknown_word", `"nope"`},
		{"k 0", "GET", "/v1/neighbors?word=a&k=0", "", 400, "invalid_argument", "k is 0"},
		{"k too big", "GET", "/v1/neighbors?word=a&k=1001", "", 400, "invalid_argument",
			"[1, 1000]"},
		{"k not a number", "GET", "/v1/neighbors?word=a&k=ten", "", 400, "invalid_argument",
			`k "ten"`},
		{"k twice", "GET", "/v1/neighbors?word=a&k=1&k=2", "", 400, "invalid_argument",
			"2 times"},
		{"bad metric", "GET", "/v1/neighbors?word=a&metric=manhattan", "", 400,
			"invalid_argument", "manhattan"},
		{"bad method", "GET", "/v1/analogy?a=a&b=b&c=c&method=3cosdiv", "", 400,
			"invalid_argument", "3cosdiv"},
		{"no word", "GET", "/v1/neighbors?k=3", "", 400, "invalid_argument", "0 query words"},
		{"too many words", "GET", many, "", 400, "invalid_argument", "101 query words"},
		{"missing c", "GET", "/v1/analogy?a=a&b=b", "", 400, "invalid_argument", `"c"`},
		{"empty w2", "GET", "/v1/similarity?w1=a&w2=", "", 400, "invalid_argument", `"w2"`},
		{"unknown parameter", "GET", "/v1/similarity?w1=a&w2=b&kk=1", "", 400,
			"invalid_argument", `"kk"`},
		{"bad escape", "GET", "/v1/neighbors?word=%zz", "", 400, "invalid_argument",
			"query string"},
		{"POST", "POST", "/v1/neighbors?word=a", "", 405, "method_not_allowed", "GET only"},
		{"HEAD", "HEAD", "/v1/similarity?w1=a&w2=b", "", 405, "method_not_allowed",
			"GET only"},
		{"other path", "GET", "/v1/nearest?word=a", "", 404, "not_found", "/v1/neighbors"},
		{"body", "GET", "/v1/neighbors?word=a", "{}", 413, "too_large", "no body"},
		{"long query", "GET", long, "", 414, "too_large", "limit of 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ctype, body := get(t, h, tt.method, tt.target, tt.body)
			if code != tt.status || ctype != "application/json" {
				t.Fatalf("status %d, Content-Type %q; want %d, application/json (body %s)",
					code, ctype, tt.status, body)
			}
			if tt.method == "HEAD" {
				return // a recorder keeps HEAD bodies, but clients never see them
			}
			got := decode[ErrorReply](t, body)
			if got.Code != tt.code || !strings.Contains(got.Error, tt.mention) {
				t.Errorf("got %+v; want code %s and a message mentioning %s", got, tt.code,
					tt.mention)
			}
		})
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("DELETE", "/v1/analogy", nil))
	if got := rec.Header().Get("Allow"); got != "GET" {
		t.Errorf("405 Allow header %q, want GET", got)
	}
}

func TestHTTPNotReady(t *testing.T) {
	h := NewHandler(NewLive(&FileSource{Path: "never-loaded"}, quiet), quiet)
	code, _, body := get(t, h, "GET", "/v1/similarity?w1=a&w2=b", "")
	if got := decode[ErrorReply](t, body); code != 503 || got.Code != "not_ready" {
		t.Errorf("status %d body %s; want 503 not_ready", code, body)
	}
}

// TestHTTPOverServer runs the handler behind a real HTTP server and checks
// that a word needing escapes round-trips.
func TestHTTPOverServer(t *testing.T) {
	v := plane()
	v.Words[1] = "b&c?é"
	srv := httptest.NewServer(NewHandler(Fixed(mustIndex(t, v, DefaultConfig())), quiet))
	defer srv.Close()

	u := srv.URL + "/v1/similarity?" + url.Values{"w1": {"a"}, "w2": {"b&c?é"}}.Encode()
	req, err := http.NewRequestWithContext(context.Background(), "GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got SimilarityReply
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := SimilarityReply{W1: "a", W2: "b&c?é", Metric: "cosine", Score: 0.96}
	if diff := cmp.Diff(want, got, approx); diff != "" || resp.StatusCode != 200 {
		t.Errorf("status %d (-want +got):\n%s", resp.StatusCode, diff)
	}
}

// FuzzHandler sends arbitrary query strings to every endpoint: the answer
// is always JSON with status 200, 400 or 414, never a server error.
func FuzzHandler(f *testing.F) {
	f.Add("word=a&k=3&metric=dot")
	f.Add("a=a&b=b&c=c&method=3cosmul&k=1000")
	f.Add("w1=A&w2=%C3%A9&metric=EUCLIDEAN")
	f.Add("word=%ff%fe&k=-1")
	f.Add("k=1e9&word=")
	h := NewHandler(Fixed(mustIndex(f, plane(), DefaultConfig())), quiet)
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/v1/neighbors", "/v1/analogy", "/v1/similarity"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery = path, query
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 400, 414:
			default:
				t.Fatalf("%s?%s: status %d: %s", path, query, rec.Code, rec.Body.String())
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s?%s: body is not JSON: %q", path, query, rec.Body.String())
			}
		}
	})
}
