package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/sensors"
	"github.com/emberwatch/emberwatch/windowing"
)

// cmdReplay runs a recording through windowing as fast as it can be read
// and writes one JSON object per emitted window to DIR/features.jsonl. No
// broker, no outbox: the config's windows are used, its sources ignored.
func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config whose windows to use (default: the embedded demo config)")
	input := fs.String("input", "", "recording: CSV with a timestamp column and one column per series (required)")
	out := fs.String("out", "", "folder for features.jsonl (required)")
	strict := fs.Bool("strict", false, "stop at the first bad row instead of skipping it")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *input == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: agent replay [--config FILE] --input RECORDING.csv --out DIR [--strict]")
		return exitUsage
	}
	cfg, _, err := loadConfig(*path, 0, false)
	if err != nil {
		printConfigError(stderr, *path, err)
		return exitUsage
	}
	f, err := os.Open(*input)
	if err != nil {
		fmt.Fprintf(stderr, "agent replay: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "agent replay: %v\n", err)
		return exitFailure
	}
	dstPath := filepath.Join(*out, "features.jsonl")
	res, err := replay(ctx, cfg, f, dstPath, *strict, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "agent replay: %s: %v\n", *input, err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s: %d rows, %d readings, %d bad rows skipped, %d readings rejected (%d late, %d invalid, %d bad time, %d over max_points, %d unmatched); %d windows written to %s\n",
		*input, res.rows, res.readings, res.badRows, res.stats.Late+res.stats.Invalid+res.stats.BadTime+res.stats.Full+res.stats.NoWindow,
		res.stats.Late, res.stats.Invalid, res.stats.BadTime, res.stats.Full, res.stats.NoWindow, res.windows, dstPath)
	return exitOK
}

type replayResult struct {
	rows, readings, badRows, windows int
	stats                            windowing.Stats
}

// replay reads the CSV from r and writes the features to dstPath, through
// a temporary file renamed into place, so that a failed replay leaves no
// half-written output.
func replay(ctx context.Context, cfg *configs.Config, r io.Reader, dstPath string, strict bool, stderr io.Writer) (replayResult, error) {
	var res replayResult
	cr, err := sensors.NewCSVReader(r)
	if err != nil {
		return res, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dstPath), ".features-*.jsonl")
	if err != nil {
		return res, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	enc := newFeatureEncoder()
	w := windowing.New(cfg.Windows)
	d := windowing.NewDeriver(cfg.Derived)
	var (
		derived  []emberwatch.Reading
		readings []emberwatch.Reading
		feats    []emberwatch.Features
		line     []byte
	)
	write := func() error {
		for i := range feats {
			spec, _ := w.SpecFor(feats[i].Series)
			line = enc.append(line[:0], &feats[i], spec.Aggregates)
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
		res.windows += len(feats)
		return nil
	}
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		readings, err = cr.Next(readings[:0])
		if errors.Is(err, io.EOF) {
			break
		}
		var rowErr *sensors.RowError
		if err != nil && (strict || !errors.As(err, &rowErr)) {
			return res, err
		}
		if err != nil {
			res.badRows++
			if res.badRows <= 10 {
				fmt.Fprintf(stderr, "skipping bad row: %v\n", err)
			}
			continue
		}
		res.rows++
		for _, rd := range readings {
			res.readings++
			feats, err = w.Add(rd, feats[:0])
			if err != nil && strict {
				return res, fmt.Errorf("line %d: series %q: %w", cr.Line(), rd.Series, err)
			}
			if err == nil {
				derived = d.Add(rd, derived[:0])
				for _, dr := range derived {
					feats, _ = w.Add(dr, feats)
				}
			}
			if err := write(); err != nil {
				return res, err
			}
		}
	}
	feats = w.Flush(feats[:0])
	if err := write(); err != nil {
		return res, err
	}
	res.stats = w.Stats()
	if err := bw.Flush(); err != nil {
		return res, err
	}
	if err := tmp.Close(); err != nil {
		return res, err
	}
	return res, os.Rename(tmp.Name(), dstPath)
}

// featureEncoder writes Features as one JSON line with a fixed key order:
// series, window_start, window_end, update (only when true), then the
// spec's aggregates in the order the config lists them.
type featureEncoder struct {
	names map[string][]byte // series name → its JSON string
}

func newFeatureEncoder() *featureEncoder { return &featureEncoder{names: map[string][]byte{}} }

const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func (e *featureEncoder) append(b []byte, f *emberwatch.Features, aggregates []string) []byte {
	name, ok := e.names[f.Series]
	if !ok {
		name, _ = json.Marshal(f.Series)
		e.names[f.Series] = name
	}
	b = append(b, `{"series":`...)
	b = append(b, name...)
	b = append(b, `,"window_start":"`...)
	b = f.Start.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","window_end":"`...)
	b = f.End.UTC().AppendFormat(b, timeLayout)
	b = append(b, '"')
	if f.Update {
		b = append(b, `,"update":true`...)
	}
	for _, a := range aggregates {
		v, ok := f.Value(a)
		if !ok {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, a...)
		b = append(b, '"', ':')
		b = appendNumber(b, v)
	}
	return append(b, '}', '\n')
}

// appendNumber writes v as a JSON number; the windower never emits NaN or
// infinities, but null keeps the line valid if one slips through.
func appendNumber(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
