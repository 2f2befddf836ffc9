package payload

import "math"

// Binary16 layout: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
const (
	halfExpBias  = 15
	halfMantBits = 10
	halfInf      = 0x7c00
	// halfMax is 65504, the largest finite binary16 value.
	halfMax = 0x7bff
)

// toHalf rounds f to the nearest binary16 value, ties to even. ok is false when f is NaN or
// infinite, or when its magnitude rounds beyond 65504 (it would become an infinity).
func toHalf(f float32) (h uint16, ok bool) {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23) & 0xff
	mant := bits & 0x7fffff

	switch {
	case exp == 0xff:
		return 0, false
	case exp == 0:
		// Zero or a float32 subnormal (below 2^-126): far under half the smallest half
		// subnormal (2^-24), so it rounds to a signed zero.
		return sign, true
	}

	// e is the binary16 biased exponent of f.
	e := exp - 127 + halfExpBias
	if e >= 0x1f {
		return 0, false
	}
	if e <= 0 {
		return sign | subnormalHalf(exp, mant), true
	}

	// Normal: keep the top 10 of 23 mantissa bits and round on the 13 dropped. A carry out
	// of the mantissa lands in the exponent, which is the correct result (up to infinity).
	v := roundShift(uint32(e)<<23|mant, 13)
	if v > halfMax {
		return 0, false
	}
	return sign | uint16(v), true
}

// subnormalHalf returns the binary16 subnormal (mantissa m, value m * 2^-24) nearest to the
// normal float32 with biased exponent exp <= 112 and mantissa mant. Rounding up from 1023 gives
// 1024, the bit pattern of the smallest normal half, as it should.
func subnormalHalf(exp int, mant uint32) uint16 {
	// The float32 is full * 2^(exp-150) with full the 24-bit significand, so
	// m = full * 2^(exp-126) = full >> (126-exp).
	full := mant | 0x800000
	shift := uint(126 - exp)
	if shift > 24 {
		// Below 2^-25 (half the smallest subnormal): rounds to zero.
		return 0
	}
	return uint16(roundShift(full, shift))
}

// roundShift returns x >> shift (1 <= shift <= 24, x < 2^31) rounded to nearest, ties to
// even, without branches: adding just under half the dropped unit, plus one when the kept
// part is odd, carries into the kept part exactly when rounding goes up.
func roundShift(x uint32, shift uint) uint32 {
	odd := x >> shift & 1
	return (x + (1<<(shift-1) - 1) + odd) >> shift
}

// fromHalf returns the float32 of exactly the value of binary16 h. Infinities stay infinite,
// and NaNs stay NaN with their payload.
func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>halfMantBits) & 0x1f
	mant := uint32(h) & 0x3ff

	switch exp {
	case 0:
		// Zero or subnormal: mant * 2^-24, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-halfExpBias)<<23 | mant<<13)
}
