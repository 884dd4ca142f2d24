package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"
)

// Broker is an embedded MQTT broker (mochi-mqtt) listening on one TCP
// address. It accepts every client: bind it to loopback.
type Broker struct {
	srv *mqtt.Server
	ln  net.Listener
}

// StartBroker listens on addr and serves MQTT until Close. The broker's
// goroutines belong to it and stop in Close.
func StartBroker(addr string, log zerolog.Logger) (*Broker, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("start embedded broker: %s is already in use (another broker or agent?); "+
			"set broker.embedded.listen to a free address, or broker.url to use that broker: %w", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	log = log.With().Str("component", "broker").Logger()
	srv := mqtt.New(&mqtt.Options{
		InlineClient: false,
		Logger:       slog.New(zerologHandler{log: log}),
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("emberwatch", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	log.Info().Str("addr", ln.Addr().String()).Msg("embedded MQTT broker listening")
	return &Broker{srv: srv, ln: ln}, nil
}

// URL is the address clients connect to, e.g. tcp://127.0.0.1:1883.
func (b *Broker) URL() string { return "tcp://" + b.ln.Addr().String() }

// Close disconnects every client and stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }

// zerologHandler routes mochi's slog output into the agent's logger. mochi's
// info lines are connection chatter, so they go to debug.
type zerologHandler struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func (h zerologHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.GetLevel() <= level(l)
}

func (h zerologHandler) Handle(_ context.Context, r slog.Record) error {
	lvl := level(r.Level)
	r.Attrs(func(a slog.Attr) bool {
		// Connections cut by the broker's own shutdown are not news.
		if strings.Contains(a.Value.String(), net.ErrClosed.Error()) {
			lvl = zerolog.DebugLevel
		}
		return true
	})
	ev := h.log.WithLevel(lvl)
	for _, a := range h.attrs {
		ev = ev.Str(a.Key, a.Value.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		ev = ev.Str(a.Key, a.Value.String())
		return true
	})
	ev.Msg(r.Message)
	return nil
}

func (h zerologHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return zerologHandler{log: h.log, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h zerologHandler) WithGroup(string) slog.Handler { return h }

func level(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	}
	return zerolog.DebugLevel
}
