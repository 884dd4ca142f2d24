package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"
)

// Origins of a running config.
const (
	OriginFile = "file" // the file given with --config (or the embedded demo)
	OriginPush = "push" // pushed over MQTT
)

// LastGood is the config the agent last applied. It is kept in the data
// folder so that a restart runs a pushed config rather than the older file,
// and so that replay protection survives restarts.
type LastGood struct {
	Revision  uint64    `json:"revision"`
	Origin    string    `json:"origin"`
	Payload   string    `json:"payload"`
	Signature string    `json:"signature,omitempty"`
	AppliedAt time.Time `json:"applied_at"`
	// PushedSHA256 is the hex SHA-256 of the last pushed payload applied,
	// even when a reload of the file has replaced it since: the retained
	// push delivered again at the next connect is then known as handled.
	PushedSHA256 string `json:"pushed_sha256,omitempty"`
}

// PayloadHash returns the hex SHA-256 of a pushed payload.
func PayloadHash(payload string) string {
	sum := sha256.Sum256([]byte(payload))
	return hex.EncodeToString(sum[:])
}

// LastGoodPath is where the last good config lives in dataDir.
func LastGoodPath(dataDir string) string {
	return filepath.Join(dataDir, "last-good-config.json")
}

// ReadLastGood reads the last good config; ok is false if there is none.
func ReadLastGood(path string) (lg LastGood, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return lg, false, nil
	}
	if err != nil {
		return lg, false, err
	}
	if err := json.Unmarshal(b, &lg); err != nil {
		return LastGood{}, false, fmt.Errorf("%s: %w", path, err)
	}
	if lg.Origin != OriginFile && lg.Origin != OriginPush {
		return LastGood{}, false, fmt.Errorf("%s: unknown origin %q", path, lg.Origin)
	}
	return lg, true, nil
}

// WriteLastGood replaces the file at path atomically: a crash leaves
// either the old or the new file, never a mix.
func WriteLastGood(path string, lg LastGood) error {
	b, err := json.MarshalIndent(lg, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".last-good-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this finds nothing
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CheckLiveChange returns an error naming every section of next that a
// running agent cannot take over from c: those that say who the device is
// and how it reaches the broker and its disk. They change with a restart.
// A push (trusted false) also may not change remote_config, so that a
// pushed config cannot turn off the check of its own signature.
func (c *Config) CheckLiveChange(next *Config, trusted bool) error {
	var errs []error
	same := func(path string, a, b any, why string) {
		if !reflect.DeepEqual(a, b) {
			errs = append(errs, &FieldError{Path: path, Err: errors.New(why)})
		}
	}
	const restart = "differs from the running config; it takes a restart to change (edit the file on the device)"
	same("device", c.Device, next.Device, fmt.Sprintf("%q is not this device (%q)", next.Device, c.Device))
	same("topic_prefix", c.TopicPrefix, next.TopicPrefix, restart)
	same("data_dir", c.DataDir, next.DataDir, restart)
	same("log", c.Log, next.Log, restart)
	same("outbox", c.Outbox, next.Outbox, restart)
	same("broker", c.Broker, next.Broker, restart+"; a push cannot change how the device reaches the broker, or a mistake would cut it off")
	if !trusted {
		same("remote_config", c.Remote, next.Remote, "a push cannot change remote_config; edit the file on the device")
	}
	return errors.Join(errs...)
}
