package nab

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	// ErrBadWindow is returned by NewFile and LoadCorpus when a label window
	// does not map onto the data: a limit that is not the timestamp of any
	// row (NAB requires an exact match), an end before its start, or windows
	// that are out of order or overlap.
	ErrBadWindow = errors.New("nab: label window does not match the data")
	// ErrBadCSV is returned by LoadCorpus and ReadResults for a CSV file
	// that lacks a required column or holds an unparsable field.
	ErrBadCSV = errors.New("nab: malformed csv")
)

// TimeLayout is the layout of timestamps in NAB data and results files.
// They carry no zone and are read as UTC.
const TimeLayout = "2006-01-02 15:04:05"

// windowLayout parses window limits in combined_windows.json, which carry
// microseconds ("2014-04-10 07:15:00.000000"); the fraction is optional.
const windowLayout = "2006-01-02 15:04:05.999999999"

// Probation rules of nab/util.py getProbationPeriod.
const (
	probationPercent = 0.15
	probationCap     = probationPercent * 5000 // 750 rows
)

// Window is a labelled anomaly window as an inclusive range of row
// indices, Start ≤ End.
type Window struct {
	Start, End int
}

// Width is the number of rows in w.
func (w Window) Width() int { return w.End - w.Start + 1 }

// File is one data file of the corpus with its label windows.
type File struct {
	// Key is the path relative to the corpus root, "category/file.csv",
	// which is also the file's key in combined_windows.json.
	Key        string
	Timestamps []time.Time
	Values     []float64
	// Windows are the label windows in row order, non-overlapping.
	Windows []Window
	// Probation is the number of leading rows whose detections NAB
	// ignores: ProbationRows(len(Timestamps)).
	Probation int

	mu            sync.Mutex
	rows          []scorableRow // see scorable
	rowsProbation int
}

// Len is the number of rows in f.
func (f *File) Len() int { return len(f.Timestamps) }

// ProbationRows returns NAB's probationary period for a file of n rows,
// min(⌊0.15·n⌋, 750), computed in floating point as nab/util.py does.
func ProbationRows(n int) int {
	return int(min(math.Floor(probationPercent*float64(n)), probationCap))
}

// NewFile builds a File, mapping each window's [start, end] timestamps to
// the rows that carry them exactly (the first such row, as NAB's
// timestamps.index does) and computing the probationary period. values may
// be nil. It returns an error wrapping ErrBadWindow if a limit is not a
// row's timestamp or the windows are not ordered and disjoint.
func NewFile(key string, timestamps []time.Time, values []float64, windows [][2]time.Time) (*File, error) {
	if values != nil && len(values) != len(timestamps) {
		return nil, fmt.Errorf("new file %s: %d values for %d timestamps", key, len(values), len(timestamps))
	}
	f := &File{
		Key:        key,
		Timestamps: timestamps,
		Values:     values,
		Probation:  ProbationRows(len(timestamps)),
	}
	row := func(t time.Time) int {
		return slices.IndexFunc(timestamps, func(u time.Time) bool { return u.Equal(t) })
	}
	for k, lim := range windows {
		w := Window{Start: row(lim[0]), End: row(lim[1])}
		switch {
		case w.Start < 0:
			return nil, fmt.Errorf("new file %s: window %d: start %s: %w", key, k, lim[0].Format(TimeLayout), ErrBadWindow)
		case w.End < 0:
			return nil, fmt.Errorf("new file %s: window %d: end %s: %w", key, k, lim[1].Format(TimeLayout), ErrBadWindow)
		case w.End < w.Start:
			return nil, fmt.Errorf("new file %s: window %d ends before it starts: %w", key, k, ErrBadWindow)
		case k > 0 && w.Start <= f.Windows[k-1].End:
			return nil, fmt.Errorf("new file %s: window %d overlaps or precedes window %d: %w", key, k, k-1, ErrBadWindow)
		}
		f.Windows = append(f.Windows, w)
	}
	return f, nil
}

