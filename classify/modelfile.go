package classify

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/skipgrid/skipgrid/corpus"
	"github.com/skipgrid/skipgrid/vectors"
)

// Names of the files of a model directory.
const (
	MetaFile       = "model.json"
	VectorsFile    = "vectors.bin"
	ClassifierFile = "classifier.bin"
	VocabFile      = "vocab.txt"
)

// MetaFormat and MetaVersion identify model.json.
const (
	MetaFormat  = "skipgrid-classifier"
	MetaVersion = 1
)

// Limits of a model that a decoder accepts before it allocates.
const (
	maxLabels = 1 << 20
	maxDim    = 1 << 16
)

// Meta is the content of model.json.
type Meta struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Dim is the length of every row.
	Dim int `json:"dim"`
	// Labels names the classifier rows: row k is Labels[k].
	Labels []string `json:"labels"`
	// BigramBuckets is the number of bigram rows (0: no bigrams).
	BigramBuckets int `json:"bigram_buckets"`
	// Tokenizer is "words" or "whitespace"; MaxSentence the corpus reader's sentence cap.
	Tokenizer   string `json:"tokenizer"`
	MaxSentence int    `json:"max_sentence"`
	// VocabSize is the number of word rows (vectors.bin); TrainedWords the first of them that
	// occur in the training file.
	VocabSize    int `json:"vocab_size"`
	TrainedWords int `json:"trained_words"`
	// Files names the other files, relative to the directory.
	Files MetaFiles `json:"files"`
	// Training is a free-form record of how the model was trained.
	Training json.RawMessage `json:"training,omitempty"`
}

// MetaFiles names the files of a model directory.
type MetaFiles struct {
	Vectors    string `json:"vectors"`
	Classifier string `json:"classifier"`
	Vocab      string `json:"vocab,omitempty"`
}

// Model is a trained classifier.
type Model struct {
	Meta Meta
	// Vectors holds the word rows (Meta.VocabSize of Meta.Dim values).
	Vectors *vectors.Vectors
	// Counts are the words' training counts (0 for words only the pretrained vectors had);
	// nil when unknown. Save writes them to vocab.txt.
	Counts []uint64
	// Classifier holds the label rows, label k at [k*Dim:(k+1)*Dim].
	Classifier []float32
	// Bigrams holds the bucket rows, bucket b at [b*Dim:(b+1)*Dim].
	Bigrams []float32
	// EOS is the end-of-line row (Dim values) that every line with a token adds to its
	// features (see Features); nil for a model trained without it, whose lines get none.
	EOS []float32
}

// TokenizerOf returns the corpus tokenizer the model was trained with.
func (m *Model) TokenizerOf() (corpus.Tokenizer, error) {
	t, err := corpus.ParseTokenizer(m.Meta.Tokenizer)
	if err != nil {
		return 0, fmt.Errorf("%s: tokenizer: %w", MetaFile, err)
	}
	return t, nil
}

// check reports a model whose parts disagree.
func (m *Model) check() error {
	mt := m.Meta
	switch {
	case mt.Dim < 1 || mt.Dim > maxDim:
		return fmt.Errorf("%w: dim %d is not in [1, %d]", ErrFormat, mt.Dim, maxDim)
	case len(mt.Labels) < 1 || len(mt.Labels) > maxLabels:
		return fmt.Errorf("%w: %d labels, want 1..%d", ErrFormat, len(mt.Labels), maxLabels)
	case mt.BigramBuckets < 0 || int64(mt.VocabSize)+int64(mt.BigramBuckets) > MaxRows:
		return fmt.Errorf("%w: %d bigram buckets after %d words exceed %d rows", ErrFormat,
			mt.BigramBuckets, mt.VocabSize, MaxRows)
	case m.Vectors == nil:
		return fmt.Errorf("%w: no word vectors", ErrFormat)
	case m.Vectors.Dim != mt.Dim || m.Vectors.Len() != mt.VocabSize:
		return fmt.Errorf("%w: the word vectors hold %d rows of dim %d, want %d words of "+
			"dim %d", ErrFormat, m.Vectors.Len(), m.Vectors.Dim, mt.VocabSize, mt.Dim)
	case len(m.Classifier) != len(mt.Labels)*mt.Dim:
		return fmt.Errorf("%w: %d classifier values, want %d labels x dim %d", ErrFormat,
			len(m.Classifier), len(mt.Labels), mt.Dim)
	case len(m.Bigrams) != mt.BigramBuckets*mt.Dim:
		return fmt.Errorf("%w: %d bigram values, want %d buckets x dim %d", ErrFormat,
			len(m.Bigrams), mt.BigramBuckets, mt.Dim)
	case m.EOS != nil && len(m.EOS) != mt.Dim:
		return fmt.Errorf("%w: the EOS row has %d values, want dim %d", ErrFormat,
			len(m.EOS), mt.Dim)
	case m.Counts != nil && len(m.Counts) != mt.VocabSize:
		return fmt.Errorf("%w: %d counts for %d words", ErrFormat, len(m.Counts), mt.VocabSize)
	}
	for i, l := range mt.Labels {
		if bad := checkLabel(l); bad != "" {
			return fmt.Errorf("%w: label %d: %s", ErrFormat, i, bad)
		}
	}
	return nil
}

