package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/uplink"
)

const configUsage = `usage:
  agent config keygen --out PREFIX
      write a new ed25519 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub;
      put PREFIX.pub on devices as remote_config.public_key_file
  agent config sign --key PREFIX.key [--revision N] FILE
      check FILE as agent validate does, then print it wrapped in a signed envelope
  agent config push --broker URL --device ID [--prefix P] [--key PREFIX.key] [--revision N]
                    [--wait 30s] [--ca-file F] [--cert-file F --key-file F]
                    [--username U (--password-file F | --password-env VAR)] FILE
      push FILE to the device (retained on <prefix>/<device>/config) and wait for its
      acknowledgement on <prefix>/<device>/config/ack. FILE is a config (checked, wrapped,
      and signed if --key is given) or an envelope written by sign.
  --revision defaults to the current Unix time in seconds, which only grows.
`

func cmdConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	switch args[0] {
	case "keygen":
		return cmdKeygen(args[1:], stdout, stderr)
	case "sign":
		return cmdSign(args[1:], stdout, stderr)
	case "push":
		return cmdPush(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, configUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "agent config: unknown command %q\n\n%s", args[0], configUsage)
	return exitUsage
}

func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "path prefix for PREFIX.key and PREFIX.pub (required)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	pub, priv, err := configs.GenerateKey()
	if err != nil {
		fmt.Fprintf(stderr, "agent config keygen: %v\n", err)
		return exitFailure
	}
	// O_EXCL: never overwrite a key that devices may already trust.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{*out + ".key", priv, 0o600}, {*out + ".pub", pub, 0o644}} {
		w, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err == nil {
			_, err = w.Write(f.data)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "agent config keygen: %v\n", err)
			return exitFailure
		}
	}
	fmt.Fprintf(stdout, "wrote %s.key (keep it secret) and %s.pub (put it on devices as remote_config.public_key_file)\n", *out, *out)
	return exitOK
}

// envelopeFor reads FILE and returns the envelope to push: FILE itself if
// it is one, else FILE's config (checked as validate does) wrapped with
// revision and signed with keyPath if given. device, if set, must match the
// config's.
func envelopeFor(path, keyPath string, revision uint64, device string) (configs.Envelope, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return configs.Envelope{}, err
	}
	if env, err := configs.DecodeEnvelope(raw); err == nil {
		if keyPath != "" || revision != 0 {
			return env, errors.New("FILE is already an envelope; --key and --revision apply to a config file")
		}
		raw = []byte(env.Payload)
		if err := checkPushed(raw, device); err != nil {
			return env, err
		}
		return env, nil
	}
	if err := checkPushed(raw, device); err != nil {
		return configs.Envelope{}, err
	}
	if revision == 0 {
		revision = uint64(time.Now().Unix())
	}
	env := configs.Envelope{Revision: revision, Payload: string(raw)}
	if keyPath != "" {
		key, err := configs.LoadPrivateKey(keyPath)
		if err != nil {
			return env, err
		}
		env.Sign(key)
	}
	return env, nil
}

// checkPushed validates a config before it leaves the operator's machine.
func checkPushed(raw []byte, device string) error {
	cfg, err := configs.Parse(raw)
	if err != nil {
		return err
	}
	if device != "" && cfg.Device != device {
		return fmt.Errorf("the config is for device %q, not %q", cfg.Device, device)
	}
	return nil
}

func cmdSign(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "ed25519 private key from keygen (required)")
	rev := fs.Uint64("revision", 0, "revision (default: the current Unix time)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *key == "" || fs.NArg() != 1 {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	env, err := envelopeFor(fs.Arg(0), *key, *rev, "")
	if err != nil {
		printConfigError(stderr, fs.Arg(0), err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s\n", env.Encode())
	return exitOK
}

func cmdPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bc uplink.Config
	fs.StringVar(&bc.URL, "broker", "", "broker URL, tcp://host:port or ssl://host:port (required)")
	device := fs.String("device", "", "device id (required)")
	prefix := fs.String("prefix", "emberwatch", "topic prefix")
	key := fs.String("key", "", "sign with this ed25519 private key")
	rev := fs.Uint64("revision", 0, "revision (default: the current Unix time)")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the device's acknowledgement; 0 = do not wait")
	fs.StringVar(&bc.CAFile, "ca-file", "", "CA certificate for ssl:// brokers")
	fs.StringVar(&bc.CertFile, "cert-file", "", "client certificate for mutual TLS")
	fs.StringVar(&bc.KeyFile, "key-file", "", "client certificate's key for mutual TLS")
	fs.StringVar(&bc.Username, "username", "", "broker username")
	fs.StringVar(&bc.PasswordFile, "password-file", "", "file holding the broker password")
	fs.StringVar(&bc.PasswordEnv, "password-env", "", "environment variable holding the broker password")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if bc.URL == "" || *device == "" || fs.NArg() != 1 {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	env, err := envelopeFor(fs.Arg(0), *key, *rev, *device)
	if err != nil {
		printConfigError(stderr, fs.Arg(0), err)
		return exitUsage
	}
	bc.ClientID = fmt.Sprintf("emberwatch-push-%d", time.Now().UnixNano())
	base := *prefix + "/" + *device + "/config"
	ackTopic := ""
	if *wait > 0 {
		ackTopic = base + "/ack"
	}
	rctx := ctx
	if *wait > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, *wait)
		defer cancel()
	}
	reply, err := uplink.Request(rctx, bc, base, env.Encode(), true, ackTopic, func(p []byte) bool {
		var a configAck
		return json.Unmarshal(p, &a) == nil && a.Revision == env.Revision && a.Origin == configs.OriginPush
	})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "pushed revision %d to %s, but no acknowledgement came within %s: the device may be offline; "+
			"the config stays retained on the broker and is applied when the device connects\n", env.Revision, base, *wait)
		return exitFailure
	case err != nil:
		fmt.Fprintf(stderr, "agent config push: %v\n", err)
		return exitFailure
	case reply == nil:
		fmt.Fprintf(stdout, "pushed revision %d to %s (retained)\n", env.Revision, base)
		return exitOK
	}
	var ack configAck
	_ = json.Unmarshal(reply, &ack) // accept already decoded it
	fmt.Fprintf(stdout, "device %s: revision %d %s (running revision %d)\n", *device, ack.Revision, ack.Result, ack.AppliedRevision)
	for _, e := range ack.Errors {
		fmt.Fprintf(stdout, "  %s\n", e)
	}
	if ack.Result == resultApplied || ack.Result == resultUnchanged {
		return exitOK
	}
	return exitFailure
}