// Profile is a NAB application profile: the weights of its cost matrix.
// TNWeight is carried for completeness; NAB's scoring never uses it.
type Profile struct {
	Name     string
	TPWeight float64 // A_TP, the reward for the earliest detection in a window
	FPWeight float64 // A_FP, the cost of a detection outside every window
	FNWeight float64 // A_FN, the cost of a window without a detection
	TNWeight float64 // A_TN
}

// Names of NAB's three standard profiles.
const (
	Standard        = "standard"
	RewardLowFPRate = "reward_low_FP_rate"
	RewardLowFNRate = "reward_low_FN_rate"
)

// StandardProfiles returns NAB's three profiles as its config/profiles.json
// defines them: standard, reward_low_FP_rate, reward_low_FN_rate.
func StandardProfiles() []Profile {
	return []Profile{
		{Name: Standard, TPWeight: 1, FPWeight: 0.11, FNWeight: 1, TNWeight: 1},
		{Name: RewardLowFPRate, TPWeight: 1, FPWeight: 0.22, FNWeight: 1, TNWeight: 1},
		{Name: RewardLowFNRate, TPWeight: 1, FPWeight: 0.11, FNWeight: 2, TNWeight: 1},
	}
}

// Corpus is the NAB data set: every labelled data file, and the profiles.
type Corpus struct {
	// Files are sorted by Key.
	Files []*File
	// Profiles are those of labels/profiles.json: the three standard
	// profiles first in NAB's order, then any others by name.
	Profiles []Profile
	// NumWindows is the number of windows in combined_windows.json, the
	// count NAB's runner multiplies by A_TP for the perfect score.
	NumWindows int
}

// File returns the file with the given key, or nil.
func (c *Corpus) File(key string) *File {
	i := slices.IndexFunc(c.Files, func(f *File) bool { return f.Key == key })
	if i < 0 {
		return nil
	}
	return c.Files[i]
}

// Profile returns the profile with the given name.
func (c *Corpus) Profile(name string) (Profile, bool) {
	i := slices.IndexFunc(c.Profiles, func(p Profile) bool { return p.Name == name })
	if i < 0 {
		return Profile{}, false
	}
	return c.Profiles[i], true
}

// Rows is the total number of rows in the corpus.
func (c *Corpus) Rows() int {
	n := 0
	for _, f := range c.Files {
		n += f.Len()
	}
	return n
}

