package payload

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestToHalfHandValues(t *testing.T) {
	// Each want is worked out from the binary16 layout: sign<<15 | (e+15)<<10 | mantissa.
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3c00},               // 2^0: exponent 15 -> 0x3c00
		{"minus 2.5", -2.5, 0xc100},      // 1.25*2^1: exp 16 (0x4000), mant .25*1024=0x100
		{"max", 65504, 0x7bff},           // (2-2^-10)*2^15
		{"below max tie", 65519, 0x7bff}, // 65519 < 65520 (the midpoint to 2^16)
		{"zero", 0, 0x0000},              //
		{"minus zero", float32(math.Copysign(0, -1)), 0x8000},
		{"0.1", 0.1, 0x2e66},                 // 0.1*2^4=1.6 -> mant .6*1024=614.4 -> 614=0x266
		{"smallest normal", 0x1p-14, 0x0400}, // exp 1
		{"largest subnormal", 1023 * 0x1p-24, 0x03ff},
		{"smallest subnormal", 0x1p-24, 0x0001},
		{"half smallest subnormal ties to 0", 0x1p-25, 0x0000},        // tie, 0 is even
		{"three halves smallest subnormal", 3 * 0x1p-25, 0x0002},      // 1.5 ties to even 2
		{"just above half smallest", 0x1p-25 * (1 + 0x1p-23), 0x0001}, // above the tie
		{"float32 subnormal", 0x1p-140, 0x0000},
		{"tie down to even", 1 + 0x1p-11, 0x3c00},                // between 0x3c00 and 0x3c01
		{"tie up to even", 1 + 3*0x1p-11, 0x3c02},                // between 0x3c01 and 0x3c02
		{"above tie", 1 + 0x1p-11 + 0x1p-20, 0x3c01},             // just past the midpoint
		{"subnormal rounds to normal", 1023.5 * 0x1p-24, 0x0400}, // tie, 1023 odd -> 1024
		{"carry into exponent", 2 - 0x1p-12, 0x4000},             // 1.11111111111 rounds to 2
		{"minus max", -65504, 0xfbff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := toHalf(tc.in)
			if !ok || got != tc.want {
				t.Errorf("toHalf(%g) = %#04x, %v; want %#04x, true", tc.in, got, ok, tc.want)
			}
		})
	}
}

func TestToHalfRefuses(t *testing.T) {
	// 65520 is the midpoint between 65504 (odd mantissa 0x3ff) and 2^16, so it rounds up
	// to infinity; everything at or beyond it, and NaN and infinities, must be refused.
	for _, f := range []float32{
		65520, -65520, 70000, 1e10, math.MaxFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
	} {
		if h, ok := toHalf(f); ok {
			t.Errorf("toHalf(%g) = %#04x, true; want refusal", f, h)
		}
	}
}

func TestFromHalfHandValues(t *testing.T) {
	tests := []struct {
		in   uint16
		want float32
	}{
		{0x3c00, 1},
		{0xc100, -2.5},
		{0x7bff, 65504},
		{0x0001, 0x1p-24},
		{0x03ff, 1023 * 0x1p-24},
		{0x0400, 0x1p-14},
		{0x3555, 0x1.554p-2}, // 1 + 0x155/1024 times 2^(13-15)
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
	}
	for _, tc := range tests {
		if got := fromHalf(tc.in); got != tc.want {
			t.Errorf("fromHalf(%#04x) = %g, want %g", tc.in, got, tc.want)
		}
	}
	if got := fromHalf(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("fromHalf(0x8000) = %g, want -0", got)
	}
	if got := fromHalf(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("fromHalf(0x7e00) = %g, want NaN", got)
	}
}

// TestHalfRoundTripsEveryFinite checks all 63,490 finite binary16 values (both signs): the
// float32 of each must convert back to the same bits.
func TestHalfRoundTripsEveryFinite(t *testing.T) {
	for h := range 1 << 16 {
		if h&0x7c00 == 0x7c00 {
			continue // infinities and NaNs
		}
		f := fromHalf(uint16(h))
		got, ok := toHalf(f)
		if !ok || got != uint16(h) {
			t.Fatalf("toHalf(fromHalf(%#04x)=%g) = %#04x, %v", h, f, got, ok)
		}
	}
}

// nearestHalf is the reference rounding: it searches the sorted finite positive halves for the
// ones around |f| in float64 and picks the nearer, ties to the even bit pattern. 2^16 stands in
// for the infinity a too-large value rounds to (pattern 0x7c00, even).
func nearestHalf(f float32, table []float64) (uint16, bool) {
	x := math.Abs(float64(f))
	i := sort.SearchFloat64s(table, x) // table[i] >= x
	if i == len(table) {
		return 0, false // beyond 2^16
	}
	pick := uint16(i)
	if i > 0 && table[i] != x {
		lo, hi := x-table[i-1], table[i]-x
		if lo < hi || (lo == hi && (i-1)%2 == 0) {
			pick = uint16(i - 1)
		}
	}
	if pick >= 0x7c00 {
		return 0, false
	}
	if math.Signbit(float64(f)) {
		pick |= 0x8000
	}
	return pick, true
}

func TestToHalfMatchesReference(t *testing.T) {
	// Values of bit patterns 0..0x7c00 in order; the last entry is 2^16 for infinity.
	table := make([]float64, 0x7c01)
	for h := range 0x7c00 {
		table[h] = float64(fromHalf(uint16(h)))
	}
	table[0x7c00] = 65536

	rng := rand.New(rand.NewPCG(1, 2))
	for range 400_000 {
		// Exponents around the binary16 range (2^-27 .. 2^17), random mantissa and sign.
		exp := uint32(127-27) + rng.Uint32N(45)
		bits := rng.Uint32()&0x807fffff | exp<<23
		f := math.Float32frombits(bits)
		want, wantOK := nearestHalf(f, table)
		got, ok := toHalf(f)
		if got != want || ok != wantOK {
			t.Fatalf("toHalf(%g [%#08x]) = %#04x, %v; reference %#04x, %v",
				f, bits, got, ok, want, wantOK)
		}
	}
}
