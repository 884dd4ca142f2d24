package uplink

import (
	"context"
	"fmt"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
)

// Request connects to the broker in cfg (credentials and TLS as for the
// agent), subscribes to replyTopic, publishes payload on topic with QoS 1,
// and returns the first message on replyTopic that accept takes, ignoring
// what was retained there before (the broker flags those). It is the
// operator's side of a config push. With replyTopic empty it returns once
// the broker has acknowledged the publish.
func Request(ctx context.Context, cfg Config, topic string, payload []byte, retained bool,
	replyTopic string, accept func([]byte) bool) ([]byte, error) {
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u := &Uplink{cfg: cfg, log: zerolog.Nop()}
	opts, err := u.clientOptions()
	if err != nil {
		return nil, err
	}
	client := paho.NewClient(opts)
	wait := func(t paho.Token) error {
		select {
		case <-t.Done():
			return t.Error()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := wait(client.Connect()); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.URL, explainConnectError(err, cfg))
	}
	defer client.Disconnect(250)
	replies := make(chan []byte, 16)
	if replyTopic != "" {
		t := client.Subscribe(replyTopic, 1, func(_ paho.Client, m paho.Message) {
			if !m.Retained() && (accept == nil || accept(m.Payload())) {
				select {
				case replies <- m.Payload():
				default:
				}
			}
		})
		if err := wait(t); err != nil {
			return nil, fmt.Errorf("subscribe to %s: %w", replyTopic, err)
		}
	}
	if err := wait(client.Publish(topic, 1, retained, payload)); err != nil {
		return nil, fmt.Errorf("publish to %s: %w", topic, err)
	}
	if replyTopic == "" {
		return nil, nil
	}
	select {
	case r := <-replies:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