// LoadCorpus reads a NAB corpus rooted at dir: labels/combined_windows.json,
// labels/profiles.json, and each data file the windows file names
// (dir/category/file.csv, columns timestamp and value). Like NAB's runner,
// it loads only the files that have an entry in the windows file. Reading
// the full corpus takes about 70 ms of CPU.
func LoadCorpus(dir string) (*Corpus, error) {
	var windows map[string][][2]string
	if err := readJSON(filepath.Join(dir, "labels", "combined_windows.json"), &windows); err != nil {
		return nil, fmt.Errorf("load corpus: %w", err)
	}
	profiles, err := readProfiles(filepath.Join(dir, "labels", "profiles.json"))
	if err != nil {
		return nil, fmt.Errorf("load corpus: %w", err)
	}
	c := &Corpus{Profiles: profiles}
	for _, key := range slices.Sorted(maps.Keys(windows)) {
		lims := make([][2]time.Time, len(windows[key]))
		for k, w := range windows[key] {
			for j := range 2 {
				t, err := time.Parse(windowLayout, w[j])
				if err != nil {
					return nil, fmt.Errorf("load corpus: windows of %s: %w", key, err)
				}
				lims[k][j] = t
			}
		}
		c.NumWindows += len(lims)
		ts, vs, err := readDataCSV(filepath.Join(dir, filepath.FromSlash(key)))
		if err != nil {
			return nil, fmt.Errorf("load corpus: %w", err)
		}
		f, err := NewFile(key, ts, vs, lims)
		if err != nil {
			return nil, fmt.Errorf("load corpus: %w", err)
		}
		c.Files = append(c.Files, f)
	}
	return c, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func readProfiles(path string) ([]Profile, error) {
	var raw map[string]struct {
		CostMatrix struct {
			TP *float64 `json:"tpWeight"`
			FP *float64 `json:"fpWeight"`
			FN *float64 `json:"fnWeight"`
			TN *float64 `json:"tnWeight"`
		}
	}
	if err := readJSON(path, &raw); err != nil {
		return nil, err
	}
	order := map[string]int{Standard: 0, RewardLowFPRate: 1, RewardLowFNRate: 2}
	names := slices.SortedFunc(maps.Keys(raw), func(a, b string) int {
		oa, okA := order[a]
		ob, okB := order[b]
		switch {
		case okA && okB:
			return oa - ob
		case okA:
			return -1
		case okB:
			return 1
		}
		return strings.Compare(a, b)
	})
	var ps []Profile
	for _, name := range names {
		m := raw[name].CostMatrix
		if m.TP == nil || m.FP == nil || m.FN == nil {
			return nil, fmt.Errorf("decode %s: profile %s: CostMatrix needs tpWeight, fpWeight and fnWeight", path, name)
		}
		p := Profile{Name: name, TPWeight: *m.TP, FPWeight: *m.FP, FNWeight: *m.FN}
		if m.TN != nil {
			p.TNWeight = *m.TN
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// readCSV opens a CSV file with a header and calls row for each record
// with the indices of the wanted columns, in the order asked for.
func readCSV(path string, cols []string, row func(line int, rec []string, idx []int) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("read %s: header: %w", path, err)
	}
	idx := make([]int, len(cols))
	for k, c := range cols {
		idx[k] = slices.Index(header, c)
		if idx[k] < 0 {
			return fmt.Errorf("read %s: no %q column: %w", path, c, ErrBadCSV)
		}
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if err := row(line, rec, idx); err != nil {
			return fmt.Errorf("read %s: line %d: %w", path, line, err)
		}
	}
}

// parseTime parses a timestamp in TimeLayout. NAB's files hold nothing
// else, so that exact form is read digit by digit first, several times
// faster than time.Parse, which was a third of loading the corpus;
// anything the fast path does not take goes to time.Parse, which accepts
// or rejects it with its own error.
func parseTime(s string) (time.Time, error) {
	if t, ok := parseTimeFast(s); ok {
		return t, nil
	}
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrBadCSV, err)
	}
	return t, nil
}

// AppendTime appends t in UTC as TimeLayout formats it, as
// t.UTC().AppendFormat(b, TimeLayout) does for years 0 to 9999, a few
// times faster: results files write one timestamp per row.
func AppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	two := func(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
	b = two(two(b, year/100), year%100)
	b = two(append(b, '-'), int(month))
	b = two(append(b, '-'), day)
	b = two(append(b, ' '), hour)
	b = two(append(b, ':'), minute)
	return two(append(b, ':'), sec)
}

// parseTimeFast reads "YYYY-MM-DD hh:mm:ss" in UTC, reporting false for
// any other text and for a field out of range, including a day the month
// does not have.
func parseTimeFast(s string) (time.Time, bool) {
	if len(s) != len(TimeLayout) || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	ok := true
	num := func(i, j int) int {
		n := 0
		for _, c := range []byte(s[i:j]) {
			if c < '0' || c > '9' {
				ok = false
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	if !ok || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false // time.Date carried an impossible day into the next month
	}
	return t, true
}

func parseFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadCSV, err)
	}
	return v, nil
}

func readDataCSV(path string) ([]time.Time, []float64, error) {
	var ts []time.Time
	var vs []float64
	err := readCSV(path, []string{"timestamp", "value"}, func(_ int, rec []string, idx []int) error {
		t, err := parseTime(rec[idx[0]])
		if err != nil {
			return err
		}
		v, err := parseFloat(rec[idx[1]])
		if err != nil {
			return err
		}
		ts = append(ts, t)
		vs = append(vs, v)
		return nil
	})
	return ts, vs, err
}