// Save writes m to dir (created if needed): vectors.bin, vocab.txt when m.Counts is set,
// classifier.bin, then model.json. Each file is written atomically; model.json, written
// last, marks a complete directory. Save fills m.Meta's Format, Version and Files.
func Save(dir string, m *Model) error {
	m.Meta.Format, m.Meta.Version = MetaFormat, MetaVersion
	m.Meta.Files = MetaFiles{Vectors: VectorsFile, Classifier: ClassifierFile}
	if m.Counts != nil {
		m.Meta.Files.Vocab = VocabFile
	}
	if err := m.check(); err != nil {
		return fmt.Errorf("save model to %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}

	if err := vectors.WriteFile(filepath.Join(dir, VectorsFile), m.Vectors,
		vectors.FormatBinary); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if m.Counts != nil {
		if err := writeAtomic(filepath.Join(dir, VocabFile), m.writeVocab); err != nil {
			return fmt.Errorf("save model: %w", err)
		}
	}
	err := writeAtomic(filepath.Join(dir, ClassifierFile), func(w io.Writer) error {
		return WriteClassifier(w, len(m.Meta.Labels), m.Meta.Dim, m.Meta.BigramBuckets,
			m.Classifier, m.Bigrams, m.EOS)
	})
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	err = writeAtomic(filepath.Join(dir, MetaFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m.Meta)
	})
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

// writeVocab writes "word count" lines in row order.
func (m *Model) writeVocab(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var num []byte
	for i, word := range m.Vectors.Words {
		num = strconv.AppendUint(append(num[:0], ' '), m.Counts[i], 10)
		bw.WriteString(word)
		bw.Write(append(num, '\n'))
	}
	return bw.Flush()
}

// Load reads the model directory dir and checks that its files agree.
func Load(dir string) (*Model, error) {
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, fmt.Errorf("load model: %w; is %s a model directory (from skipgrid "+
			"finetune)?", err, dir)
	}
	m := &Model{}
	if err := json.Unmarshal(raw, &m.Meta); err != nil {
		return nil, fmt.Errorf("load model %s: %w: %v", MetaFile, ErrFormat, err)
	}
	if m.Meta.Format != MetaFormat || m.Meta.Version != MetaVersion {
		return nil, fmt.Errorf("load model %s: %w: format %q version %d, want %q version %d",
			MetaFile, ErrFormat, m.Meta.Format, m.Meta.Version, MetaFormat, MetaVersion)
	}
	files := m.Meta.Files
	if files.Vectors == "" || files.Classifier == "" {
		return nil, fmt.Errorf("load model %s: %w: files.vectors or files.classifier is "+
			"empty", MetaFile, ErrFormat)
	}

	vpath := filepath.Join(dir, files.Vectors)
	m.Vectors, err = vectors.ReadFile(vpath, vectors.ReadOptions{Format: vectors.FormatBinary})
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if v := m.Vectors; v.Len() != m.Meta.VocabSize || v.Dim != m.Meta.Dim {
		return nil, fmt.Errorf("load model: %w: %s holds %d vectors of dim %d, but %s gives "+
			"%d words of dim %d", ErrFormat, vpath, v.Len(), v.Dim, MetaFile,
			m.Meta.VocabSize, m.Meta.Dim)
	}
	cpath := filepath.Join(dir, files.Classifier)
	b, err := os.ReadFile(cpath)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	c, err := DecodeClassifier(b, cpath)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if c.Labels != len(m.Meta.Labels) || c.Dim != m.Meta.Dim || c.Buckets != m.Meta.BigramBuckets {
		return nil, fmt.Errorf("load model: %w: %s holds %d labels, dim %d, %d buckets; %s "+
			"says %d, %d, %d", ErrFormat, cpath, c.Labels, c.Dim, c.Buckets, MetaFile,
			len(m.Meta.Labels), m.Meta.Dim, m.Meta.BigramBuckets)
	}
	m.Classifier, m.Bigrams, m.EOS = c.Classifier, c.Bigrams, c.EOS
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	return m, nil
}

// classifierMagic starts classifier.bin.
var classifierMagic = []byte("SKGCLS1\n")

// classifierHeader is the size of the header: magic and four uint32.
const classifierHeader = 8 + 16

// flagEOS is the classifier.bin flag of a model with an EOS row.
const flagEOS = 1

// WriteClassifier writes the classifier, bigram and EOS rows in the classifier.bin layout,
// all integers and floats little-endian:
//
//	bytes 0..7    magic "SKGCLS1\n"
//	bytes 8..23   uint32 labels, uint32 dim, uint32 buckets, uint32 flags
//	then          labels*dim float32: classifier rows, label by label
//	then          buckets*dim float32: bigram rows, bucket by bucket
//	then          with flag 1 only, dim float32: the EOS row
//	last 4 bytes  uint32 CRC-32C (Castagnoli) of every byte before it
//
// flags is 1 with an EOS row (eos not nil) and 0 without; readers refuse any other bit.
// A file without an EOS row is byte for byte what the first models wrote.
func WriteClassifier(w io.Writer, labels, dim, buckets int, cls, bigrams,
	eos []float32) error {
	if len(cls) != labels*dim || len(bigrams) != buckets*dim ||
		(eos != nil && len(eos) != dim) {
		return fmt.Errorf("write classifier: %d, %d and %d values for %d labels, %d "+
			"buckets and the EOS row of dim %d", len(cls), len(bigrams), len(eos), labels,
			buckets, dim)
	}
	flags := 0
	if eos != nil {
		flags = flagEOS
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	bw.Write(classifierMagic)
	var u [4]byte
	for _, v := range []int{labels, dim, buckets, flags} {
		binary.LittleEndian.PutUint32(u[:], uint32(v))
		bw.Write(u[:])
	}
	for _, part := range [][]float32{cls, bigrams, eos} {
		for _, x := range part {
			binary.LittleEndian.PutUint32(u[:], math.Float32bits(x))
			bw.Write(u[:])
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write classifier: %w", err)
	}
	binary.LittleEndian.PutUint32(u[:], h.Sum32())
	if _, err := w.Write(u[:]); err != nil {
		return fmt.Errorf("write classifier: %w", err)
	}
	return nil
}

// ClassifierRows is the content of classifier.bin; EOS is nil when the file has no EOS row.
type ClassifierRows struct {
	Labels, Dim, Buckets     int
	Classifier, Bigrams, EOS []float32
}

// DecodeClassifier decodes b, the bytes of a classifier.bin named name. Every error names the
// byte offset and wraps ErrFormat.
func DecodeClassifier(b []byte, name string) (*ClassifierRows, error) {
	bad := func(off int, format string, args ...any) error {
		return fmt.Errorf("%s: byte offset %d: %w: %s", name, off, ErrFormat,
			fmt.Sprintf(format, args...))
	}
	if len(b) < classifierHeader+4 || !bytes.Equal(b[:8], classifierMagic) {
		return nil, bad(0, "not a classifier file (no %q header); write it with skipgrid "+
			"finetune", classifierMagic)
	}
	u := func(i int) uint64 { return uint64(binary.LittleEndian.Uint32(b[8+4*i:])) }
	labels, dim, buckets, flags := u(0), u(1), u(2), u(3)
	switch {
	case labels < 1 || labels > maxLabels:
		return nil, bad(8, "%d labels, want 1..%d", labels, maxLabels)
	case dim < 1 || dim > maxDim:
		return nil, bad(12, "dim %d, want 1..%d", dim, maxDim)
	case buckets >= MaxRows:
		return nil, bad(16, "%d buckets, want fewer than %d", buckets, MaxRows)
	case flags&^flagEOS != 0:
		return nil, bad(20, "flags are %#x, want 0 or 1 (an EOS row)", flags)
	}
	eosRows := flags & flagEOS
	want := uint64(classifierHeader) + 4*(labels+buckets+eosRows)*dim + 4
	if uint64(len(b)) != want {
		return nil, bad(len(b), "the file holds %d bytes; its header (%d labels, %d buckets, "+
			"%d EOS rows, dim %d) needs %d; the file is truncated or corrupt", len(b), labels,
			buckets, eosRows, dim, want)
	}
	body := b[:len(b)-4]
	sum := binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)); got != sum {
		return nil, bad(len(body), "checksum %08x, the content gives %08x; the file is "+
			"corrupt", sum, got)
	}

	vals := make([]float32, (labels+buckets+eosRows)*dim)
	for i := range vals {
		off := classifierHeader + 4*i
		vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
		if f := float64(vals[i]); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, bad(off, "value %d of row %d is %v", i%int(dim), i/int(dim), vals[i])
		}
	}
	split, end := int(labels*dim), int((labels+buckets)*dim)
	c := &ClassifierRows{Labels: int(labels), Dim: int(dim), Buckets: int(buckets),
		Classifier: vals[:split:split], Bigrams: vals[split:end:end]}
	if eosRows > 0 {
		c.EOS = vals[end:]
	}
	return c, nil
}

// writeAtomic writes path through a temporary file in the same directory, synced and renamed
// into place, so that path never holds half a file.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
