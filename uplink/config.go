package uplink

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// Config configures the connection to the broker.
type Config struct {
	// URL is the broker, tcp://host:port or ssl://host:port. Empty runs the
	// embedded broker on Embedded.Listen and connects to it.
	URL string `yaml:"url"`
	// ClientID defaults to the device id.
	ClientID string `yaml:"client_id"`
	// Username and the password, read from PasswordFile or the environment
	// variable PasswordEnv (never from the config itself, never logged).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// CAFile verifies the broker's certificate for ssl:// URLs; CertFile and
	// KeyFile give a client certificate for mutual TLS.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CleanSession asks the broker to forget the session at each connect.
	// Default true: the outbox, not the broker, keeps what is unsent, and
	// the retained config is delivered again at every connect anyway.
	CleanSession *bool `yaml:"clean_session"`
	// Keepalive is the MQTT keepalive interval. Default 30s.
	Keepalive time.Duration `yaml:"keepalive"`
	// ConnectTimeout bounds one connection attempt. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// InFlight caps unacknowledged QoS 1 publishes. Default 64.
	InFlight int `yaml:"in_flight"`
	// BackoffMin and BackoffMax bound the wait between connection attempts.
	// Defaults 500ms and 1m.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Embedded configures the broker run when URL is empty.
	Embedded EmbeddedConfig `yaml:"embedded"`
}

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Listen is the TCP address; default 127.0.0.1:1883. Port 0 picks a free
	// port.
	Listen string `yaml:"listen"`
}

// Normalize fills defaults.
func (c *Config) Normalize() {
	if c.Keepalive == 0 {
		c.Keepalive = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.InFlight == 0 {
		c.InFlight = 64
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = time.Minute
	}
	if c.Embedded.Listen == "" {
		c.Embedded.Listen = "127.0.0.1:1883"
	}
}

// Validate checks the config; errors name the field relative to the broker
// section. It reads no files: that happens when the uplink connects.
func (c *Config) Validate() error {
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil {
			return fmt.Errorf("url: %v", err)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts":
		default:
			return fmt.Errorf("url: scheme %q not supported (use tcp:// or ssl://)", u.Scheme)
		}
		if u.Host == "" {
			return fmt.Errorf("url: missing host in %q", c.URL)
		}
	} else if _, _, err := net.SplitHostPort(c.Embedded.Listen); err != nil {
		return fmt.Errorf("embedded.listen: %v", err)
	}
	if c.PasswordFile != "" && c.PasswordEnv != "" {
		return fmt.Errorf("password_file: set either password_file or password_env, not both")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("cert_file: cert_file and key_file go together")
	}
	if c.Keepalive < time.Second {
		return fmt.Errorf("keepalive: must be >= 1s, got %s", c.Keepalive)
	}
	if c.ConnectTimeout <= 0 {
		return fmt.Errorf("connect_timeout: must be > 0, got %s", c.ConnectTimeout)
	}
	if c.InFlight < 1 || c.InFlight > 1000 {
		return fmt.Errorf("in_flight: must be in [1,1000], got %d", c.InFlight)
	}
	if c.BackoffMin <= 0 {
		return fmt.Errorf("backoff_min: must be > 0, got %s", c.BackoffMin)
	}
	if c.BackoffMax < c.BackoffMin {
		return fmt.Errorf("backoff_max: must be >= backoff_min (%s), got %s", c.BackoffMin, c.BackoffMax)
	}
	return nil
}

func (c *Config) cleanSession() bool { return c.CleanSession == nil || *c.CleanSession }

func (c *Config) password() (string, error) {
	switch {
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("read password_file: %w", err)
		}
		return string(trimNewline(b)), nil
	case c.PasswordEnv != "":
		p, ok := os.LookupEnv(c.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("password_env: variable %s is not set", c.PasswordEnv)
		}
		return p, nil
	}
	return "", nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
