package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/internal/brokertest"
)

// testAgent is an agent running in-process for a test.
type testAgent struct {
	t      *testing.T
	a      *agent
	url    string                 // its broker
	prefix string                 // its device's topics: "<prefix>/<device>/"
	sub    *brokertest.Subscriber // everything under its device's topics
	cancel context.CancelFunc
	done   chan error
}

// startAgent runs the agent on cfg (whose source is raw) until the test
// ends or stop is called. The subscriber is in place before any source
// starts. with, if given, adjusts the agent before it runs.
func startAgent(t *testing.T, cfg *configs.Config, raw []byte, with ...func(*agent)) *testAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &testAgent{t: t, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	p.prefix = strings.TrimSuffix(cfg.Topics().Status, "status")
	all := p.prefix + "#"
	p.a = &agent{cfg: cfg, raw: raw, log: testLogger(t), hooks: hooks{
		brokerReady: func(url string) {
			p.url = url
			p.sub = brokertest.Subscribe(t, url, all)
			close(ready)
		},
	}}
	for _, f := range with {
		f(p.a)
	}
	go func() { p.done <- p.a.run(ctx) }()
	select {
	case <-ready:
	case err := <-p.done:
		t.Fatalf("agent stopped before its broker was ready: %v", err)
	}
	t.Cleanup(p.stop)
	return p
}

// stop cancels the agent and waits for it to return; an error fails the
// test.
func (p *testAgent) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("agent returned %v", err)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatal("agent did not stop within 30s")
	}
}
