package payload

import (
	"errors"
	"fmt"
)

// Version is the layout version this package writes. It reads every version up to it.
const Version = 1

// ValueCodec selects how row values are written.
type ValueCodec uint32

// Value codecs. The numbers are the wire codes (flags bits 1-2 and the proto's value_codec).
const (
	// ValuesFloat32 writes each value as little-endian IEEE 754 binary32, exactly.
	ValuesFloat32 ValueCodec = 0
	// ValuesFloat16 rounds each value to IEEE 754 binary16, ties to even.
	ValuesFloat16 ValueCodec = 1
)

// String names the codec ("float32", "float16").
func (c ValueCodec) String() string {
	switch c {
	case ValuesFloat32:
		return "float32"
	case ValuesFloat16:
		return "float16"
	}
	return fmt.Sprintf("ValueCodec(%d)", uint32(c))
}

// Valid reports whether c is a codec this build knows.
func (c ValueCodec) Valid() bool { return c == ValuesFloat32 || c == ValuesFloat16 }

// size is the number of bytes one value takes.
func (c ValueCodec) size() int {
	if c == ValuesFloat16 {
		return 2
	}
	return 4
}

// Compression selects how the body of a payload is compressed.
type Compression uint32

// Compressions. The numbers are the wire codes (flags bits 3-4 and the proto's compression).
const (
	// CompressNone writes the body as it is.
	CompressNone Compression = 0
	// CompressS2 writes the body as one S2 block: fast, modest ratio.
	CompressS2 Compression = 1
	// CompressZstd writes the body as zstd frames: slower, better ratio.
	CompressZstd Compression = 2
)

// String names the compression ("none", "s2", "zstd").
func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressS2:
		return "s2"
	case CompressZstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", uint32(c))
}

// Valid reports whether c is a compression this build knows.
func (c Compression) Valid() bool { return c <= CompressZstd }

// Options choose how Encode writes values and whether it compresses the body.
type Options struct {
	Values   ValueCodec
	Compress Compression
}

// Validate reports an unknown codec or compression.
func (o Options) Validate() error {
	var errs []error
	if !o.Values.Valid() {
		errs = append(errs, fmt.Errorf("%w: value codec %d is unknown (0 float32, 1 float16)",
			ErrOptions, uint32(o.Values)))
	}
	if !o.Compress.Valid() {
		errs = append(errs, fmt.Errorf("%w: compression %d is unknown (0 none, 1 s2, 2 zstd)",
			ErrOptions, uint32(o.Compress)))
	}
	return errors.Join(errs...)
}

// Block is one decoded payload. IDs are strictly ascending, or nil when the payload carries no
// ids. Values has N*Dim entries, row-major; N == len(IDs) when IDs is not nil.
type Block struct {
	IDs    []uint32
	N      int
	Dim    int
	Values []float32
}

// Row returns the values of row i of the block (aliasing b.Values).
func (b *Block) Row(i int) []float32 { return b.Values[i*b.Dim : (i+1)*b.Dim] }

// Limits bound what Decode accepts, so that a hostile or broken payload cannot make it allocate
// more than the caller allows. Every field must be positive.
type Limits struct {
	// MaxRows is the most rows (n) a payload may announce.
	MaxRows int
	// MaxDim is the most values per row a payload may announce.
	MaxDim int
	// MaxBytes is the most bytes the body may take, decompressed.
	MaxBytes int
}

// DefaultLimits returns the limits nodes use unless configured otherwise: 1<<20 rows, 4096
// values a row, 256 MiB a body.
func DefaultLimits() Limits {
	return Limits{MaxRows: 1 << 20, MaxDim: 4096, MaxBytes: 256 << 20}
}

// Validate reports every limit that is not positive.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxRows <= 0 {
		errs = append(errs, fmt.Errorf("limits: MaxRows is %d, must be positive", l.MaxRows))
	}
	if l.MaxDim <= 0 {
		errs = append(errs, fmt.Errorf("limits: MaxDim is %d, must be positive", l.MaxDim))
	}
	if l.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("limits: MaxBytes is %d, must be positive", l.MaxBytes))
	}
	return errors.Join(errs...)
}

// Errors that Encode and Decode wrap; test for them with errors.Is.
var (
	// ErrVersion: the payload's version byte is one this build does not read.
	ErrVersion = errors.New("payload: unknown version")
	// ErrFlags: the flags byte sets a bit or code this build does not know.
	ErrFlags = errors.New("payload: unknown flags")
	// ErrCorrupt: the payload is truncated, inconsistent or badly compressed.
	ErrCorrupt = errors.New("payload: corrupt")
	// ErrLimit: the payload announces more rows, dims or bytes than Limits allow.
	ErrLimit = errors.New("payload: over limit")
	// ErrRange: a value cannot be written in the chosen codec (NaN, Inf or beyond float16).
	ErrRange = errors.New("payload: value out of range")
	// ErrArgs: Encode was called with inconsistent ids, dim and values.
	ErrArgs = errors.New("payload: bad arguments")
	// ErrOptions: Options name an unknown codec or compression.
	ErrOptions = errors.New("payload: bad options")
)

// Flags byte layout.
const (
	flagHasIDs      = 1 << 0
	codecShift      = 1
	codecMask       = 3 << codecShift
	compressShift   = 3
	compressMask    = 3 << compressShift
	flagsUnassigned = 0xe0
)
