package payload

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

var testLimits = Limits{MaxRows: 1000, MaxDim: 64, MaxBytes: 1 << 16}

func TestEncodeHandBytes(t *testing.T) {
	tests := []struct {
		name   string
		ids    []uint32
		dim    int
		values []float32
		opt    Options
		want   []byte
	}{{
		// flags 0x03: has ids | float16<<1. n=3, dim=1. ids 3, 4-3-1=0, 10-4-1=5.
		// Values 1 -> 0x3c00, -2.5 -> 0xc100, 0 -> 0x0000, little-endian.
		name: "ids float16", ids: []uint32{3, 4, 10}, dim: 1, values: []float32{1, -2.5, 0},
		opt:  Options{Values: ValuesFloat16},
		want: []byte{1, 0x03, 3, 1, 3, 0, 5, 0x00, 0x3c, 0x00, 0xc1, 0x00, 0x00},
	}, {
		// flags 0: no ids, float32. n = 2 values / dim 2 = 1. 1.0 = 0x3f800000, 2.0 =
		// 0x40000000, little-endian.
		name: "values float32", dim: 2, values: []float32{1, 2},
		want: []byte{1, 0, 1, 2, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40},
	}, {
		// Keys: ids only, dim 0. 300 = uvarint ac 02; 70000-300-1 = 69699 = 0x11043 ->
		// groups of 7 bits from the low end: 0x43, 0x20, 0x04 -> c3 a0 04.
		name: "keys", ids: []uint32{300, 70000}, dim: 0,
		want: []byte{1, 0x01, 2, 0, 0xac, 0x02, 0xc3, 0xa0, 0x04},
	}, {
		name: "empty", dim: 0,
		want: []byte{1, 0, 0, 0},
	}, {
		// Largest id: 2^32-1 = uvarint ff ff ff ff 0f.
		name: "max id", ids: []uint32{math.MaxUint32}, dim: 0,
		want: []byte{1, 0x01, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode([]byte{0xee}, tc.ids, tc.dim, tc.values, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			// Encode appends: the byte already in dst stays first.
			if diff := cmp.Diff(append([]byte{0xee}, tc.want...), got); diff != "" {
				t.Errorf("Encode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeCompressedLayout(t *testing.T) {
	ids := []uint32{1, 2, 3, 100}
	values := []float32{0.5, 0.25, -1, 8}
	for _, c := range []Compression{CompressS2, CompressZstd} {
		got, err := Encode(nil, ids, 1, values, Options{Compress: c})
		if err != nil {
			t.Fatal(err)
		}
		// Header: version, flags (has ids | c<<3), n=4, dim=1; then the body's length: 4
		// one-byte ids (1, 0, 0, 96) and 4 float32 values = 20 bytes.
		wantHead := []byte{1, 0x01 | byte(c)<<3, 4, 1, 20}
		if !bytes.HasPrefix(got, wantHead) {
			t.Fatalf("%s: header % x, want prefix % x", c, got[:5], wantHead)
		}
		body := inflateWithReference(t, c, got[5:])
		wantBody := []byte{1, 0, 0, 96, 0, 0, 0, 0x3f, 0, 0, 0x80, 0x3e, 0, 0, 0x80, 0xbf,
			0, 0, 0, 0x41}
		if diff := cmp.Diff(wantBody, body); diff != "" {
			t.Errorf("%s body (-want +got):\n%s", c, diff)
		}
	}
}

// inflateWithReference decompresses with fresh library objects, not the package's own.
func inflateWithReference(t *testing.T, c Compression, src []byte) []byte {
	t.Helper()
	if c == CompressS2 {
		out, err := s2.Decode(nil, src)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		ids    []uint32
		dim    int
		values []float32
		opt    Options
		want   error
	}{
		{"unordered ids", []uint32{5, 3}, 0, nil, Options{}, ErrArgs},
		{"duplicate ids", []uint32{3, 3}, 0, nil, Options{}, ErrArgs},
		{"too few values", []uint32{1, 2}, 2, []float32{1, 2, 3}, Options{}, ErrArgs},
		{"values without dim", nil, 0, []float32{1}, Options{}, ErrArgs},
		{"ragged values", nil, 2, []float32{1, 2, 3}, Options{}, ErrArgs},
		{"negative dim", nil, -1, nil, Options{}, ErrArgs},
		{"unknown codec", nil, 1, nil, Options{Values: 2}, ErrOptions},
		{"unknown compression", nil, 1, nil, Options{Compress: 3}, ErrOptions},
		{"float16 overflow", nil, 2, []float32{1, 65520}, Options{Values: ValuesFloat16}, ErrRange},
		{"float16 NaN", nil, 1, []float32{float32(math.NaN())}, Options{Values: ValuesFloat16},
			ErrRange},
		{"float16 Inf", nil, 1, []float32{float32(math.Inf(-1))},
			Options{Values: ValuesFloat16, Compress: CompressZstd}, ErrRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(nil, tc.ids, tc.dim, tc.values, tc.opt)
			if !errors.Is(err, tc.want) {
				t.Errorf("Encode error = %v, want %v", err, tc.want)
			}
		})
	}
}

// randomBlock makes n rows of dim values with ascending ids (or none) from rng.
func randomBlock(rng *rand.Rand, n, dim int, withIDs bool) Block {
	b := Block{N: n, Dim: dim, Values: make([]float32, n*dim)}
	if withIDs {
		b.IDs = make([]uint32, 0, n)
		next := uint32(0)
		for range n {
			next += uint32(rng.IntN(1000)) // gaps of 0..999 plus one
			b.IDs = append(b.IDs, next)
			next++
		}
	}
	for i := range b.Values {
		b.Values[i] = float32(rng.NormFloat64() * 0.1)
	}
	return b
}

func allOptions() []Options {
	var opts []Options
	for _, v := range []ValueCodec{ValuesFloat32, ValuesFloat16} {
		for _, c := range []Compression{CompressNone, CompressS2, CompressZstd} {
			opts = append(opts, Options{Values: v, Compress: c})
		}
	}
	return opts
}

// TestRoundTrip checks the property Decode(Encode(x)) == x for random blocks: exactly for
// float32, and for float16 equal to each value rounded to half and back (the rounding itself
// is checked in float16_test.go), which is within 2^-11 of the value, relatively.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, opt := range allOptions() {
		for trial := range 40 {
			n, dim := rng.IntN(50), rng.IntN(20)
			withIDs := trial%2 == 0 || dim == 0
			in := randomBlock(rng, n, dim, withIDs)
			if !withIDs && dim == 0 {
				in.N = 0
			}
			enc, err := Encode(nil, in.IDs, dim, in.Values, opt)
			if err != nil {
				t.Fatalf("%+v: Encode: %v", opt, err)
			}
			var out Block
			if err := Decode(enc, testLimits, &out); err != nil {
				t.Fatalf("%+v n=%d dim=%d: Decode: %v", opt, n, dim, err)
			}
			want := in
			if opt.Values == ValuesFloat16 {
				want.Values = make([]float32, len(in.Values))
				for i, v := range in.Values {
					h, _ := toHalf(v)
					want.Values[i] = fromHalf(h)
					if d := math.Abs(float64(want.Values[i] - v)); d > math.Abs(float64(v))/2048 &&
						d > 0x1p-25 {
						t.Fatalf("float16 of %g is %g, off by more than half an ulp", v,
							want.Values[i])
					}
				}
			}
			if diff := cmp.Diff(want, out, cmpBlock); diff != "" {
				t.Fatalf("%+v n=%d dim=%d (-want +got):\n%s", opt, n, dim, diff)
			}
		}
	}
}

// cmpBlock compares float32 values bit for bit and treats nil and empty slices alike.
var cmpBlock = cmp.Options{
	cmp.Comparer(func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }),
	cmp.Transformer("ids", func(s []uint32) []uint32 {
		if len(s) == 0 {
			return nil
		}
		return s
	}),
	cmp.Transformer("values", func(s []float32) []float32 {
		if len(s) == 0 {
			return nil
		}
		return s
	}),
}

func TestDecodeKeepsIDsNilness(t *testing.T) {
	// An empty id list is still a block with ids; a block without ids decodes with IDs nil.
	withIDs, _ := Encode(nil, []uint32{}, 3, nil, Options{})
	withoutIDs, _ := Encode(nil, nil, 3, nil, Options{})
	blk := Block{IDs: make([]uint32, 4)}
	if err := Decode(withIDs, testLimits, &blk); err != nil || blk.IDs == nil || blk.N != 0 {
		t.Errorf("with ids: err %v, IDs %v (nil %v), N %d", err, blk.IDs, blk.IDs == nil, blk.N)
	}
	if err := Decode(withoutIDs, testLimits, &blk); err != nil || blk.IDs != nil {
		t.Errorf("without ids: err %v, IDs %v", err, blk.IDs)
	}
}

func TestDecodeReusesBuffers(t *testing.T) {
	enc, err := Encode(nil, []uint32{1, 5}, 2, []float32{1, 2, 3, 4}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	blk := Block{IDs: make([]uint32, 10), Values: make([]float32, 10)}
	ids0, vals0 := &blk.IDs[0], &blk.Values[0]
	if err := Decode(enc, testLimits, &blk); err != nil {
		t.Fatal(err)
	}
	if &blk.IDs[0] != ids0 || &blk.Values[0] != vals0 {
		t.Error("Decode allocated although the block's buffers were large enough")
	}
	want := Block{IDs: []uint32{1, 5}, N: 2, Dim: 2, Values: []float32{1, 2, 3, 4}}
	if diff := cmp.Diff(want, blk); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// mustEncode encodes or fails the test.
func mustEncode(t testing.TB, ids []uint32, dim int, values []float32, opt Options) []byte {
	t.Helper()
	b, err := Encode(nil, ids, dim, values, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRefuses(t *testing.T) {
	// Header 01 01 02 01, ids 01 00, then 8 value bytes.
	valid := mustEncode(t, []uint32{1, 2}, 1, []float32{1, 2}, Options{})
	zeros := make([]byte, 1<<20)
	zstdEnc, _ := zstd.NewWriter(nil)
	defer zstdEnc.Close()
	bomb := zstdEnc.EncodeAll(zeros, nil)
	s2Body := s2.Encode(nil, make([]byte, 8))

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"one byte", []byte{1}, ErrCorrupt},
		{"version 0", []byte{0, 0, 0, 0}, ErrVersion},
		{"version 2", []byte{2, 0, 0, 0}, ErrVersion},
		{"unassigned flag bit", []byte{1, 0x20, 0, 0}, ErrFlags},
		{"codec 2", []byte{1, 2 << 1, 0, 0}, ErrFlags},
		{"codec 3", []byte{1, 3 << 1, 0, 0}, ErrFlags},
		{"compression 3", []byte{1, 3 << 3, 0, 0}, ErrFlags},
		{"no n", []byte{1, 0}, ErrCorrupt},
		{"truncated n", []byte{1, 0, 0x80}, ErrCorrupt},
		{"no dim", []byte{1, 0, 0}, ErrCorrupt},
		{"varint overflow", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0x01}, ErrCorrupt},
		{"n over MaxRows", []byte{1, 1, 0xe9, 0x07, 0}, ErrLimit},      // n = 1001
		{"dim over MaxDim", []byte{1, 0, 1, 65}, ErrLimit},             // dim = 65
		{"body over MaxBytes", []byte{1, 0, 0xe8, 0x07, 64}, ErrLimit}, // 1000*64*4 > 65536
		{"rows without ids or values", []byte{1, 0, 5, 0}, ErrCorrupt},
		{"truncated body", valid[:len(valid)-1], ErrCorrupt},
		{"trailing byte", append(slices.Clone(valid), 0), ErrCorrupt},
		// Ids 1 then gap 0 -> 2, then 8 value bytes: make the second id a 3-byte gap and drop
		// a value byte, so the body's length is plausible but the values come up short.
		{"ids eat values", append([]byte{1, 1, 2, 1, 1, 0x80, 0x80, 0x01}, valid[7:]...),
			ErrCorrupt},
		// Id 2^32-1 then a gap of 0 makes 2^32.
		{"id beyond uint32", []byte{1, 1, 2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, ErrCorrupt},
		{"gap beyond uint32", []byte{1, 1, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x10}, ErrCorrupt},
		// s2 with n=2, dim=1 float32 no ids: body length 8 announced, block of 8 zeros.
		{"s2 length disagrees", append([]byte{1, 1 << 3, 2, 1, 9}, s2Body...), ErrCorrupt},
		{"s2 garbage", []byte{1, 1 << 3, 2, 1, 8, 8, 0xff, 0xff}, ErrCorrupt},
		{"s2 no length", []byte{1, 1 << 3, 2, 1}, ErrCorrupt},
		{"compressed length over MaxBytes", []byte{1, 2 << 3, 2, 1, 0x81, 0x80, 0x04}, ErrLimit},
		// A zstd frame of 1 MiB of zeros behind a header that announces 8 bytes.
		{"zstd bomb", append([]byte{1, 2 << 3, 2, 1, 8}, bomb...), ErrCorrupt},
		{"zstd garbage", []byte{1, 2 << 3, 2, 1, 8, 1, 2, 3, 4}, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var blk Block
			err := Decode(tc.in, testLimits, &blk)
			if !errors.Is(err, tc.want) {
				t.Errorf("Decode(% x) error = %v, want %v", tc.in[:min(len(tc.in), 16)], err,
					tc.want)
			}
		})
	}
}

func TestDecodeRefusesBadLimits(t *testing.T) {
	var blk Block
	err := Decode([]byte{1, 0, 0, 0}, Limits{MaxRows: 1}, &blk)
	if err == nil {
		t.Fatal("Decode accepted limits with MaxDim and MaxBytes zero")
	}
	if got := Limits.Validate(Limits{}); got == nil {
		t.Error("Validate accepted zero limits")
	}
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits invalid: %v", err)
	}
}

// TestDecodeAllocatesNothingBeforeChecks announces the largest body the default limits allow
// (2^20 rows of dim 64 in float32 = 256 MiB) in a 7-byte payload: Decode must refuse it as
// truncated without allocating anything of that size first.
func TestDecodeAllocatesNothingBeforeChecks(t *testing.T) {
	in := []byte{1, 0, 0x80, 0x80, 0x40, 64, 0} // n = 2^20, dim 64, a body of 1 byte
	var blk Block
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := Decode(in, DefaultLimits(), &blk)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode(% x) error = %v, want ErrCorrupt", in, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("Decode(% x) allocated %d bytes before failing", in, grew)
	}
}

func TestOptionNames(t *testing.T) {
	got := []string{ValuesFloat32.String(), ValuesFloat16.String(), ValueCodec(9).String(),
		CompressNone.String(), CompressS2.String(), CompressZstd.String(), Compression(9).String()}
	want := []string{"float32", "float16", "ValueCodec(9)", "none", "s2", "zstd", "Compression(9)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
