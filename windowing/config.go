package windowing

import (
	"fmt"
	"path"
	"time"
)

// Config is one window spec.
type Config struct {
	// Series is a series name or a path.Match pattern; "*" (the default)
	// matches every series.
	Series string `yaml:"series"`
	// Size is the window length in event time.
	Size time.Duration `yaml:"size"`
	// Hop is how far consecutive windows are apart; it defaults to Size
	// (tumbling windows) and must divide Size.
	Hop time.Duration `yaml:"hop"`
	// Lateness is how far out of order a reading may arrive and still be
	// counted. Default 0: readings must arrive in order.
	Lateness time.Duration `yaml:"lateness"`
}

// Normalize fills defaults.
func (c *Config) Normalize() {
	if c.Series == "" {
		c.Series = "*"
	}
	if c.Hop == 0 {
		c.Hop = c.Size
	}
}

// Validate checks the spec; errors name the field relative to the spec.
func (c *Config) Validate() error {
	if _, err := path.Match(c.Series, ""); err != nil {
		return fmt.Errorf("series: bad pattern %q: %v", c.Series, err)
	}
	if c.Size <= 0 {
		return fmt.Errorf("size: must be > 0, got %s", c.Size)
	}
	if c.Hop <= 0 {
		return fmt.Errorf("hop: must be > 0, got %s", c.Hop)
	}
	if c.Hop > c.Size {
		return fmt.Errorf("hop: must not exceed size (%s), got %s", c.Size, c.Hop)
	}
	if c.Size%c.Hop != 0 {
		return fmt.Errorf("hop: must divide size (%s) evenly, got %s", c.Size, c.Hop)
	}
	if c.Lateness < 0 {
		return fmt.Errorf("lateness: must be >= 0, got %s", c.Lateness)
	}
	return nil
}

func (c *Config) matches(series string) bool {
	ok, _ := path.Match(c.Series, series)
	return ok
}
